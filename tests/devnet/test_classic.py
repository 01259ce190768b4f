"""Accounts, fees and classic operations, driven through SorobanServer and HTTP."""

from __future__ import annotations

import time

import pytest
from stellar_sdk import Account, Asset, Keypair, TransactionBuilder, TransactionEnvelope
from stellar_sdk import xdr as sx
from stellar_sdk.soroban_rpc import GetTransactionStatus, SendTransactionStatus

from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.networks import DEVNET
from kalepool.kale.storage import account_ledger_key, trustline_ledger_key

XLM = 10_000_000
KALE = Asset("KALE", DEVNET.kale_issuer)


def builder(
    devnet: DevnetHandle, source: Keypair, sequence: int | None = None, fee: int = 100
) -> TransactionBuilder:
    server = devnet.soroban_server()
    account = (
        server.load_account(source.public_key) if sequence is None else Account(source.public_key, sequence)
    )
    return TransactionBuilder(account, devnet.passphrase, base_fee=fee).set_timeout(60)


def send(devnet: DevnetHandle, envelope: TransactionEnvelope, close: bool = True):
    server = devnet.soroban_server()
    sent = server.send_transaction(envelope)
    if not close or sent.status != SendTransactionStatus.PENDING:
        return sent, None
    devnet.close_ledgers(1)
    return sent, server.get_transaction(sent.hash)


def result_of(xdr: str) -> sx.TransactionResult:
    return sx.TransactionResult.from_xdr(xdr)


def xlm_balance(devnet: DevnetHandle, address: str) -> int:
    found = devnet.soroban_server().get_ledger_entries([account_ledger_key(address)])
    assert found.entries
    data = sx.LedgerEntryData.from_xdr(found.entries[0].xdr)
    assert data.account is not None
    return data.account.balance.int64


def kale_line(devnet: DevnetHandle, address: str) -> int | None:
    key = trustline_ledger_key(address, "KALE", DEVNET.kale_issuer)
    found = devnet.soroban_server().get_ledger_entries([key])
    if not found.entries:
        return None
    data = sx.LedgerEntryData.from_xdr(found.entries[0].xdr)
    assert data.trust_line is not None
    return data.trust_line.balance.int64


# ---------------------------------------------------------------- friendbot


def test_friendbot_creates_and_funds_an_account(devnet: DevnetHandle) -> None:
    kp = Keypair.random()
    before = devnet.latest_ledger()
    response = devnet.friendbot(kp.public_key)
    assert response.status_code == 200
    body = response.json()
    assert body["successful"] is True and body["ledger"] == before + 1
    assert xlm_balance(devnet, kp.public_key) == 10_000 * XLM
    account = devnet.soroban_server().load_account(kp.public_key)
    assert account.sequence == (before + 1) << 32
    again = devnet.friendbot(kp.public_key)
    assert again.status_code == 400 and "already funded" in again.json()["detail"]
    assert devnet.friendbot("GNOTANADDRESS").status_code == 400


# ------------------------------------------------------------ classic ops


