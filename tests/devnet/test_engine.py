"""The engine without HTTP: clock, ledger chain, queue, atomicity, snapshots, fees."""

from __future__ import annotations

import time

import httpx
import pytest
from stellar_sdk import Account, Asset, Keypair, TransactionBuilder, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.engine import Devnet, DevnetConfig, DevnetError
from kalepool.devnet.server import DevnetServer
from kalepool.devnet.transactions import parse_envelope
from kalepool.kale.networks import DEVNET

XLM = 10_000_000


def engine(**kw: object) -> Devnet:
    return Devnet(DevnetConfig(clock="virtual", seed=0, **kw))  # type: ignore[arg-type]


def payment(
    devnet: Devnet, source: Keypair, dest: str, amount: str = "1", seq: int | None = None, fee: int = 100
) -> str:
    account = devnet.account(source.public_key)
    assert account is not None
    tx = (
        TransactionBuilder(
            Account(source.public_key, account.seq_num if seq is None else seq), DEVNET.passphrase, fee
        )
        .append_payment_op(dest, Asset.native(), amount)
        .set_timeout(60)
        .build()
    )
    tx.sign(source)
    return tx.to_xdr()


def test_ledgers_chain_by_hash_and_time() -> None:
    d = engine(ledger_seconds=5)
    first = d.latest()
    second = d.close_ledger()
    third = d.close_ledger()
    assert (second.sequence, third.sequence) == (first.sequence + 1, first.sequence + 2)
    assert (second.close_time, third.close_time) == (first.close_time + 5, first.close_time + 10)
    header = sx.LedgerHeader.from_xdr(third.header_xdr)
    assert header.previous_ledger_hash.hash == second.hash
    assert d.advance_time(100) == third.close_time + 105
    assert d.close_ledger().close_time == third.close_time + 105
    with pytest.raises(DevnetError):
        d.advance_time(-1)


def test_sub_second_ledgers_need_an_explicit_time_scale() -> None:
    with pytest.raises(ValueError, match="time_scale to 5 or more"):
        engine(ledger_seconds=0.2)  # close times are whole seconds: it would run 5x fast unsaid
    d = engine(ledger_seconds=0.2, time_scale=5)
    t0 = d.latest().close_time
    assert [d.close_ledger().close_time - t0 for _ in range(3)] == [1, 2, 3]


def test_wall_clock_mode_follows_the_clock() -> None:
    now = [1_900_000_000.0]
    d = Devnet(DevnetConfig(clock="wall", wall_clock=lambda: now[0]))
    now[0] += 7.5
    assert d.close_ledger().close_time == 1_900_000_007
    assert d.close_ledger().close_time == 1_900_000_008  # strictly increasing even if the clock stalls
    d.advance_time(60)
    assert d.close_ledger().close_time == 1_900_000_067


def test_wall_clock_close_times_follow_the_time_scale() -> None:
    """0.5 s ledgers at twice the wall clock's pace: 16 ledgers in 8 s are 16 chain seconds
    (before, each ledger added at least 1 s: chain time ran 2x wall time, unsaid)."""
    now = [1_900_000_000.0]
    d = Devnet(DevnetConfig(clock="wall", ledger_seconds=0.5, time_scale=2, wall_clock=lambda: now[0]))
    start = d.latest().close_time
    for _ in range(16):
        now[0] += 0.5
        d.close_ledger()
    assert d.latest().close_time - start == 16 and d.ahead_seconds() == 0
    one = Devnet(DevnetConfig(clock="wall", ledger_seconds=1, wall_clock=lambda: now[0]))
    begin = one.latest().close_time
    for _ in range(10):
        now[0] += 1
        one.close_ledger()
    assert one.latest().close_time - begin == 10 and one.ahead_seconds() == 0
    one.close_ledgers(5)  # the controls close faster than the clock: reported, not hidden
    assert one.ahead_seconds() == 5


def test_fees_and_sequence_are_charged_on_failure_and_nothing_else_changes() -> None:
    d = engine()
    a, b = Keypair.random(), Keypair.random()
    d.fund(a.public_key, 100 * XLM)
    d.fund(b.public_key, 100 * XLM)
    before_a, before_b = d.account(a.public_key), d.account(b.public_key)
    assert before_a is not None and before_b is not None
    sent = d.send(payment(d, a, b.public_key, "1000"))  # more than a has: UNDERFUNDED at apply
    assert sent.status == "PENDING"
    d.close_ledger()
    record = d.get_transaction(sent.hash)
    assert record is not None and not record.successful
    after_a, after_b = d.account(a.public_key), d.account(b.public_key)
    assert after_a is not None and after_b is not None
    assert after_a.balance == before_a.balance - 100 and after_a.seq_num == before_a.seq_num + 1
    assert after_b == before_b
    assert d.state.fee_pool == 100


