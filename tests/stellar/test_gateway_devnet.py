"""FarmGateway end to end against the devnet: every action and every failure class.

The devnet speaks the real Soroban JSON-RPC protocol (stellar-sdk's client talks to it
over HTTP) and runs the farm and the KALE token with footprints, auth and contract
errors. Races are staged with its controls: a test waits until a transaction is
*queued* (``devnet_pending``), then closes ledgers or moves time; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from stellar_sdk import Keypair, TransactionEnvelope
from stellar_sdk import xdr as sx

from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.errors import FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.stellar import (
    AccountNotFound,
    FarmGateway,
    HarvestOutcome,
    LaunchtubeSubmitter,
    NetworkError,
    Payment,
    PaymentOutcome,
    PlantOutcome,
    RaceLost,
    TxFailed,
    TxInDoubt,
    TxRejected,
    WorkOutcome,
    attempt_of,
)

from .chain import KALE, XLM, Chain, hashes_of, mine
from .conftest import devnet_settings
from .standin import Reply, StandInLaunchtube, StandInRpc, fee_distribution


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


async def planted(chain: Chain, gateway: FarmGateway, farmer: Keypair, amount: int = KALE) -> PlantOutcome:
    return await chain.run_one(gateway.plant(farmer, amount))


async def rollover(chain: Chain, gateway: FarmGateway) -> PlantOutcome:
    """Move past the block interval and plant someone: the farm opens the next block."""
    await chain.advance_time(300)
    await chain.close_ledgers(1)
    return await planted(chain, gateway, await chain.new_account(), 0)


class Recorder:
    """An ``on_signed`` hook: what was signed, in order."""

    def __init__(self) -> None:
        self.signed: list[tuple[str, str]] = []

    async def __call__(self, tx_hash: str, envelope_xdr: str) -> None:
        self.signed.append((tx_hash, envelope_xdr))


# ==================================================================== reads


async def test_farm_state_of_a_fresh_farm(gateway: FarmGateway) -> None:
    state = await gateway.farm_state()
    assert state.index == 0
    assert state.block is None  # no plant yet: Block(0) does not exist
    assert state.farm_block is not None and state.farm_block.entropy == bytes(32)
    assert not state.paused
    assert state.latest_ledger >= 1 and state.close_time > 0
    assert state.next_rollover_time == state.farm_block.timestamp + 300
    assert not state.ripe


async def test_farm_state_is_one_ledger_entries_round_trip(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    await planted(chain, gateway, farmer)
    first = await gateway.farm_state()
    assert first.block is not None and first.block.staked_total == KALE
    assert first.block_live_until is not None and first.block_live_until > first.latest_ledger
    await chain.requests(clear=True)
    again = await gateway.farm_state()
    calls = [r["method"] for r in await chain.requests()]
    assert sorted(calls) == ["getLatestLedger", "getLedgerEntries"]
    assert again.block == first.block
    await chain.advance_time(300)
    await chain.close_ledgers(1)
    assert (await gateway.farm_state()).ripe


async def test_pails_in_batches_with_their_ttl(gateway: FarmGateway, chain: Chain) -> None:
    farmers = await chain.new_accounts(3, kale=10 * KALE)
    await chain.run(*(gateway.plant(f, 2 * KALE) for f in farmers))
    absent = [(Keypair.random().public_key, 0) for _ in range(250)]
    await chain.requests(clear=True)
    pails = await gateway.pails([(f.public_key, 0) for f in farmers] + absent)
    assert sum(1 for r in await chain.requests() if r["method"] == "getLedgerEntries") == 2
    for f in farmers:
        state = pails[(f.public_key, 0)]
        assert state is not None
        assert state.pail.stake == 2 * KALE and not state.worked
        assert state.live_until_ledger is not None and state.live_until_ledger > state.last_modified_ledger
    assert all(pails[pair] is None for pair in absent)


async def test_account_positions(gateway: FarmGateway, chain: Chain) -> None:
    rich = await chain.new_account(xlm=50 * XLM, kale=7 * KALE)
    info = await gateway.account(rich.public_key)
    assert info.exists and info.xlm_balance == 50 * XLM
    assert info.xlm_spendable == 50 * XLM - 3 * 5_000_000  # 2 + 1 trustline reserves
    assert info.kale_trustline and info.kale_balance == 7 * KALE and info.kale_authorized
    plain = await chain.new_account(xlm=10 * XLM)
    info = await gateway.account(plain.public_key)
    assert not info.kale_trustline and info.kale_balance == 0
    assert info.xlm_spendable == 9 * XLM
    missing = await gateway.account(Keypair.random().public_key)
    assert not missing.exists and missing.xlm_balance == 0


# ================================================================== actions


async def test_plant_by_the_farmer(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    hook = Recorder()
    outcome = await chain.run_one(gateway.plant(farmer, 3 * KALE, on_signed=hook))
    assert outcome.index == 0 and outcome.stake == 3 * KALE and outcome.farmer == farmer.public_key
    assert outcome.fee_charged > 0 and outcome.ledger >= 2
    assert hook.signed[0][0] == outcome.tx_hash
    assert (await gateway.account(farmer.public_key)).kale_balance == 7 * KALE
    pail = (await gateway.pails([(farmer.public_key, 0)]))[(farmer.public_key, 0)]
    assert pail is not None and pail.pail.sequence == outcome.ledger


async def test_plant_paid_by_another_account(gateway: FarmGateway, chain: Chain) -> None:
    """The pool pays and is the source; the farmer signs an address-credential auth entry."""
    farmer = await chain.new_account(kale=10 * KALE)
    pool = await chain.new_account()
    before = await gateway.account(farmer.public_key)
    outcome = await chain.run_one(gateway.plant(farmer, 4 * KALE, source_signer=pool))
    assert outcome.farmer == farmer.public_key and outcome.stake == 4 * KALE
    after = await gateway.account(farmer.public_key)
    assert after.xlm_balance == before.xlm_balance  # the pool paid the fee
    assert after.sequence == before.sequence
    assert after.kale_balance == 6 * KALE


async def test_work_then_harvest(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    pool = await chain.new_account()
    plant = await planted(chain, gateway, farmer, 5 * KALE)
    await chain.close_ledgers(3)
    state = await gateway.farm_state()
    assert state.entropy is not None
    nonce, hash_ = mine(plant.index, state.entropy, farmer.public_key, zeros=2)
    work = await chain.run_one(gateway.work(pool, farmer.public_key, nonce, hash_, index=plant.index))
    assert isinstance(work, WorkOutcome)
    assert work.index == plant.index and work.gap == work.ledger - plant.ledger and work.zeros >= 2
    await rollover(chain, gateway)
    harvest = await chain.run_one(gateway.harvest(pool, farmer.public_key, plant.index))
    assert isinstance(harvest, HarvestOutcome)
    assert harvest.reward > 0 and harvest.index == plant.index
    balance = (await gateway.account(farmer.public_key)).kale_balance
    assert balance == 10 * KALE + harvest.reward  # the stake came back with the reward


async def test_ensure_trustline(gateway: FarmGateway, chain: Chain) -> None:
    account = await chain.new_account()
    first = await chain.run_one(gateway.ensure_trustline(account))
    assert first.created and first.tx is not None and first.tx.fee_charged > 0
    assert (await gateway.account(account.public_key)).kale_trustline
    again = await gateway.ensure_trustline(account)
    assert not again.created and again.tx is None
    with pytest.raises(AccountNotFound):
        await gateway.ensure_trustline(Keypair.random())


async def test_payments(gateway: FarmGateway, chain: Chain) -> None:
    payer = await chain.new_account(xlm=1_000 * XLM, kale=500 * KALE)
    receivers = await chain.new_accounts(100, xlm=10 * XLM, kale=1)
    one = await chain.run_one(gateway.pay(payer, receivers[0].public_key, 12_345, asset="XLM"))
    assert one.payments == (Payment(receivers[0].public_key, 12_345, "XLM"),)
    payout = [Payment(r.public_key, KALE + i, "KALE") for i, r in enumerate(receivers)]
    many = await chain.run_one(gateway.pay_many(payer, payout, memo="payout block 7"))
    assert many.payments == tuple(payout)
    assert many.fee_charged >= 100 * 100
    infos = await asyncio.gather(*(gateway.account(r.public_key) for r in receivers[:3]))
    assert [i.kale_balance for i in infos] == [1 + KALE, 1 + KALE + 1, 1 + KALE + 2]
    assert infos[0].xlm_balance == 10 * XLM + 12_345


async def test_one_account_serialises_its_transactions(gateway: FarmGateway, chain: Chain) -> None:
    payer = await chain.new_account()
    receiver = await chain.new_account()
    before = (await gateway.account(payer.public_key)).sequence
    outcomes = await chain.run(*(gateway.pay(payer, receiver.public_key, 1_000 + i) for i in range(6)))
    assert len({o.tx_hash for o in outcomes}) == 6
    assert (await gateway.account(payer.public_key)).sequence == before + 6
    assert (await gateway.account(receiver.public_key)).xlm_balance == 1_000 * XLM + sum(
        1_000 + i for i in range(6)
    )


async def test_resume_after_a_restart_returns_the_typed_outcome(
    devnet: DevnetHandle, gateway: FarmGateway, chain: Chain
) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    hook = Recorder()
    outcome = await chain.run_one(gateway.plant(farmer, KALE, on_signed=hook))
    (tx_hash, envelope), *_ = hook.signed
    await chain.requests(clear=True)
    async with FarmGateway.from_settings(devnet_settings([devnet.rpc_url])) as restarted:
        resumed = await restarted.resume(tx_hash, envelope)
    assert resumed == outcome
    assert hashes_of(await chain.requests()) == []  # found by hash: nothing sent again


async def test_two_hundred_concurrent_plants(gateway: FarmGateway, chain: Chain) -> None:
    farmers = await chain.new_accounts(200, kale=10 * KALE)
    outcomes = await chain.run(*(gateway.plant(f, KALE) for f in farmers))
    assert len({o.tx_hash for o in outcomes}) == 200
    assert {o.index for o in outcomes} == {0}
    state = await gateway.farm_state()
    assert state.block is not None and state.block.staked_total == 200 * KALE
    pails = await gateway.pails([(f.public_key, 0) for f in farmers])
    assert all(p is not None and p.pail.stake == KALE for p in pails.values())


# ============================================================ contract errors


async def test_two_plants_in_one_block_is_pail_exists(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    await planted(chain, gateway, farmer)
    await chain.requests(clear=True)
    with pytest.raises(FarmError) as info:
        await gateway.plant(farmer, KALE)
    assert info.value.code is FarmErrorCode.PAIL_EXISTS
    assert info.value.contract_id == gateway.farm_id
    assert hashes_of(await chain.requests()) == []  # refused by simulation: nothing sent


async def test_two_plants_racing_in_one_ledger(gateway: FarmGateway, chain: Chain) -> None:
    """Both simulate cleanly; the second to apply fails on chain with PailExists and
    its fee is reported."""
    farmer = await chain.new_account(kale=10 * KALE)
    pool = await chain.new_account()
    first = asyncio.ensure_future(gateway.plant(farmer, KALE))
    await chain.wait_pending(1)
    second = asyncio.ensure_future(gateway.plant(farmer, KALE, source_signer=pool))
    await chain.wait_pending(2)
    await chain.close_ledgers(1)
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert isinstance(results[0], PlantOutcome)
    err = results[1]
    assert isinstance(err, FarmError) and err.code is FarmErrorCode.PAIL_EXISTS
    attempt = attempt_of(err)
    assert attempt is not None and attempt.ledger == results[0].ledger and attempt.fee_charged
    assert (await gateway.account(farmer.public_key)).kale_balance == 9 * KALE


async def test_farm_and_token_errors_with_the_same_number(gateway: FarmGateway, chain: Chain) -> None:
    """#10 is WorkMissing from the farm and BalanceError from the token."""
    lazy = await chain.new_account(kale=10 * KALE)
    plant = await planted(chain, gateway, lazy)
    await rollover(chain, gateway)
    with pytest.raises(FarmError) as farm:
        await gateway.harvest(lazy, lazy.public_key, plant.index)
    assert farm.value.code is FarmErrorCode.WORK_MISSING
    poor = await chain.new_account(kale=KALE)
    with pytest.raises(TokenError) as token:
        await gateway.plant(poor, 5 * KALE)
    assert token.value.code is TokenErrorCode.BALANCE_ERROR
    assert token.value.contract_id == gateway.token_id
    assert int(farm.value.code) == int(token.value.code) == 10