def test_trustline_payment_and_fees(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(xlm=100 * XLM)
    issuer = devnet.kale_issuer
    before = xlm_balance(devnet, farmer.public_key)
    env = builder(devnet, farmer).append_change_trust_op(KALE).build()
    env.sign(farmer)
    _, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.SUCCESS
    assert result_of(got.result_xdr).fee_charged.int64 == 100
    assert xlm_balance(devnet, farmer.public_key) == before - 100
    assert kale_line(devnet, farmer.public_key) == 0
    # KALE from the issuer (a mint in classic terms) and XLM back
    env = (
        builder(devnet, issuer)
        .append_payment_op(farmer.public_key, KALE, "12.5")
        .append_payment_op(farmer.public_key, Asset.native(), "1")
        .build()
    )
    env.sign(issuer)
    _sent, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.SUCCESS
    assert result_of(got.result_xdr).fee_charged.int64 == 200  # 100 per operation
    assert kale_line(devnet, farmer.public_key) == 125_000_000
    assert xlm_balance(devnet, farmer.public_key) == before - 100 + XLM
    meta = sx.TransactionMeta.from_xdr(got.result_meta_xdr)
    assert meta.v == 4 and meta.v4 is not None and len(meta.v4.operations) == 2


def test_payment_failures_keep_fee_and_sequence(devnet: DevnetHandle) -> None:
    payer = devnet.new_account(xlm=100 * XLM)
    stranger = devnet.new_account(xlm=10 * XLM)
    start = devnet.soroban_server().load_account(payer.public_key).sequence
    balance = xlm_balance(devnet, payer.public_key)
    # KALE to an account without a trustline; the payer holds none either
    env = builder(devnet, payer).append_payment_op(stranger.public_key, KALE, "1").build()
    env.sign(payer)
    _sent, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.FAILED
    res = result_of(got.result_xdr)
    assert res.result.code == sx.TransactionResultCode.txFAILED
    assert res.result.results[0].tr.payment_result.code == sx.PaymentResultCode.PAYMENT_NO_TRUST
    assert xlm_balance(devnet, payer.public_key) == balance - 100
    assert devnet.soroban_server().load_account(payer.public_key).sequence == start + 1
    # more XLM than available: the reserve (2 x 0.5 XLM) stays put
    env = builder(devnet, payer).append_payment_op(stranger.public_key, Asset.native(), "99.9999").build()
    env.sign(payer)
    _, got = send(devnet, env)
    assert got is not None
    res = result_of(got.result_xdr)
    assert res.result.results[0].tr.payment_result.code == sx.PaymentResultCode.PAYMENT_UNDERFUNDED
    # to nobody
    env = builder(devnet, payer).append_payment_op(Keypair.random().public_key, Asset.native(), "1").build()
    env.sign(payer)
    _, got = send(devnet, env)
    assert got is not None
    assert (
        result_of(got.result_xdr).result.results[0].tr.payment_result.code
        == sx.PaymentResultCode.PAYMENT_NO_DESTINATION
    )


def test_failed_operation_rolls_back_earlier_ones(devnet: DevnetHandle) -> None:
    payer = devnet.new_account(xlm=100 * XLM)
    friend = devnet.new_account(xlm=10 * XLM)
    before = xlm_balance(devnet, friend.public_key)
    env = (
        builder(devnet, payer)
        .append_payment_op(friend.public_key, Asset.native(), "5")
        .append_payment_op(Keypair.random().public_key, Asset.native(), "1")
        .build()
    )
    env.sign(payer)
    _, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.FAILED
    codes = [r.tr.payment_result.code for r in result_of(got.result_xdr).result.results]
    assert codes == [sx.PaymentResultCode.PAYMENT_SUCCESS, sx.PaymentResultCode.PAYMENT_NO_DESTINATION]
    assert xlm_balance(devnet, friend.public_key) == before  # the first payment was undone


def test_create_account_and_merge(devnet: DevnetHandle) -> None:
    funder = devnet.new_account(xlm=100 * XLM)
    new = Keypair.random()
    env = builder(devnet, funder).append_create_account_op(new.public_key, "0.5").build()
    env.sign(funder)
    _, got = send(devnet, env)
    assert got is not None
    code = result_of(got.result_xdr).result.results[0].tr.create_account_result.code
    assert code == sx.CreateAccountResultCode.CREATE_ACCOUNT_LOW_RESERVE
    env = builder(devnet, funder).append_create_account_op(new.public_key, "20").build()
    env.sign(funder)
    _, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.SUCCESS
    # merge it back (the source pays its own fee first)
    env = builder(devnet, new).append_account_merge_op(funder.public_key).build()
    env.sign(new)
    before = xlm_balance(devnet, funder.public_key)
    _, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.SUCCESS
    merge = result_of(got.result_xdr).result.results[0].tr.account_merge_result
    assert merge.source_account_balance.int64 == 20 * XLM - 100
    assert xlm_balance(devnet, funder.public_key) == before + 20 * XLM - 100
    assert devnet.soroban_server().get_ledger_entries([account_ledger_key(new.public_key)]).entries == []


def test_merge_with_a_trustline_is_refused(devnet: DevnetHandle) -> None:
    holder = devnet.new_account(kale=0)
    devnet.fund(holder.public_key, kale=1)
    env = builder(devnet, holder).append_account_merge_op(devnet.kale_issuer.public_key).build()
    env.sign(holder)
    _, got = send(devnet, env)
    assert got is not None
    code = result_of(got.result_xdr).result.results[0].tr.account_merge_result.code
    assert code == sx.AccountMergeResultCode.ACCOUNT_MERGE_HAS_SUB_ENTRIES


def test_removing_a_trustline_needs_a_zero_balance(devnet: DevnetHandle) -> None:
    holder = devnet.new_account(kale=5)
    env = builder(devnet, holder).append_change_trust_op(KALE, limit="0").build()
    env.sign(holder)
    _, got = send(devnet, env)
    assert got is not None
    code = result_of(got.result_xdr).result.results[0].tr.change_trust_result.code
    assert code == sx.ChangeTrustResultCode.CHANGE_TRUST_INVALID_LIMIT
    env = (
        builder(devnet, holder)
        .append_payment_op(DEVNET.kale_issuer, KALE, "0.0000005")
        .append_change_trust_op(KALE, limit="0")
        .build()
    )
    env.sign(holder)
    _, got = send(devnet, env)
    assert got is not None and got.status == GetTransactionStatus.SUCCESS
    assert kale_line(devnet, holder.public_key) is None


def test_unsupported_operation_is_refused_with_a_clear_result(devnet: DevnetHandle) -> None:
    kp = devnet.new_account()
    env = builder(devnet, kp).append_manage_data_op("k", b"v").build()
    env.sign(kp)
    sent, _ = send(devnet, env)
    assert sent.status == SendTransactionStatus.ERROR
    res = result_of(sent.error_result_xdr)
    assert res.result.code == sx.TransactionResultCode.txFAILED
    assert res.result.results[0].code == sx.OperationResultCode.opNOT_SUPPORTED
    assert sent.diagnostic_events_xdr  # says why, in words
    text = sx.DiagnosticEvent.from_xdr(sent.diagnostic_events_xdr[0]).event.body.v0.data.str.sc_string
    assert b"not supported" in text


# ----------------------------------------------------- transaction checks


def test_reused_sequence_number_is_bad_seq(devnet: DevnetHandle) -> None:
    kp = devnet.new_account()
    seq = devnet.soroban_server().load_account(kp.public_key).sequence
    first = builder(devnet, kp, seq).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    first.sign(kp)
    assert send(devnet, first)[1].status == GetTransactionStatus.SUCCESS
    again = builder(devnet, kp, seq).append_payment_op(DEVNET.kale_issuer, Asset.native(), "2").build()
    again.sign(kp)
    sent, _ = send(devnet, again)
    assert sent.status == SendTransactionStatus.ERROR
    assert result_of(sent.error_result_xdr).result.code == sx.TransactionResultCode.txBAD_SEQ
    # the same envelope again, after it applied: also a bad sequence number
    sent, _ = send(devnet, first)
    assert sent.status == SendTransactionStatus.ERROR
    assert result_of(sent.error_result_xdr).result.code == sx.TransactionResultCode.txBAD_SEQ
    # a gap is refused too
    gap = builder(devnet, kp, seq + 5).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    gap.sign(kp)
    assert result_of(send(devnet, gap)[0].error_result_xdr).result.code == sx.TransactionResultCode.txBAD_SEQ


def test_forged_signatures_are_bad_auth(devnet: DevnetHandle) -> None:
    kp = devnet.new_account()
    env = builder(devnet, kp).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    env.sign(Keypair.random())  # someone else's key
    sent, _ = send(devnet, env)
    assert sent.status == SendTransactionStatus.ERROR
    assert result_of(sent.error_result_xdr).result.code == sx.TransactionResultCode.txBAD_AUTH
    # a valid signature over a different network's hash
    env = TransactionBuilder(
        devnet.soroban_server().load_account(kp.public_key), "Test SDF Network ; September 2015", 100
    )
    env = env.append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").set_timeout(60).build()
    env.sign(kp)
    assert result_of(send(devnet, env)[0].error_result_xdr).result.code == sx.TransactionResultCode.txBAD_AUTH
    # unsigned
    env = builder(devnet, kp).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    assert result_of(send(devnet, env)[0].error_result_xdr).result.code == sx.TransactionResultCode.txBAD_AUTH
    # a tampered signature byte
    env = builder(devnet, kp).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    env.sign(kp)
    raw = bytearray(env.signatures[0].signature)
    raw[0] ^= 1
    env.signatures[0].signature = bytes(raw)
    assert result_of(send(devnet, env)[0].error_result_xdr).result.code == sx.TransactionResultCode.txBAD_AUTH


def test_extra_signature_and_operation_source(devnet: DevnetHandle) -> None:
    kp, other = devnet.new_account(), devnet.new_account()
    env = builder(devnet, kp).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    env.sign(kp)
    env.sign(other)
    assert (
        result_of(send(devnet, env)[0].error_result_xdr).result.code
        == sx.TransactionResultCode.txBAD_AUTH_EXTRA
    )
    # an operation sourced by `other` needs other's signature
    env = (
        builder(devnet, kp)
        .append_payment_op(DEVNET.kale_issuer, Asset.native(), "1", source=other.public_key)
        .build()
    )
    env.sign(kp)
    res = result_of(send(devnet, env)[0].error_result_xdr)
    assert res.result.code == sx.TransactionResultCode.txFAILED
    assert res.result.results[0].code == sx.OperationResultCode.opBAD_AUTH
    env.sign(other)
    assert send(devnet, env)[1].status == GetTransactionStatus.SUCCESS


def test_fee_and_balance_checks(devnet: DevnetHandle) -> None:
    kp = devnet.new_account(xlm=2 * XLM)  # exactly the reserve of an account with no subentry... plus 1 XLM
    env = builder(devnet, kp, fee=99).append_payment_op(DEVNET.kale_issuer, Asset.native(), "0.1").build()
    env.sign(kp)
    assert (
        result_of(send(devnet, env)[0].error_result_xdr).result.code
        == sx.TransactionResultCode.txINSUFFICIENT_FEE
    )
    poor = devnet.new_account(xlm=XLM + 50)  # 50 stroops above the reserve
    env = builder(devnet, poor).append_payment_op(DEVNET.kale_issuer, Asset.native(), "0.0000001").build()
    env.sign(poor)
    assert (
        result_of(send(devnet, env)[0].error_result_xdr).result.code
        == sx.TransactionResultCode.txINSUFFICIENT_BALANCE
    )
    ghost = Keypair.random()
    env = builder(devnet, ghost, 1).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    env.sign(ghost)
    assert (
        result_of(send(devnet, env)[0].error_result_xdr).result.code == sx.TransactionResultCode.txNO_ACCOUNT
    )


def test_time_bounds_are_checked(devnet: DevnetHandle) -> None:
    kp = devnet.new_account()
    server = devnet.soroban_server()
    now = int(time.time())
    late = (
        TransactionBuilder(server.load_account(kp.public_key), devnet.passphrase, 100)
        .append_payment_op(DEVNET.kale_issuer, Asset.native(), "1")
        .add_time_bounds(0, now - 10)
        .build()
    )
    late.sign(kp)
    assert (
        result_of(send(devnet, late)[0].error_result_xdr).result.code == sx.TransactionResultCode.txTOO_LATE
    )
    early = (
        TransactionBuilder(server.load_account(kp.public_key), devnet.passphrase, 100)
        .append_payment_op(DEVNET.kale_issuer, Asset.native(), "1")
        .add_time_bounds(now + 3600, 0)
        .build()
    )
    early.sign(kp)
    assert (
        result_of(send(devnet, early)[0].error_result_xdr).result.code == sx.TransactionResultCode.txTOO_EARLY
    )


def test_queue_statuses(devnet: DevnetHandle) -> None:
    kp = devnet.new_account()
    seq = devnet.soroban_server().load_account(kp.public_key).sequence
    first = builder(devnet, kp, seq).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    first.sign(kp)
    second = builder(devnet, kp, seq + 1).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    second.sign(kp)
    server = devnet.soroban_server()
    sent = server.send_transaction(first)
    assert sent.status == SendTransactionStatus.PENDING
    assert server.send_transaction(first).status == SendTransactionStatus.DUPLICATE
    # one pending transaction per source account, as stellar-core's queue
    assert server.send_transaction(second).status == SendTransactionStatus.TRY_AGAIN_LATER
    assert server.get_transaction(sent.hash).status == GetTransactionStatus.NOT_FOUND  # not applied yet
    assert devnet.rpc("devnet_pending")["hashes"] == [sent.hash]
    devnet.close_ledgers(1)
    got = server.get_transaction(sent.hash)
    assert got.status == GetTransactionStatus.SUCCESS and got.ledger == devnet.latest_ledger()
    assert got.application_order == 1 and got.fee_bump is False
    assert got.envelope_xdr == first.to_xdr()
    assert server.send_transaction(second).status == SendTransactionStatus.PENDING


def test_fee_bump(devnet: DevnetHandle) -> None:
    inner_source, sponsor = devnet.new_account(xlm=5 * XLM), devnet.new_account(xlm=50 * XLM)
    inner = builder(devnet, inner_source).append_payment_op(DEVNET.kale_issuer, Asset.native(), "1").build()
    inner.sign(inner_source)
    inner_balance = xlm_balance(devnet, inner_source.public_key)
    bump = TransactionBuilder.build_fee_bump_transaction(sponsor.public_key, 200, inner, devnet.passphrase)
    bump.sign(sponsor)
    sent, got = send(devnet, bump)
    assert sent.hash == bump.hash_hex()
    assert got is not None and got.status == GetTransactionStatus.SUCCESS and got.fee_bump is True
    res = result_of(got.result_xdr)
    assert res.result.code == sx.TransactionResultCode.txFEE_BUMP_INNER_SUCCESS
    assert res.fee_charged.int64 == 200
    assert xlm_balance(devnet, inner_source.public_key) == inner_balance - XLM  # the sponsor paid the fee


@pytest.mark.parametrize("xlm", [0, 123])
def test_fund_control(devnet: DevnetHandle, xlm: int) -> None:
    kp = Keypair.random()
    out = devnet.fund(kp.public_key, xlm=XLM + xlm, kale=7)
    assert out["xlm"] == XLM + xlm and out["kale"] == 7
    assert kale_line(devnet, kp.public_key) == 7
