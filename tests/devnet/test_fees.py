"""The Soroban fee model: stellar-core's formula, refunds, rent, fee events, fee validation.

The formula is checked against the published vectors of rs-soroban-env's fee tests
(the code stellar-core runs); the rest drives the devnet through stellar-sdk.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from stellar_sdk import Asset, Keypair, Network, TransactionBuilder, TransactionEnvelope, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.engine import Devnet, DevnetConfig
from kalepool.devnet.fees import FeeSchedule, RentChange, TxResources, rent_fee, resource_fee
from kalepool.devnet.testing import DevnetHandle, InvokeResult
from kalepool.devnet.transactions import parse_envelope
from tests.devnet.helpers import KALE, engine_plant, harvest, plant, work

TRC = sx.TransactionResultCode
CONFIG = FeeSchedule(
    fee_per_instruction_increment=1000,
    fee_per_disk_read_entry=2000,
    fee_per_write_entry=4000,
    fee_per_disk_read_1kb=1500,
    fee_per_write_1kb=3000,
    fee_per_historical_1kb=300,
    fee_per_contract_event_1kb=200,
    fee_per_transaction_size_1kb=900,
)


# ------------------------------------------------------------- the formula


def test_resource_fee_matches_the_hosts_vectors() -> None:
    used = TxResources(10_123_456, 30, 10, 25_600, 10_340, 321_654, 35_721)
    assert resource_fee(used, CONFIG) == (1_222_089, 62_824)
    prices = [f for f in FeeSchedule.__dataclass_fields__ if f.startswith("fee_per_")]
    flat = FeeSchedule(**dict.fromkeys(prices, 100))
    assert resource_fee(TxResources(), flat) == (30, 0)  # the 300-byte result is always history
    assert resource_fee(TxResources(1, 1, 1, 1, 1, 1, 1), flat) == (234, 1)


def test_rent_fee_matches_the_hosts_vectors() -> None:
    s = FeeSchedule(fee_per_write_entry=10, fee_per_write_1kb=500, persistent_rent_rate_denominator=10_000,
                    temporary_rent_rate_denominator=100_000)  # fmt: skip
    grow = RentChange(True, False, 1, 100_000, 100_000, 300_000)
    assert rent_fee([RentChange(True, False, 1, 1, 100_000, 300_000)], s, 1000, 50_000) == 20 + 24 + 10
    assert rent_fee([RentChange(True, False, 10_240, 10_240, 100_000, 100_001)], s, 1000, 50_000) == 35
    assert rent_fee([grow], s, 1000, 25_000) == 2_685_550 + 34
    assert rent_fee([replace(grow, code=True)], s, 1000, 25_000) == 2_685_550 // 3 + 34
    assert rent_fee([replace(grow, persistent=False)], s, 1000, 25_000) == 268_556 + 34
    three = [grow, replace(grow, code=True), replace(grow, persistent=False)]
    assert rent_fee(three, s, 1000, 25_000) == 3_849_289 + 71 + 30
    assert rent_fee([RentChange(True, False, 0, 100_000, 0, 100_000)], s, 1000, 25_000) == 732_432 + 34


def test_rent_price_follows_the_state_size() -> None:
    s = FeeSchedule(soroban_state_target_size_bytes=100_000, rent_fee_1kb_state_size_low=100,
                    rent_fee_1kb_state_size_high=10_000, soroban_state_rent_fee_growth_factor=50)  # fmt: skip
    assert s.rent_fee_per_1kb(0) == 1_000  # the floor
    assert s.rent_fee_per_1kb(56_789) == 5_723
    assert s.rent_fee_per_1kb(100_000) == 10_000
    assert s.rent_fee_per_1kb(580_000) == 10_000 + 2_376_000
    negative = replace(s, rent_fee_1kb_state_size_low=-1_000)
    assert negative.rent_fee_per_1kb(18_181) == 1_000 and negative.rent_fee_per_1kb(18_182) == 1_001
    assert FeeSchedule().rent_fee_per_1kb(10**6) == 1_000  # the public network's state is far below


# ------------------------------------------------- charged, refunded, rented


def xlm(devnet: DevnetHandle, account: str) -> int:
    return int(devnet.rpc("devnet_fund", address=account, xlm=0)["xlm"])


def fees_of(devnet: DevnetHandle, result: InvokeResult) -> dict[str, int]:
    """What the network reports about a transaction's fees: the declared fee and resource
    fee, feeCharged, the meta's breakdown and the two fee events."""
    assert result.result is not None
    tx = result.envelope.transaction
    assert tx.soroban_data is not None
    got = devnet.rpc("getTransaction", hash=result.send.hash)
    charged = sx.TransactionResult.from_xdr(got["resultXdr"]).fee_charged.int64
    meta = sx.TransactionMeta.from_xdr(got["resultMetaXdr"]).v4
    assert meta is not None and meta.soroban_meta is not None and meta.soroban_meta.ext.v1 is not None
    ext = meta.soroban_meta.ext.v1
    events = {}
    for raw in got["events"]["transactionEventsXdr"]:
        event = sx.TransactionEvent.from_xdr(raw)
        body = event.event.body.v0
        assert body is not None and scval.to_native(body.topics[0]) == "fee"
        assert scval.to_native(body.topics[1]).address == result.envelope.transaction.source.account_id
        assert event.event.contract_id is not None
        native = Asset.native().contract_id(devnet.passphrase)
        assert (
            sx.SCVal.from_xdr(scval.to_address(native).to_xdr()).address.contract_id
            == event.event.contract_id
        )
        events[event.stage.name] = scval.to_native(body.data)
    return {
        "fee": tx.fee,
        "declared": tx.soroban_data.resource_fee.int64,
        "charged": charged,
        "non_refundable": ext.total_non_refundable_resource_fee_charged.int64,
        "refundable": ext.total_refundable_resource_fee_charged.int64,
        "rent": ext.rent_fee_charged.int64,
        "charge_event": events.get("TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS", 0),
        "refund_event": events.get("TRANSACTION_EVENT_STAGE_AFTER_ALL_TXS", 0),
    }