def test_transaction_dropped_when_it_expires_in_the_queue() -> None:
    now = [1_900_000_000.0]
    d = Devnet(DevnetConfig(clock="wall", wall_clock=lambda: now[0]))
    a = Keypair.random()
    d.fund(a.public_key, 100 * XLM)
    account = d.account(a.public_key)
    assert account is not None
    tx = (
        TransactionBuilder(Account(a.public_key, account.seq_num), DEVNET.passphrase, 100)
        .append_payment_op(DEVNET.kale_issuer, Asset.native(), "1")
        .add_time_bounds(0, int(now[0]) + 10)
        .build()
    )
    tx.sign(a)
    assert d.send(tx.to_xdr()).status == "PENDING"
    now[0] += 60
    d.close_ledger()
    assert d.get_transaction(tx.hash_hex()) is None
    assert "txTOO_LATE" in d.dropped[tx.hash_hex()]
    assert d.account(a.public_key) == account  # never applied, nothing charged


def test_snapshot_and_revert() -> None:
    d = engine()
    a = Keypair.random()
    d.fund(a.public_key, 100 * XLM)
    sid = d.snapshot()
    seq = d.latest().sequence
    sent = d.send(payment(d, a, DEVNET.kale_issuer))
    d.close_ledgers(3)
    assert d.get_transaction(sent.hash) is not None
    d.revert(sid)
    assert d.latest().sequence == seq and d.get_transaction(sent.hash) is None
    assert d.pending() == []
    d.revert(sid)  # a snapshot can be reverted to more than once
    with pytest.raises(DevnetError):
        d.revert(999)


def test_retention_window_forgets_old_transactions() -> None:
    d = engine(retention_ledgers=5)
    a = Keypair.random()
    d.fund(a.public_key, 100 * XLM)
    sent = d.send(payment(d, a, DEVNET.kale_issuer))
    d.close_ledger()
    assert d.get_transaction(sent.hash) is not None
    d.close_ledgers(5)
    assert d.get_transaction(sent.hash) is None
    assert d.latest().sequence - d.oldest().sequence == 4


def test_envelope_hash_matches_the_sdk_for_several_signatures() -> None:
    a, b = Keypair.random(), Keypair.random()
    tx = (
        TransactionBuilder(Account(a.public_key, 5), DEVNET.passphrase, 100)
        .append_payment_op(b.public_key, Asset.native(), "1")
        .append_payment_op(a.public_key, Asset.native(), "1", source=b.public_key)
        .add_text_memo("hello")
        .set_timeout(60)
        .build()
    )
    tx.sign(a)
    tx.sign(b)
    parsed = parse_envelope(tx.to_xdr(), Devnet(DevnetConfig()).network_id)
    assert parsed.hash == tx.hash()
    assert parsed.source == a.public_key and parsed.seq == 6 and parsed.fee == 200
    with pytest.raises(ValueError):
        parse_envelope("AAAA", b"0" * 32)


def test_expired_temporary_entries_are_purged() -> None:
    d = engine(temp_ttl=3)
    d.set_entry(*_temporary_entry(d))
    before = len(d.state.entries)
    d.close_ledgers(70)  # purging runs every 64 ledgers
    assert len(d.state.entries) == before - 1


def _temporary_entry(d: Devnet) -> tuple[str, str]:
    key = sx.LedgerKey(
        sx.LedgerEntryType.CONTRACT_DATA,
        contract_data=sx.LedgerKeyContractData(
            scval.to_address(d.config.farm_contract_id).address,
            scval.to_symbol("x"),
            sx.ContractDataDurability.TEMPORARY,
        ),
    )
    data = sx.LedgerEntryData(
        sx.LedgerEntryType.CONTRACT_DATA,
        contract_data=sx.ContractDataEntry(
            sx.ExtensionPoint(0),
            key.contract_data.contract,
            key.contract_data.key,  # type: ignore[union-attr]
            sx.ContractDataDurability.TEMPORARY,
            scval.to_uint32(1),
        ),
    )
    return key.to_xdr(), data.to_xdr()


def test_timer_closes_ledgers_by_itself() -> None:
    """The one test that waits on the wall clock: the auto-close timer."""
    with DevnetServer(DevnetConfig(ledger_seconds=0.1, time_scale=10), port=0, auto_close=True) as server:
        start = server.engine.latest().sequence
        deadline = time.monotonic() + 5
        while server.engine.latest().sequence < start + 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.engine.latest().sequence >= start + 3
        # friendbot waits for the timer's ledger instead of closing one itself
        kp = Keypair.random()
        response = httpx.get(server.friendbot_url, params={"addr": kp.public_key}, timeout=10)
        assert response.status_code == 200 and response.json()["successful"]
