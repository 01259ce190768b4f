"""Classic operations as stellar-core applies them: ``create_account``, ``payment`` (XLM
and any credit asset; the issuer mints and burns), ``change_trust`` and
``account_merge``, with their real result codes.

Each works on a copy-on-write :class:`~kalepool.devnet.ledger.Overlay` that the caller
commits only when the whole transaction succeeds.
"""

from __future__ import annotations

from stellar_sdk import StrKey
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    AUTHORIZED_FLAG,
    INT64_MAX,
    Account,
    AssetKey,
    Entry,
    Trustline,
    account_key,
    asset_key_from_xdr,
    muxed_to_g,
    trustline_key,
)
from kalepool.devnet.ledger import BASE_RESERVE, Overlay
from kalepool.devnet.transactions import OT, OpOutcome, ParsedTx, available_balance, min_balance


def _get_account(view: Overlay, account: str) -> Account | None:
    entry = view.get(account_key(account)[0])
    if entry is None:
        return None
    assert isinstance(entry.data, Account)
    return entry.data


def _put(view: Overlay, key: bytes, data: Account | Trustline, seq: int) -> None:
    view.put(key, Entry(data, seq))


def _replace_account(account: Account, **changes: int) -> Account:
    values = {
        "account_id": account.account_id,
        "balance": account.balance,
        "seq_num": account.seq_num,
        "num_subentries": account.num_subentries,
        "flags": account.flags,
    }
    values.update(changes)
    return Account(**values)  # type: ignore[arg-type]


def apply_classic_op(view: Overlay, tx: ParsedTx, op: sx.Operation, ledger_seq: int) -> OpOutcome:
    """Apply one classic operation on ``view``; the caller commits or discards."""
    t = op.body.type
    source_id = tx.op_source(op)
    source = _get_account(view, source_id)
    if source is None:
        return OpOutcome(t, "no_account")
    if t == OT.CREATE_ACCOUNT:
        assert op.body.create_account_op is not None
        return _create_account(view, source, op.body.create_account_op, ledger_seq)
    if t == OT.PAYMENT:
        assert op.body.payment_op is not None
        return _payment(view, source, op.body.payment_op, ledger_seq)
    if t == OT.CHANGE_TRUST:
        assert op.body.change_trust_op is not None
        return _change_trust(view, source, op.body.change_trust_op, ledger_seq)
    if t == OT.ACCOUNT_MERGE:
        assert op.body.destination is not None
        return _account_merge(view, source, muxed_to_g(op.body.destination), ledger_seq)
    return OpOutcome(t, "not_supported")  # pragma: no cover - refused at submission


def _create_account(view: Overlay, source: Account, op: sx.CreateAccountOp, seq: int) -> OpOutcome:
    t = OT.CREATE_ACCOUNT
    dest = StrKey.encode_ed25519_public_key(op.destination.account_id.ed25519.uint256)  # type: ignore[union-attr]
    amount = op.starting_balance.int64
    if _get_account(view, dest) is not None:
        return OpOutcome(t, "inner", -4)  # ALREADY_EXIST
    if amount < 2 * BASE_RESERVE:
        return OpOutcome(t, "inner", -3)  # LOW_RESERVE
    if available_balance(source) < amount:
        return OpOutcome(t, "inner", -2)  # UNDERFUNDED
    _put(
        view,
        account_key(source.account_id)[0],
        _replace_account(source, balance=source.balance - amount),
        seq,
    )
    _put(view, account_key(dest)[0], Account(dest, amount, seq << 32), seq)
    return OpOutcome(t, "inner", 0)