async def test_plant_without_trustline_is_a_token_error(gateway: FarmGateway, chain: Chain) -> None:
    account = await chain.new_account()
    with pytest.raises(TokenError) as info:
        await gateway.plant(account, KALE)
    assert info.value.code is TokenErrorCode.TRUSTLINE_MISSING
    zero = await chain.run_one(gateway.plant(account, 0))  # a zero stake needs no trustline
    assert zero.stake == 0


async def test_harvest_errors(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    plant = await planted(chain, gateway, farmer)
    with pytest.raises(FarmError) as not_ready:
        await gateway.harvest(farmer, farmer.public_key, plant.index)
    assert not_ready.value.code is FarmErrorCode.HARVEST_NOT_READY
    with pytest.raises(FarmError) as future:
        await gateway.harvest(farmer, farmer.public_key, plant.index + 5)
    assert future.value.code is FarmErrorCode.BLOCK_MISSING


async def test_paused_farm(devnet: DevnetHandle, gateway: FarmGateway, chain: Chain) -> None:
    admin = devnet.homesteader
    await chain.control("devnet_fund", address=admin.public_key, xlm=100 * XLM)
    await chain.run_one(gateway.pipeline.invoke(admin, gateway.farm_id, "pause", []))
    assert (await gateway.farm_state()).paused
    farmer = await chain.new_account(kale=KALE)
    with pytest.raises(FarmError) as info:
        await gateway.plant(farmer, KALE)
    assert info.value.code is FarmErrorCode.FARM_PAUSED


@pytest.mark.devnet(temp_ttl=20)
async def test_harvest_of_an_expired_pail(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    plant = await planted(chain, gateway, farmer)
    await chain.close_ledgers(1)
    state = await gateway.farm_state()
    assert state.entropy is not None
    nonce, hash_ = mine(plant.index, state.entropy, farmer.public_key)
    await chain.run_one(gateway.work(farmer, farmer.public_key, nonce, hash_))
    await rollover(chain, gateway)
    pail = (await gateway.pails([(farmer.public_key, plant.index)]))[(farmer.public_key, plant.index)]
    assert pail is not None and pail.live_until_ledger is not None
    await chain.close_ledgers(pail.live_until_ledger - await chain.latest() + 1)
    assert (await gateway.pails([(farmer.public_key, plant.index)]))[(farmer.public_key, plant.index)] is None
    with pytest.raises(FarmError) as info:
        await gateway.harvest(farmer, farmer.public_key, plant.index)
    assert info.value.code is FarmErrorCode.BLOCK_MISSING


# ============================================================== rollover races


async def test_plant_lands_in_the_next_block_after_a_rollover(gateway: FarmGateway, chain: Chain) -> None:
    """Simulated for block i, applied after the interval passed: the plant would open
    block i+1, outside its footprint, and fails; the gateway simulates again and the
    outcome reports the block it really landed in."""
    first = await planted(chain, gateway, await chain.new_account(), 0)
    farmer = await chain.new_account(kale=10 * KALE)
    hook = Recorder()
    task = asyncio.ensure_future(gateway.plant(farmer, KALE, on_signed=hook))
    await chain.wait_pending(1)
    await chain.advance_time(300)
    await chain.close_ledgers(1)  # applied after the interval: footprint failure
    outcome = await chain.run_one(task)
    assert outcome.index == first.index + 1
    assert len(hook.signed) == 2  # one failed attempt, one re-simulated retry
    assert (await gateway.farm_state()).index == first.index + 1
    assert (await gateway.account(farmer.public_key)).kale_balance == 9 * KALE  # planted once


async def test_work_that_loses_the_rollover_race(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    pool = await chain.new_account()
    plant = await planted(chain, gateway, farmer)
    await chain.close_ledgers(2)
    state = await gateway.farm_state()
    assert state.entropy is not None
    nonce, hash_ = mine(plant.index, state.entropy, farmer.public_key)
    # Someone's rollover plant is queued first; the work is simulated against block i
    # (still current) and applied right after the rollover in the same ledger.
    await chain.advance_time(300)
    await chain.close_ledgers(1)
    rolling = asyncio.ensure_future(gateway.plant(await chain.new_account(), 0))
    await chain.wait_pending(1)
    hook = Recorder()
    work = asyncio.ensure_future(gateway.work(pool, farmer.public_key, nonce, hash_, on_signed=hook))
    await chain.wait_pending(2)
    await chain.close_ledgers(1)
    assert (await rolling).index == plant.index + 1
    with pytest.raises(RaceLost) as info:
        await work
    assert info.value.index == plant.index
    assert info.value.tx is not None and info.value.tx.fee_charged  # it was applied and failed
    assert len(hook.signed) == 1  # not retried: block i is closed


async def test_work_for_a_closed_block_is_not_sent(gateway: FarmGateway, chain: Chain) -> None:
    farmer = await chain.new_account(kale=10 * KALE)
    plant = await planted(chain, gateway, farmer)
    await chain.close_ledgers(1)
    state = await gateway.farm_state()
    assert state.entropy is not None
    nonce, hash_ = mine(plant.index, state.entropy, farmer.public_key)
    await rollover(chain, gateway)
    await chain.requests(clear=True)
    with pytest.raises(RaceLost) as info:
        await gateway.work(farmer, farmer.public_key, nonce, hash_, index=plant.index)
    assert info.value.index == plant.index and info.value.tx is None
    assert hashes_of(await chain.requests()) == []


# ========================================================= transaction errors


async def test_bad_sequence_is_rebuilt_once_as_a_new_intent(gateway: FarmGateway, chain: Chain) -> None:
    payer = await chain.new_account()
    receiver = await chain.new_account()
    await chain.run_one(gateway.pay(payer, receiver.public_key, 1))
    gateway.pipeline.sequences._cached[payer.public_key] += 5  # a stale cache
    intents: list[str] = []

    async def record(tx_hash: str, envelope_xdr: str) -> None:
        intents.append(tx_hash)

    outcome = await chain.run_one(gateway.pay(payer, receiver.public_key, 2, on_signed=record))
    assert outcome.payments[0].amount == 2
    assert len(intents) == 2 and intents[-1] == outcome.tx_hash  # the refused one, then the rebuilt one
    assert intents[0] != intents[1]


async def test_two_processes_signing_for_one_account_lose_nothing(devnet: DevnetHandle, chain: Chain) -> None:
    """Each gateway caches the account's sequence; the other one's payments make it stale.
    Every payment still lands (txBAD_SEQ answered by a rebuilt transaction)."""
    payer = await chain.new_account()
    receiver = await chain.new_account()
    first = FarmGateway.from_settings(devnet_settings([devnet.rpc_url]))
    second = FarmGateway.from_settings(devnet_settings([devnet.rpc_url]))
    try:
        amounts = []
        for i in range(1, 7):
            gw = first if i % 3 else second
            amounts.append((await chain.run_one(gw.pay(payer, receiver.public_key, i))).payments[0].amount)
    finally:
        await first.close()
        await second.close()
    assert amounts == [1, 2, 3, 4, 5, 6]


async def test_a_bad_sequence_twice_is_refused(gateway: FarmGateway, chain: Chain) -> None:
    """The rebuild happens once: a chain that keeps refusing the sequence is reported."""
    payer = await chain.new_account()
    receiver = await chain.new_account()
    real_load = gateway.pipeline.sequences._load

    async def wrong_load(account: str) -> int:
        return await real_load(account) + 5

    gateway.pipeline.sequences._load = wrong_load
    await chain.requests(clear=True)
    with pytest.raises(TxRejected) as info:
        await gateway.pay(payer, receiver.public_key, 2)
    assert info.value.result_code == "txBAD_SEQ"
    sent = await chain.requests("sendTransaction")
    assert len(sent) == 2


async def test_failed_payment_names_the_operation(gateway: FarmGateway, chain: Chain) -> None:
    payer = await chain.new_account()
    known = await chain.new_account()
    payments = [Payment(known.public_key, 5), Payment(Keypair.random().public_key, 5)]
    with pytest.raises(TxFailed) as info:
        await chain.run_one(gateway.pay_many(payer, payments))
    assert info.value.result_code == "txFAILED"
    assert "PAYMENT_NO_DESTINATION" in info.value.op_codes
    assert info.value.tx is not None and info.value.tx.fee_charged


async def test_unfunded_source_is_account_not_found(gateway: FarmGateway) -> None:
    with pytest.raises(AccountNotFound):
        await gateway.plant(Keypair.random(), 0)


# ================================================================= the network


async def test_rpc_down_is_a_network_error_and_nothing_is_signed() -> None:
    hook = Recorder()
    async with FarmGateway.from_settings(
        devnet_settings([closed_port_url()], request_timeout=0.5), on_signed=hook
    ) as gw:
        with pytest.raises(NetworkError):
            await gw.farm_state()
        with pytest.raises(NetworkError):
            await gw.plant(Keypair.random(), 0)
    assert hook.signed == []


async def test_failover_to_the_second_rpc(devnet: DevnetHandle, chain: Chain) -> None:
    settings = devnet_settings([closed_port_url(), devnet.rpc_url], request_timeout=1)
    async with FarmGateway.from_settings(settings) as gw:
        farmer = await chain.new_account(kale=KALE)
        outcome = await chain.run_one(gw.plant(farmer, KALE))
        assert outcome.index == 0
        assert gw.rpc.current_url == devnet.rpc_url


async def test_send_timeout_is_recovered_by_hash_without_a_second_transaction(
    devnet: DevnetHandle, chain: Chain
) -> None:
    """The first sendTransaction reaches the devnet but its answer is lost (the relay
    holds it past the timeout). The gateway polls by hash (not found: still queued) and
    re-sends only the same envelope (DUPLICATE); one plant is applied."""
    relay = StandInRpc(upstream=devnet.rpc_url)
    answers: list[str] = []

    async def lose_first_answer(params: dict[str, Any]) -> Reply:
        reply = await relay.forward("sendTransaction", params)
        answers.append(reply.result["status"])
        if len(answers) == 1:
            reply.delay = 5.0  # past the 1.5 s request timeout
        return reply

    relay.on("sendTransaction", lose_first_answer)
    await relay.start()
    try:
        hook = Recorder()
        settings = devnet_settings([relay.url], request_timeout=1.5)
        async with FarmGateway.from_settings(settings, on_signed=hook) as gw:
            farmer = await chain.new_account(kale=10 * KALE)
            await chain.requests(clear=True)
            task = asyncio.ensure_future(gw.plant(farmer, 2 * KALE))
            while len(answers) < 2 and not task.done():  # the re-send after the lost answer
                await asyncio.sleep(0.005)
            assert (await chain.pending()) == [hook.signed[0][0]]
            await chain.close_ledgers(1)
            outcome = await task
    finally:
        await relay.stop()
    assert answers[:2] == ["PENDING", "DUPLICATE"]
    assert [h for h, _ in hook.signed] == [outcome.tx_hash]  # signed once
    sent = hashes_of(await chain.requests())
    assert len(sent) == len(answers) >= 2 and set(sent) == {hook.signed[0][1]}  # one envelope
    assert any(r["method"] == "getTransaction" for r in await chain.requests())
    assert (await chain.control("devnet_fund", address=farmer.public_key))["kale"] == 8 * KALE


async def test_try_again_later_backs_off(devnet: DevnetHandle, chain: Chain) -> None:
    relay = StandInRpc(upstream=devnet.rpc_url)
    refusals = [2]

    async def busy(params: dict[str, Any]) -> Reply:
        if refusals[0] > 0:
            refusals[0] -= 1
            latest = await relay.forward("getLatestLedger", None)
            return Reply(
                result={
                    "status": "TRY_AGAIN_LATER",
                    "hash": "00" * 32,
                    "latestLedger": latest.result["sequence"],
                    "latestLedgerCloseTime": latest.result["closeTime"],
                }
            )
        return await relay.forward("sendTransaction", params)

    relay.on("sendTransaction", busy)
    await relay.start()
    try:
        async with FarmGateway.from_settings(devnet_settings([relay.url])) as gw:
            gw.direct.try_again_backoff = 0.01
            farmer = await chain.new_account(kale=KALE)
            outcome = await chain.run_one(gw.plant(farmer, KALE))
    finally:
        await relay.stop()
    assert outcome.index == 0
    assert relay.count("sendTransaction") == 3


async def test_unknown_fate_blocks_the_account_until_resolved(devnet: DevnetHandle, chain: Chain) -> None:
    """getTransaction fails after a send: the payment is in doubt. The account signs
    nothing new until that transaction's fate is known; then it carries on."""
    relay = StandInRpc(upstream=devnet.rpc_url)
    broken = [True]

    async def get_transaction(params: dict[str, Any]) -> Reply:
        if broken[0]:
            return Reply(status=503, body="upstream unavailable")
        return await relay.forward("getTransaction", params)

    relay.on("getTransaction", get_transaction)
    await relay.start()
    try:
        hook = Recorder()
        async with FarmGateway.from_settings(devnet_settings([relay.url]), on_signed=hook) as gw:
            gw.direct.max_wait = 0.3
            payer = await chain.new_account()
            receiver = await chain.new_account(xlm=10 * XLM)
            before = (await gw.account(payer.public_key)).sequence
            with pytest.raises(TxInDoubt) as doubt:
                await chain.run_one(gw.pay(payer, receiver.public_key, 111))
            assert doubt.value.tx is not None and doubt.value.tx.tx_hash == hook.signed[0][0]
            with pytest.raises(TxInDoubt, match="in doubt"):
                await gw.pay(payer, receiver.public_key, 222)
            assert len(hook.signed) == 1  # nothing new was signed
            broken[0] = False
            third = await chain.run_one(gw.pay(payer, receiver.public_key, 333))
            assert len(hook.signed) == 2 and third.tx_hash == hook.signed[1][0]
            first = await gw.resume(doubt.value.tx.tx_hash, doubt.value.tx.envelope_xdr)
            assert isinstance(first, PaymentOutcome) and first.payments[0].amount == 111
            assert (await gw.account(payer.public_key)).sequence == before + 2
            assert (await gw.account(receiver.public_key)).xlm_balance == 10 * XLM + 111 + 333
    finally:
        await relay.stop()


def _strip_events(meta_xdr: str) -> str:
    meta = sx.TransactionMeta.from_xdr(meta_xdr)
    if meta.v4 is not None:
        meta.v4.diagnostic_events = []
    if meta.v3 is not None and meta.v3.soroban_meta is not None:
        meta.v3.soroban_meta.diagnostic_events = []
    return meta.to_xdr()


async def test_failure_without_events_is_diagnosed_by_simulating_again(
    devnet: DevnetHandle, chain: Chain
) -> None:
    """An RPC that sends no diagnostic events: the failed plant is simulated again,
    which names the contract error."""
    relay = StandInRpc(upstream=devnet.rpc_url)

    async def get_transaction(params: dict[str, Any]) -> Reply:
        reply = await relay.forward("getTransaction", params)
        result = reply.result
        if result and result.get("resultMetaXdr"):
            result.pop("diagnosticEventsXdr", None)
            result["resultMetaXdr"] = _strip_events(result["resultMetaXdr"])
        return reply

    relay.on("getTransaction", get_transaction)
    await relay.start()
    try:
        async with FarmGateway.from_settings(devnet_settings([relay.url])) as gw:
            farmer = await chain.new_account(kale=10 * KALE)
            pool = await chain.new_account()
            first = asyncio.ensure_future(gw.plant(farmer, KALE))
            await chain.wait_pending(1)
            second = asyncio.ensure_future(gw.plant(farmer, KALE, source_signer=pool))
            await chain.wait_pending(2)
            await chain.close_ledgers(1)
            results = await asyncio.gather(first, second, return_exceptions=True)
    finally:
        await relay.stop()
    assert isinstance(results[0], PlantOutcome)
    assert isinstance(results[1], FarmError) and results[1].code is FarmErrorCode.PAIL_EXISTS
    assert attempt_of(results[1]) is not None


async def test_plant_through_launchtube(devnet: DevnetHandle, chain: Chain) -> None:
    """A Launchtube stand-in relaying to the devnet: form POST with the bearer token; the
    envelope respects Launchtube's caps (fee ≤ resource fee + 201, maxTime ≤ 30 s)."""
    checked: list[str] = []

    async def relay_to_devnet(form: dict[str, str]) -> tuple[int, Any]:
        envelope = TransactionEnvelope.from_xdr(form["xdr"], devnet.passphrase)
        tx = envelope.transaction
        assert tx.soroban_data is not None
        assert tx.fee - tx.soroban_data.resource_fee.int64 <= 201
        bounds = tx.preconditions.time_bounds if tx.preconditions else None
        assert bounds is not None and bounds.max_time <= time.time() + 31
        checked.append(envelope.hash_hex())
        sent = await chain.control("sendTransaction", transaction=form["xdr"])
        while True:
            got = await chain.control("getTransaction", hash=sent["hash"])
            if got["status"] != "NOT_FOUND":
                break
            await asyncio.sleep(0.005)  # the test's ledger closer applies it
        body = {
            "status": got["status"],
            "hash": sent["hash"],
            "feeCharged": sx.TransactionResult.from_xdr(got["resultXdr"]).fee_charged.int64,
            "envelopeXdr": got["envelopeXdr"],
            "resultXdr": got["resultXdr"],
            "resultMetaXdr": got["resultMetaXdr"],
            "ledger": got["ledger"],
        }
        return (200, body) if got["status"] == "SUCCESS" else (400, {"type": "send", **body})

    tube = StandInLaunchtube("jwt-for-tests", relay_to_devnet)
    await tube.start()
    try:
        settings = devnet_settings(
            [devnet.rpc_url], launchtube_url=tube.url, launchtube_token="jwt-for-tests"
        )
        async with FarmGateway.from_settings(settings) as gw:
            assert isinstance(gw.pipeline.submitter, LaunchtubeSubmitter)
            farmer = await chain.new_account(kale=10 * KALE)
            outcome = await chain.run_one(gw.plant(farmer, 3 * KALE))
            assert outcome.index == 0 and outcome.stake == 3 * KALE
            assert checked == [outcome.tx_hash]
            assert (await gw.account(farmer.public_key)).kale_balance == 7 * KALE
            again = await chain.run_one(gw.plant(await chain.new_account(kale=KALE), KALE))
            assert again.index == 0
    finally:
        await tube.stop()
    assert all(h["Authorization"] == "Bearer jwt-for-tests" for h in tube.headers)


async def test_fee_policy_bids_the_configured_percentile_capped(devnet: DevnetHandle, chain: Chain) -> None:
    relay = StandInRpc(upstream=devnet.rpc_url)
    relay.on(
        "getFeeStats",
        {
            "sorobanInclusionFee": fee_distribution(p70=700, p90=5_000),
            "inclusionFee": fee_distribution(p70=300, p90=450),
            "latestLedger": 1,
        },
    )
    await relay.start()
    try:
        hook = Recorder()
        settings = devnet_settings([relay.url], fee_percentile=90, max_inclusion_fee=2_000)
        async with FarmGateway.from_settings(settings, on_signed=hook) as gw:
            farmer = await chain.new_account(kale=KALE)
            await chain.run_one(gw.plant(farmer, KALE))
            await chain.run_one(gw.pay_many(farmer, [Payment(farmer.public_key, 1)] * 3))
    finally:
        await relay.stop()
    plant = TransactionEnvelope.from_xdr(hook.signed[0][1], devnet.passphrase).transaction
    assert plant.soroban_data is not None
    assert plant.fee - plant.soroban_data.resource_fee.int64 == 2_000  # p90 = 5000, capped
    payout = TransactionEnvelope.from_xdr(hook.signed[1][1], devnet.passphrase).transaction
    assert payout.fee == 3 * 450  # classic: p90 of inclusionFee per operation
