"""Unified events (CAP-67) of classic operations: stellar-core emits the asset's SAC
``transfer``/``mint``/``burn`` for payments, account creations and merges, in the
operation's meta, ``getTransaction`` and ``getEvents``."""

from __future__ import annotations

from typing import Any

from stellar_sdk import Asset, Keypair, MuxedAccount, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.networks import DEVNET
from tests.devnet.test_classic import KALE, XLM, builder, send


def op_events(devnet: DevnetHandle, tx_hash: str) -> list[tuple[str, list[Any], Any]]:
    """``(contract, topics, data)`` of a transaction's operation events, via getTransaction,
    checked against the same events in its meta."""
    got = devnet.rpc("getTransaction", hash=tx_hash)
    meta = sx.TransactionMeta.from_xdr(got["resultMetaXdr"]).v4
    assert meta is not None
    in_meta = [e.to_xdr() for op in meta.operations for e in op.events]
    served = [e for op in got["events"]["contractEventsXdr"] for e in op]
    assert served == in_meta
    out = []
    for raw in served:
        event = sx.ContractEvent.from_xdr(raw)
        body = event.body.v0
        assert body is not None and event.contract_id is not None
        contract = scval.from_address(sx.SCVal(sx.SCValType.SCV_ADDRESS, address=sx.SCAddress(
            sx.SCAddressType.SC_ADDRESS_TYPE_CONTRACT, contract_id=event.contract_id))).address  # fmt: skip
        topics = [_native(t) for t in body.topics]
        out.append((contract, topics, _native(body.data)))
    return out


def _native(val: sx.SCVal) -> Any:
    native = scval.to_native(val)
    return native.address if hasattr(native, "address") else native


def kale_sac(devnet: DevnetHandle) -> str:
    return KALE.contract_id(devnet.passphrase)


NATIVE = Asset.native().contract_id(DEVNET.passphrase)
KALE_NAME = f"KALE:{DEVNET.kale_issuer}"


def test_an_xlm_payment_is_a_native_transfer(devnet: DevnetHandle) -> None:
    a, b = devnet.new_account(), devnet.new_account()
    env = builder(devnet, a).append_payment_op(b.public_key, Asset.native(), "2.5").build()
    env.sign(a)
    sent, _ = send(devnet, env)
    assert op_events(devnet, sent.hash) == [
        (NATIVE, ["transfer", a.public_key, b.public_key, "native"], 25_000_000)
    ]


def test_kale_from_the_issuer_is_a_mint_and_to_it_a_burn(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=5 * XLM)
    issuer = devnet.kale_issuer
    env = builder(devnet, issuer).append_payment_op(farmer.public_key, KALE, "3").build()
    env.sign(issuer)
    minted, _ = send(devnet, env)
    assert op_events(devnet, minted.hash) == [
        (kale_sac(devnet), ["mint", farmer.public_key, KALE_NAME], 30_000_000)
    ]
    env = builder(devnet, farmer).append_payment_op(issuer.public_key, KALE, "1").build()
    env.sign(farmer)
    burned, _ = send(devnet, env)
    assert op_events(devnet, burned.hash) == [
        (kale_sac(devnet), ["burn", farmer.public_key, KALE_NAME], 10_000_000)
    ]


def test_a_memo_or_a_muxed_destination_is_named_in_the_data(devnet: DevnetHandle) -> None:
    a, b = devnet.new_account(kale=5 * XLM), devnet.new_account(kale=1)
    env = builder(devnet, a).add_text_memo("payout 7").append_payment_op(b.public_key, KALE, "1").build()
    env.sign(a)
    with_memo, _ = send(devnet, env)
    [(contract, topics, data)] = op_events(devnet, with_memo.hash)
    assert contract == kale_sac(devnet) and topics == ["transfer", a.public_key, b.public_key, KALE_NAME]
    assert data == {"amount": 10_000_000, "to_muxed_id": "payout 7"}
    muxed = MuxedAccount(b.public_key, 42)
    env = builder(devnet, a).append_payment_op(muxed, Asset.native(), "1").build()
    env.sign(a)
    to_muxed, _ = send(devnet, env)
    [(_, topics, data)] = op_events(devnet, to_muxed.hash)
    assert topics[2] == b.public_key  # the muxed id is dropped from the topic...
    assert data == {"amount": 10_000_000, "to_muxed_id": 42}  # ...and named in the data


def test_account_creation_and_merge_move_xlm(devnet: DevnetHandle) -> None:
    a = devnet.new_account(xlm=100 * XLM)
    fresh = Keypair.random()
    env = builder(devnet, a).append_create_account_op(fresh.public_key, "10").build()
    env.sign(a)
    created, _ = send(devnet, env)
    assert op_events(devnet, created.hash) == [
        (NATIVE, ["transfer", a.public_key, fresh.public_key, "native"], 100_000_000)
    ]
    env = builder(devnet, fresh).append_account_merge_op(a.public_key).build()
    env.sign(fresh)
    merged, got = send(devnet, env)
    assert got is not None
    left = sx.TransactionResult.from_xdr(got.result_xdr).result.results[0].tr.account_merge_result  # type: ignore[index,union-attr]
    assert op_events(devnet, merged.hash) == [
        (NATIVE, ["transfer", fresh.public_key, a.public_key, "native"], left.source_account_balance.int64)  # type: ignore[union-attr]
    ]


def test_classic_events_are_served_by_get_events_and_failed_operations_emit_none(
    devnet: DevnetHandle,
) -> None:
    a, b = devnet.new_account(), devnet.new_account()
    start = devnet.latest_ledger() + 1
    env = builder(devnet, a).append_payment_op(b.public_key, KALE, "1").build()  # a has no KALE
    env.sign(a)
    failed, got = send(devnet, env)
    assert got is not None and got.status.value == "FAILED"
    assert op_events(devnet, failed.hash) == []
    env = builder(devnet, a).append_payment_op(b.public_key, Asset.native(), "1").build()
    env.sign(a)
    paid, _ = send(devnet, env)
    found = devnet.rpc("getEvents", startLedger=start, filters=[{"contractIds": [NATIVE]}])["events"]
    transfers = [e for e in found if scval.to_native(sx.SCVal.from_xdr(e["topic"][0])) == "transfer"]
    assert [e["txHash"] for e in transfers] == [paid.hash]
    assert transfers[0]["operationIndex"] == 0 and transfers[0]["inSuccessfulContractCall"] is True