def _payment(view: Overlay, source: Account, op: sx.PaymentOp, seq: int) -> OpOutcome:
    t = OT.PAYMENT
    dest_id = muxed_to_g(op.destination)
    amount = op.amount.int64
    asset = asset_key_from_xdr(op.asset)
    dest = _get_account(view, dest_id)
    if dest is None:
        return OpOutcome(t, "inner", -5)  # NO_DESTINATION
    if asset is None:
        if available_balance(source) < amount:
            return OpOutcome(t, "inner", -2)  # UNDERFUNDED
        if source.account_id == dest_id:
            return OpOutcome(t, "inner", 0)
        if dest.balance + amount > INT64_MAX:
            return OpOutcome(t, "inner", -8)  # LINE_FULL
        _put(
            view,
            account_key(source.account_id)[0],
            _replace_account(source, balance=source.balance - amount),
            seq,
        )
        _put(view, account_key(dest_id)[0], _replace_account(dest, balance=dest.balance + amount), seq)
        return OpOutcome(t, "inner", 0)
    issuer = asset[1]
    # destination side first, as core's path payment does
    dest_line: Trustline | None = None
    if dest_id != issuer:
        dest_line = _trustline(view, dest_id, asset)
        if dest_line is None:
            return OpOutcome(t, "inner", -6)  # NO_TRUST
        if not dest_line.flags & AUTHORIZED_FLAG:
            return OpOutcome(t, "inner", -7)  # NOT_AUTHORIZED
        if dest_line.balance + amount > dest_line.limit:
            return OpOutcome(t, "inner", -8)  # LINE_FULL
    src_line: Trustline | None = None
    if source.account_id != issuer:
        src_line = _trustline(view, source.account_id, asset)
        if src_line is None:
            return OpOutcome(t, "inner", -3)  # SRC_NO_TRUST
        if not src_line.flags & AUTHORIZED_FLAG:
            return OpOutcome(t, "inner", -4)  # SRC_NOT_AUTHORIZED
        if src_line.balance < amount:
            return OpOutcome(t, "inner", -2)  # UNDERFUNDED
    if source.account_id == dest_id:
        return OpOutcome(t, "inner", 0)
    if src_line is not None:
        _put_line(view, src_line, src_line.balance - amount, seq)
    if dest_line is not None:
        fresh = _trustline(view, dest_id, asset)
        assert fresh is not None
        _put_line(view, fresh, fresh.balance + amount, seq)
    return OpOutcome(t, "inner", 0)


def _trustline(view: Overlay, account: str, asset: AssetKey) -> Trustline | None:
    entry = view.get(trustline_key(account, asset)[0])
    if entry is None:
        return None
    assert isinstance(entry.data, Trustline)
    return entry.data


def _put_line(view: Overlay, line: Trustline, balance: int, seq: int, limit: int | None = None) -> None:
    _put(
        view,
        trustline_key(line.account_id, line.asset)[0],
        Trustline(line.account_id, line.asset, balance, line.limit if limit is None else limit, line.flags),
        seq,
    )


def _change_trust(view: Overlay, source: Account, op: sx.ChangeTrustOp, seq: int) -> OpOutcome:
    t = OT.CHANGE_TRUST
    asset = asset_key_from_xdr(op.line)
    assert asset is not None
    limit = op.limit.int64
    if asset[1] == source.account_id:
        return OpOutcome(t, "inner", -5)  # SELF_NOT_ALLOWED
    line = _trustline(view, source.account_id, asset)
    akey = account_key(source.account_id)[0]
    if line is not None:
        if limit == 0:
            if line.balance > 0:
                return OpOutcome(t, "inner", -3)  # INVALID_LIMIT
            view.put(trustline_key(source.account_id, asset)[0], None)
            _put(view, akey, _replace_account(source, num_subentries=source.num_subentries - 1), seq)
            return OpOutcome(t, "inner", 0)
        if limit < line.balance:
            return OpOutcome(t, "inner", -3)  # INVALID_LIMIT
        _put_line(view, line, line.balance, seq, limit)
        return OpOutcome(t, "inner", 0)
    if limit == 0:
        return OpOutcome(t, "inner", -6)  # TRUST_LINE_MISSING
    issuer = _get_account(view, asset[1])
    if issuer is None:
        return OpOutcome(t, "inner", -2)  # NO_ISSUER
    if source.balance < min_balance(source, extra_subentries=1):
        return OpOutcome(t, "inner", -4)  # LOW_RESERVE
    flags = 0 if issuer.flags & 1 else AUTHORIZED_FLAG  # AUTH_REQUIRED issuers start unauthorized
    _put(
        view,
        trustline_key(source.account_id, asset)[0],
        Trustline(source.account_id, asset, 0, limit, flags),
        seq,
    )
    _put(view, akey, _replace_account(source, num_subentries=source.num_subentries + 1), seq)
    return OpOutcome(t, "inner", 0)


def _account_merge(view: Overlay, source: Account, dest_id: str, seq: int) -> OpOutcome:
    t = OT.ACCOUNT_MERGE
    if dest_id == source.account_id:
        return OpOutcome(t, "inner", -1)  # MALFORMED
    dest = _get_account(view, dest_id)
    if dest is None:
        return OpOutcome(t, "inner", -2)  # NO_ACCOUNT
    if source.num_subentries:
        return OpOutcome(t, "inner", -4)  # HAS_SUB_ENTRIES
    if source.seq_num >= seq << 32:
        return OpOutcome(t, "inner", -5)  # SEQNUM_TOO_FAR
    if dest.balance + source.balance > INT64_MAX:
        return OpOutcome(t, "inner", -6)  # DEST_FULL
    view.put(account_key(source.account_id)[0], None)
    _put(view, account_key(dest_id)[0], _replace_account(dest, balance=dest.balance + source.balance), seq)
    return OpOutcome(t, "inner", 0, extra=source.balance)