def check_settlement(devnet: DevnetHandle, result: InvokeResult, paid: int) -> dict[str, int]:
    f = fees_of(devnet, result)
    assert f["charge_event"] == f["declared"] + 100  # the resource fee and the base fee, up front
    assert f["charged"] == f["charge_event"] + f["refund_event"]  # the refund event is negative
    assert f["charged"] == f["non_refundable"] + f["refundable"] + 100
    assert f["charged"] < f["fee"]  # the unused refundable part came back
    assert paid == f["charged"]  # the account paid exactly feeCharged
    return f


def test_plant_work_harvest_are_charged_less_than_declared_and_rent_is_paid(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=100 * KALE)
    before = xlm(devnet, farmer.public_key)
    planted = plant(devnet, farmer, 10 * KALE)
    assert planted.status == "SUCCESS"
    after_plant = xlm(devnet, farmer.public_key)
    p = check_settlement(devnet, planted, before - after_plant)
    assert p["rent"] > 2 * 10_000  # Block(0) and Pail(f, 0) created: rent and a TTL write each
    declared = TransactionEnvelope.from_xdr(planted.envelope.to_xdr(), devnet.passphrase)
    assert declared.transaction.soroban_data is not None
    devnet.close_ledgers(3)
    worked, _, _ = work(devnet, farmer, 1)
    assert worked.status == "SUCCESS"
    after_work = xlm(devnet, farmer.public_key)
    w = check_settlement(devnet, worked, after_plant - after_work)
    assert 0 < w["rent"] < p["rent"]  # the Pail grew (gap and zeros set): a top-up only
    devnet.advance_time(300, close=True)
    assert plant(devnet, devnet.new_account(), 0).status == "SUCCESS"  # block 0 is over
    harvested = harvest(devnet, farmer, 0)
    assert harvested.status == "SUCCESS"
    h = check_settlement(devnet, harvested, after_work - xlm(devnet, farmer.public_key))
    assert h["rent"] == 0  # the Pail is deleted, nothing created or extended
    assert h["refundable"] > 0  # the mint event and the reward returned


