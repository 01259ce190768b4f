"""getLatestLedger's LedgerCloseMeta, getLedgers and getTransactions, read back with
stellar-sdk's own models and XDR."""

from __future__ import annotations

import hashlib

import pytest
from stellar_sdk import Asset
from stellar_sdk import xdr as sx

from kalepool.devnet.engine import Devnet, DevnetConfig
from kalepool.devnet.rpc import DevnetRPC
from kalepool.devnet.testing import XLM, ControlError, DevnetHandle
from tests.devnet.helpers import KALE, plant
from tests.devnet.test_classic import builder, send


@pytest.fixture
def mixed(devnet: DevnetHandle) -> tuple[DevnetHandle, int, list[str]]:
    """A ledger with a payment and a plant (applied in that order), then two quiet ones."""
    a, b = devnet.new_account(), devnet.new_account(kale=10 * KALE)
    env = builder(devnet, a).append_payment_op(b.public_key, Asset.native(), "1").build()
    env.sign(a)
    paid, _ = send(devnet, env, close=False)
    planted = plant(devnet, b, KALE, close=False)
    devnet.close_ledgers(1)
    ledger = devnet.latest_ledger()
    devnet.close_ledgers(2)
    return devnet, ledger, [paid.hash, planted.send.hash]


def test_get_latest_ledger_carries_the_ledgers_close_meta(mixed: tuple[DevnetHandle, int, list[str]]) -> None:
    devnet = mixed[0]
    latest = devnet.soroban_server().get_latest_ledger()
    meta = sx.LedgerCloseMeta.from_xdr(latest.metadata_xdr)
    assert meta.v == 2 and meta.v2 is not None
    entry = meta.v2.ledger_header
    assert entry.hash.hash.hex() == latest.id
    assert entry.header.to_xdr() == latest.header_xdr
    assert entry.header.ledger_seq.uint32 == latest.sequence and meta.v2.tx_processing == []


def test_a_ledgers_close_meta_is_its_set_results_fees_meta_and_refunds(
    mixed: tuple[DevnetHandle, int, list[str]],
) -> None:
    devnet, ledger, hashes = mixed
    page = devnet.soroban_server().get_ledgers(ledger, limit=1)
    [info] = page.ledgers
    meta = sx.LedgerCloseMeta.from_xdr(info.metadata_xdr).v2
    assert meta is not None
    header = sx.LedgerHeaderHistoryEntry.from_xdr(info.header_xdr)
    assert header.hash.hash.hex() == info.hash and header.header.ledger_seq.uint32 == ledger
    tx_set = meta.tx_set
    assert hashlib.sha256(tx_set.to_xdr_bytes()).digest() == header.header.scp_value.tx_set_hash.hash
    classic, contracts = tx_set.v1_tx_set.phases  # type: ignore[union-attr]
    assert len(classic.v0_components[0].txs_maybe_discounted_fee.txs) == 1  # type: ignore[index,union-attr]
    [stage] = contracts.parallel_txs_component.execution_stages  # type: ignore[union-attr]
    [cluster] = stage.parallel_tx_execution_stage
    assert len(cluster.dependent_tx_cluster) == 1
    assert [p.result.transaction_hash.hash.hex() for p in meta.tx_processing] == hashes
    for item, tx_hash in zip(meta.tx_processing, hashes, strict=True):
        got = devnet.rpc("getTransaction", hash=tx_hash)
        assert item.tx_apply_processing.to_xdr() == got["resultMetaXdr"]
        assert item.result.result.to_xdr() == got["resultXdr"]
        charged = item.fee_processing.ledger_entry_changes
        assert charged[0].state.data.account.balance.int64 > charged[1].updated.data.account.balance.int64  # type: ignore[union-attr]
    payment, planted = meta.tx_processing
    assert payment.post_tx_apply_fee_processing.ledger_entry_changes == []  # classic: nothing to refund
    refund = planted.post_tx_apply_fee_processing.ledger_entry_changes
    assert refund[1].updated.data.account.balance.int64 > refund[0].state.data.account.balance.int64  # type: ignore[union-attr]
    assert meta.total_byte_size_of_live_soroban_state.uint64 > 0


def test_get_ledgers_pages_by_sequence(mixed: tuple[DevnetHandle, int, list[str]]) -> None:
    devnet = mixed[0]
    server = devnet.soroban_server()
    latest = devnet.latest_ledger()
    first = server.get_ledgers(1, limit=2)
    assert [i.sequence for i in first.ledgers] == [1, 2] and first.cursor == "2"
    assert first.oldest_ledger == 1 and first.latest_ledger == latest
    rest = server.get_ledgers(cursor=first.cursor, limit=200)
    assert [i.sequence for i in rest.ledgers] == list(range(3, latest + 1))
    assert server.get_ledgers(1).ledgers[-1].sequence == min(latest, 50)  # 50 by default
    for bad in ({"startLedger": latest + 1}, {"startLedger": 1, "pagination": {"limit": 201}}):
        with pytest.raises(ControlError) as err:
            devnet.rpc("getLedgers", **bad)
        assert err.value.rpc_code == -32600


def test_get_transactions_pages_by_toid(mixed: tuple[DevnetHandle, int, list[str]]) -> None:
    devnet, ledger, hashes = mixed
    server = devnet.soroban_server()
    page = server.get_transactions(ledger, limit=1)
    [payment] = page.transactions
    assert payment.transaction_hash == hashes[0] and payment.status == "SUCCESS"
    assert payment.ledger == ledger and payment.application_order == 1
    assert int(page.cursor) == (ledger << 32) | (1 << 12) | 1
    rest = server.get_transactions(cursor=page.cursor, limit=10)
    assert [t.transaction_hash for t in rest.transactions] == hashes[1:]
    planted = rest.transactions[0]
    single = devnet.rpc("getTransaction", hash=hashes[1])
    assert (
        planted.result_meta_xdr == single["resultMetaXdr"] and planted.envelope_xdr == single["envelopeXdr"]
    )
    raw = devnet.rpc("getTransactions", startLedger=ledger, pagination={"limit": 5})
    assert isinstance(raw["transactions"][0]["createdAt"], int)  # a number here, a string in getTransaction
    assert raw["transactions"][1]["events"] == single["events"]
    assert int(raw["cursor"]) == (devnet.latest_ledger() << 32) | 1  # scanned to the latest ledger
    with pytest.raises(ControlError) as err:
        devnet.rpc("getTransactions", startLedger=devnet.latest_ledger() + 1)
    assert err.value.rpc_code == -32600


def test_history_is_kept_for_the_retention_window() -> None:
    engine = Devnet(DevnetConfig(clock="virtual", retention_ledgers=5, seed=1))
    engine.close_ledgers(10)
    rpc = DevnetRPC(engine, info=dict)
    reply = rpc.handle({"jsonrpc": "2.0", "id": 1, "method": "getLedgers", "params": {"startLedger": 7}})
    assert [i["sequence"] for i in reply["result"]["ledgers"]] == [7, 8, 9, 10, 11]
    assert reply["result"]["oldestLedger"] == 7
    old = rpc.handle({"jsonrpc": "2.0", "id": 2, "method": "getTransactions", "params": {"startLedger": 6}})
    assert old["error"]["code"] == -32600 and "oldest ledger: 7" in old["error"]["message"]
    assert engine.state.oldest.sequence == 7 and XLM > 0
