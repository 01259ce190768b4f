"""The gateway's conformance suite, in the style of eth-tester's backend tests: one set of
tests over :class:`FarmGateway`, run against every network in ``networks.py``.

The devnet always; testnet when ``KALEPOOL_TESTNET=1`` (it needs the network, which this
machine has not: skipped with that reason). Nothing here uses the devnet's controls or
knows which network it is on: a test that passes on the devnet and fails on testnet is a
devnet infidelity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from stellar_sdk import Asset, scval
from stellar_sdk import xdr as sx

from kalepool.kale.errors import FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.stellar import HarvestOutcome, PlantOutcome, WorkOutcome

from .chain import mine
from .networks import TESTNET_FLAG, Network, open_network, use_testnet


@pytest.fixture(params=["devnet", "testnet"])
async def network(request: pytest.FixtureRequest) -> AsyncIterator[Network]:
    if request.param == "testnet" and not use_testnet():
        pytest.skip(f"testnet needs the network: set {TESTNET_FLAG}=1 to run the suite against it")
    net = open_network(request.param)
    try:
        yield net
    finally:
        await net.close()


async def fees_of(net: Network, tx_hash: str) -> dict[str, int]:
    """A transaction's fee as the network reports it: what it declared, feeCharged, the
    Soroban meta's breakdown, and its ``fee`` events (charge, refund)."""
    got = await net.gateway.rpc.transaction(tx_hash)
    assert got.envelope_xdr and got.result_xdr and got.result_meta_xdr
    envelope = sx.TransactionEnvelope.from_xdr(got.envelope_xdr)
    assert envelope.v1 is not None
    tx = envelope.v1.tx
    meta = sx.TransactionMeta.from_xdr(got.result_meta_xdr).v4
    assert meta is not None
    native = Asset.native().contract_id(net.profile.passphrase)
    events = {}
    for event in meta.events:
        body = event.event.body.v0
        assert body is not None and scval.to_native(body.topics[0]) == "fee"
        assert event.event.contract_id is not None
        assert scval.from_address(scval.to_address(native)).key == event.event.contract_id.contract_id.hash
        events[event.stage] = scval.to_native(body.data)
    out = {
        "fee": tx.fee.uint32,
        "resource_fee": tx.ext.soroban_data.resource_fee.int64 if tx.ext.soroban_data else 0,
        "charged": sx.TransactionResult.from_xdr(got.result_xdr).fee_charged.int64,
        "charge_event": events.get(sx.TransactionEventStage.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS, 0),
        "refund_event": events.get(sx.TransactionEventStage.TRANSACTION_EVENT_STAGE_AFTER_ALL_TXS, 0),
    }
    if meta.soroban_meta is not None and meta.soroban_meta.ext.v1 is not None:
        ext = meta.soroban_meta.ext.v1
        out["non_refundable"] = ext.total_non_refundable_resource_fee_charged.int64
        out["refundable"] = ext.total_refundable_resource_fee_charged.int64
        out["rent"] = ext.rent_fee_charged.int64
    return out


async def test_the_network_is_the_profiles(network: Network) -> None:
    rpc = network.gateway.rpc
    assert await rpc.network_passphrase() == network.profile.passphrase
    assert await rpc.health() == "healthy"
    state = await network.gateway.farm_state()
    assert state.block_interval == network.profile.block_interval and state.farm_block is not None
    assert state.latest_ledger > 0 and state.close_time >= state.farm_block.timestamp


async def test_a_fresh_account_and_its_trustline(network: Network) -> None:
    gateway = network.gateway
    kp = await network.fund()
    info = await gateway.account(kp.public_key)
    assert info.exists and info.xlm_balance > 0 and not info.kale_trustline
    line = await gateway.ensure_trustline(kp)
    assert line.created and line.tx is not None
    fees = await fees_of(network, line.tx.tx_hash)
    assert fees["charged"] == line.tx.fee_charged == fees["charge_event"] >= 100  # classic: no refund
    assert fees["refund_event"] == 0
    after = await gateway.account(kp.public_key)
    assert after.kale_trustline and after.kale_balance == 0
    assert after.xlm_balance == info.xlm_balance - line.tx.fee_charged
    assert not (await gateway.ensure_trustline(kp)).created


async def test_plant_is_charged_less_than_declared_and_pays_rent(network: Network) -> None:
    gateway = network.gateway
    farmer = await network.fund()
    before = await gateway.account(farmer.public_key)
    planted = await gateway.plant(farmer, 0)
    assert isinstance(planted, PlantOutcome) and planted.stake == 0
    fees = await fees_of(network, planted.tx_hash)
    assert fees["charged"] == planted.fee_charged < fees["fee"]  # the unused refundable fee came back
    assert fees["charge_event"] + fees["refund_event"] == fees["charged"] and fees["refund_event"] < 0
    assert fees["non_refundable"] + fees["refundable"] <= fees["resource_fee"]
    assert fees["rent"] > 0  # its Pail (and the Block, if first) were created
    after = await gateway.account(farmer.public_key)
    assert before.xlm_balance - after.xlm_balance == planted.fee_charged
    [found] = (await gateway.pails([(farmer.public_key, planted.index)])).values()
    assert found is not None and found.pail.stake == 0 and found.pail.sequence == planted.ledger
    with pytest.raises(FarmError) as again:
        await gateway.plant(farmer, 0)  # one plant per farmer per block
    assert again.value.code is FarmErrorCode.PAIL_EXISTS


async def test_errors_name_the_contract_that_raised_them(network: Network) -> None:
    gateway = network.gateway
    farmer = await network.fund()  # no KALE trustline
    await gateway.plant(await network.fund(), 0)  # the current block exists
    with pytest.raises(TokenError) as token:
        await gateway.plant(farmer, 1)  # the farm burns the stake: the token refuses
    assert token.value.code is TokenErrorCode.TRUSTLINE_MISSING
    with pytest.raises(FarmError) as farm:
        await gateway.work(farmer, farmer.public_key, 0, bytes(32))  # no pail in this block
    assert farm.value.code is FarmErrorCode.PAIL_MISSING


async def test_plant_work_harvest(network: Network) -> None:
    gateway = network.gateway
    farmer, other = await network.fund(), await network.fund()
    await gateway.ensure_trustline(farmer)  # the reward is minted to it
    planted = await gateway.plant(farmer, 0)
    state = await gateway.farm_state()
    assert state.index == planted.index and state.block is not None
    nonce, hash_ = mine(planted.index, state.block.entropy, farmer.public_key, 1)
    await network.next_ledger()  # a work in the plant's own ledger is refused (#15)
    worked = await gateway.work(farmer, farmer.public_key, nonce, hash_, index=planted.index)
    assert isinstance(worked, WorkOutcome) and worked.gap >= 1 and worked.zeros >= 1
    fees = await fees_of(network, worked.tx_hash)
    assert fees["charged"] < fees["fee"]
    await network.end_block()
    rolled = await gateway.plant(other, 0)
    assert rolled.index == planted.index + 1
    harvested = await gateway.harvest(farmer, farmer.public_key, planted.index)
    assert isinstance(harvested, HarvestOutcome) and harvested.reward > 0  # a share of the block reward
    fees = await fees_of(network, harvested.tx_hash)
    assert fees["charged"] < fees["fee"] and fees["rent"] == 0  # deletes its pail, creates nothing
    assert (await gateway.account(farmer.public_key)).kale_balance == harvested.reward