def test_non_refundable_fee_is_the_formula_of_the_declared_resources(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    planted = plant(devnet, farmer, KALE)
    env = planted.envelope
    data = env.transaction.soroban_data
    assert data is not None
    res = data.resources
    contract_state = (sx.LedgerEntryType.CONTRACT_DATA, sx.LedgerEntryType.CONTRACT_CODE)
    disk = [k for k in (*res.footprint.read_only, *res.footprint.read_write) if k.type not in contract_state]
    declared = TxResources(
        instructions=res.instructions.uint32,
        disk_read_entries=len(disk),
        write_entries=len(res.footprint.read_write),
        disk_read_bytes=res.disk_read_bytes.uint32,
        write_bytes=res.write_bytes.uint32,
        transaction_size_bytes=len(env.to_xdr_object().to_xdr_bytes()),
    )
    assert len(disk) == 1  # the farmer's trustline: contract state is read from memory
    assert fees_of(devnet, planted)["non_refundable"] == resource_fee(declared)[0]


def test_a_failed_call_gets_all_of_its_refundable_fee_back(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    assert plant(devnet, farmer, KALE).status == "SUCCESS"
    # a second plant in the same block fails (#8, PailExists): build it from a fresh simulation
    # on a snapshot where the first plant never happened
    server = devnet.soroban_server()
    stale = _prepared_plant(devnet, farmer, KALE)
    before = xlm(devnet, farmer.public_key)
    failed = devnet.submit(stale)
    assert failed.status == "FAILED"
    f = fees_of(devnet, failed)
    assert f["refundable"] == 0 and f["rent"] == 0
    assert f["charged"] == f["non_refundable"] + 100
    assert f["refund_event"] == -(f["declared"] - f["non_refundable"])
    assert before - xlm(devnet, farmer.public_key) == f["charged"]
    assert server.get_transaction(failed.send.hash).result_xdr is not None


def _plant_tx(devnet: DevnetHandle, farmer: Keypair, amount: int) -> TransactionEnvelope:
    return (
        TransactionBuilder(devnet.soroban_server().load_account(farmer.public_key), devnet.passphrase, 100)
        .append_invoke_contract_function_op(
            devnet.farm_contract_id, "plant", [scval.to_address(farmer.public_key), scval.to_int128(amount)]
        )
        .set_timeout(300)
        .build()
    )


def _prepared_plant(devnet: DevnetHandle, farmer: Keypair, amount: int) -> TransactionEnvelope:
    """A plant prepared against a snapshot where the farmer has not planted in this block."""
    server = devnet.soroban_server()
    tx = _plant_tx(devnet, farmer, amount)
    # simulate on a state without the Pail: delete it, simulate, restore by reverting
    snap = devnet.snapshot()
    from kalepool.kale.storage import pail_ledger_key

    key = pail_ledger_key(devnet.farm_contract_id, farmer.public_key, 0)
    devnet.rpc("devnet_setLedgerEntry", key=key.to_xdr(), entry=None)
    prepared = server.prepare_transaction(tx)
    devnet.revert(snap)
    prepared.sign(farmer)
    return prepared


# ------------------------------------------------------------ validation


def _with_resource_fee(envelope: TransactionEnvelope, resource: int, fee: int, signer: Keypair) -> str:
    tx = envelope.transaction
    assert tx.soroban_data is not None
    tx.soroban_data.resource_fee = sx.Int64(resource)
    tx.fee = fee
    envelope.signatures = []
    envelope.sign(signer)
    return envelope.to_xdr()


def _prepare(devnet: DevnetHandle, farmer: Keypair) -> TransactionEnvelope:
    return devnet.soroban_server().prepare_transaction(_plant_tx(devnet, farmer, 0))


def _error(send: dict) -> tuple[sx.TransactionResult, list[sx.DiagnosticEvent]]:
    assert send["status"] == "ERROR"
    return (
        sx.TransactionResult.from_xdr(send["errorResultXdr"]),
        [sx.DiagnosticEvent.from_xdr(e) for e in send.get("diagnosticEventsXdr", [])],
    )


def test_a_resource_fee_below_the_declared_resources_is_soroban_invalid(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    prepared = _prepare(devnet, farmer)
    sent = devnet.rpc("sendTransaction", transaction=_with_resource_fee(prepared, 1_000, 1_100, farmer))
    result, events = _error(sent)
    assert result.result.code == TRC.txSOROBAN_INVALID
    assert result.fee_charged.int64 == 1_000 + 100  # what core reports: resource fee + base fee
    assert len(events) == 1
    body = events[0].event.body.v0
    assert body is not None and not events[0].in_successful_contract_call
    assert scval.to_native(body.topics[0]) == "error"
    error = body.topics[1].error
    assert error is not None and error.type == sx.SCErrorType.SCE_STORAGE
    assert error.code == sx.SCErrorCode.SCEC_EXCEEDED_LIMIT
    message, declared, required = scval.to_native(body.data)
    assert message == "transaction `sorobanData.resourceFee` is lower than the actual Soroban resource fee"
    assert declared == 1_000 and required > 1_000


def test_a_resource_fee_above_the_full_fee_is_soroban_invalid(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    prepared = _prepare(devnet, farmer)
    declared = prepared.transaction.soroban_data.resource_fee.int64  # type: ignore[union-attr]
    sent = devnet.rpc(
        "sendTransaction", transaction=_with_resource_fee(prepared, declared, declared - 1, farmer)
    )
    result, events = _error(sent)
    assert result.result.code == TRC.txSOROBAN_INVALID
    assert "higher than the full transaction fee" in scval.to_native(events[0].event.body.v0.data)[0]  # type: ignore[union-attr]


def test_a_low_inclusion_fee_is_insufficient_fee_with_no_events(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account()
    prepared = _prepare(devnet, farmer)
    declared = prepared.transaction.soroban_data.resource_fee.int64  # type: ignore[union-attr]
    sent = devnet.rpc(
        "sendTransaction", transaction=_with_resource_fee(prepared, declared, declared + 99, farmer)
    )
    result, events = _error(sent)
    assert result.result.code == TRC.txINSUFFICIENT_FEE
    assert events == []  # stellar-core attaches no diagnostic event to classic codes


def test_a_refundable_fee_too_small_for_the_rent_fails_the_call(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    prepared = _prepare(devnet, farmer)
    tx = prepared.transaction
    assert tx.soroban_data is not None
    trial = _with_resource_fee(prepared, tx.soroban_data.resource_fee.int64, tx.fee, farmer)
    non_refundable = resource_fee(
        parse_envelope(trial, Network(devnet.passphrase).network_id()).declared_resources()
    )[0]
    envelope = _with_resource_fee(prepared, non_refundable, non_refundable + 100, farmer)
    result = devnet.submit(TransactionEnvelope.from_xdr(envelope, devnet.passphrase))
    assert result.status == "FAILED"
    got = devnet.rpc("getTransaction", hash=result.send.hash)
    res_xdr = sx.TransactionResult.from_xdr(got["resultXdr"])
    op = res_xdr.result.results[0].tr.invoke_host_function_result  # type: ignore[index,union-attr]
    assert op.code == sx.InvokeHostFunctionResultCode.INVOKE_HOST_FUNCTION_INSUFFICIENT_REFUNDABLE_FEE
    assert res_xdr.fee_charged.int64 == non_refundable + 100  # nothing to refund


# ------------------------------------------------------------- the table


def test_the_fee_schedule_is_the_devnets_table() -> None:
    cheap = Devnet(DevnetConfig(clock="virtual", seed=1))
    dear = Devnet(DevnetConfig(clock="virtual", seed=1, fees=FeeSchedule(fee_per_write_entry=20_000)))
    fees = []
    for d in (cheap, dear):
        _, tx = engine_plant(d)
        sim = d.simulate(tx.to_xdr())
        assert sim.min_resource_fee is not None
        fees.append(sim.min_resource_fee)
    # plant writes 3 entries (instance, Block, Pail) and creates 2 (two TTL writes in the rent)
    assert fees[1] - fees[0] == pytest.approx(3 * 10_000 + int(2 * 10_000 * 1.15), abs=2)


# ---------------------------------------------------------- fee events


def test_fee_events_are_served_by_get_events_around_the_ledgers_other_events(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    planted = plant(devnet, farmer, KALE)
    ledger = planted.result.ledger  # type: ignore[union-attr]
    events = devnet.rpc("getEvents", startLedger=ledger, endLedger=ledger + 1)["events"]
    kinds = [scval.to_native(sx.SCVal.from_xdr(e["topic"][0])) for e in events]
    assert kinds == ["fee", "burn", "fee"]
    native = Asset.native().contract_id(devnet.passphrase)
    charge, burn, refund = events
    assert charge["contractId"] == refund["contractId"] == native
    assert charge["id"] == f"{ledger << 32:019d}-{0:010d}"  # before every transaction
    assert burn["id"] == f"{(ledger << 32) | (1 << 12):019d}-{0:010d}"  # transaction 1, operation 0
    assert refund["id"] == f"{(ledger << 32) | (((1 << 20) - 1) << 12):019d}-{0:010d}"  # after all of them
    assert refund["transactionIndex"] == (1 << 20) - 1 and charge["transactionIndex"] == 0
    assert scval.to_native(sx.SCVal.from_xdr(refund["value"])) < 0
