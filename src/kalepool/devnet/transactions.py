"""Transactions: envelope decoding, the validity checks, classic operations, results.

A transaction goes through :func:`parse_envelope` (hash, sources, fee, preconditions),
:func:`check_signatures` (ed25519 signatures of every source account, no extra ones),
:func:`check_valid` (sequence number, time and ledger bounds, fee, balance) and, at
ledger close, :func:`apply_classic_op` for its classic operations. Result codes are
the real ones (``txBAD_SEQ``, ``PAYMENT_UNDERFUNDED``, ...) and results are built as
``TransactionResult`` XDR only when somebody asks for them.

Accounts have the master key only (weight 1, thresholds 0): the devnet supports no
``set_options``, so one valid signature of each source account is what authorizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
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
    sha256,
    trustline_key,
    unb64,
)
from kalepool.devnet.ledger import BASE_FEE, BASE_RESERVE, Overlay

OT = sx.OperationType
TRC = sx.TransactionResultCode

SUPPORTED_CLASSIC = {OT.CREATE_ACCOUNT, OT.PAYMENT, OT.CHANGE_TRUST, OT.ACCOUNT_MERGE}
SOROBAN_OPS = {OT.INVOKE_HOST_FUNCTION, OT.EXTEND_FOOTPRINT_TTL, OT.RESTORE_FOOTPRINT}
MAX_OPS = 100
_ENVELOPE_TX = (2).to_bytes(4, "big")
_ENVELOPE_FEE_BUMP = (5).to_bytes(4, "big")


class TxError(Exception):
    """The transaction is invalid: ``code`` is its ``TransactionResultCode``."""

    def __init__(
        self, code: sx.TransactionResultCode, message: str, op_results: list[OpOutcome] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.op_results = op_results


@dataclass(slots=True)
class ParsedTx:
    """A decoded envelope with the fields the engine needs."""

    hash: bytes
    envelope_b64: str
    envelope: sx.TransactionEnvelope
    tx: sx.Transaction  # the (inner) transaction
    tx_hash: bytes  # the (inner) transaction's hash
    signatures: list[sx.DecoratedSignature]
    source: str
    seq: int
    fee: int
    ops: list[sx.Operation]
    soroban: sx.SorobanTransactionData | None
    fee_bump: bool = False
    fee_source: str = ""
    outer_fee: int = 0
    outer_signatures: list[sx.DecoratedSignature] = field(default_factory=list)
    min_time: int = 0
    max_time: int = 0
    min_ledger: int = 0
    max_ledger: int = 0
    size: int = 0
    internal: bool = False  # submitted by the devnet itself (friendbot)
    _footprint: tuple[dict[bytes, sx.LedgerKey], dict[bytes, sx.LedgerKey]] | None = None

    @property
    def hash_hex(self) -> str:
        return self.hash.hex()

    @property
    def is_soroban(self) -> bool:
        return self.soroban is not None or any(op.body.type in SOROBAN_OPS for op in self.ops)

    @property
    def resource_fee(self) -> int:
        return self.soroban.resource_fee.int64 if self.soroban is not None else 0

    @property
    def payer(self) -> str:
        return self.fee_source if self.fee_bump else self.source

    @property
    def max_fee(self) -> int:
        """What the payer must be able to pay: the bid."""
        return self.outer_fee if self.fee_bump else self.fee

    def footprint(self) -> tuple[dict[bytes, sx.LedgerKey], dict[bytes, sx.LedgerKey]]:
        """The declared footprint as ``(read_only, read_write)`` maps keyed by key XDR;
        packed once (at submission, outside the ledger lock)."""
        if self._footprint is None:
            assert self.soroban is not None
            fp = self.soroban.resources.footprint
            self._footprint = (
                {k.to_xdr_bytes(): k for k in fp.read_only},
                {k.to_xdr_bytes(): k for k in fp.read_write},
            )
        return self._footprint

    def op_source(self, op: sx.Operation) -> str:
        return muxed_to_g(op.source_account) if op.source_account is not None else self.source

    def fee_charged(self) -> int:
        """Fee taken at apply: the base fee per operation (no surge pricing) plus, for a
        Soroban transaction, the declared resource fee (no refund)."""
        ops = len(self.ops) + (1 if self.fee_bump else 0)
        return min(self.max_fee, BASE_FEE * ops + self.resource_fee)


def _sig_section_length(signatures: list[sx.DecoratedSignature]) -> int:
    return 4 + sum(8 + (len(s.signature.signature) + 3) // 4 * 4 for s in signatures)


def parse_envelope(envelope_b64: str, network_id: bytes) -> ParsedTx:
    """Decode a base64 ``TransactionEnvelope``; ``ValueError`` when it does not decode."""
    try:
        raw = unb64(envelope_b64)
        env = sx.TransactionEnvelope.from_xdr_bytes(raw)
    except Exception as exc:  # xdrlib3 raises assorted errors on garbage
        raise ValueError(f"invalid_xdr: {exc}") from exc
    if env.type == sx.EnvelopeType.ENVELOPE_TYPE_TX:
        assert env.v1 is not None
        v1 = env.v1
        tx_bytes = raw[4 : len(raw) - _sig_section_length(v1.signatures)]
        tx_hash = sha256(network_id + _ENVELOPE_TX + tx_bytes)
        parsed = _parsed(env, v1, tx_hash, envelope_b64)
        parsed.size = len(raw)
        return parsed
    if env.type == sx.EnvelopeType.ENVELOPE_TYPE_TX_FEE_BUMP:
        assert env.fee_bump is not None
        outer = env.fee_bump.tx
        inner = outer.inner_tx.v1
        assert inner is not None
        inner_hash = sha256(network_id + _ENVELOPE_TX + inner.tx.to_xdr_bytes())
        outer_bytes = raw[4 : len(raw) - _sig_section_length(env.fee_bump.signatures)]
        parsed = _parsed(env, inner, inner_hash, envelope_b64)
        parsed.hash = sha256(network_id + _ENVELOPE_FEE_BUMP + outer_bytes)
        parsed.fee_bump = True
        parsed.fee_source = muxed_to_g(outer.fee_source)
        parsed.outer_fee = outer.fee.int64
        parsed.outer_signatures = env.fee_bump.signatures
        parsed.size = len(raw)
        return parsed
    raise ValueError("invalid_xdr: legacy v0 envelopes are not accepted by the devnet")


def _parsed(env: sx.TransactionEnvelope, v1: sx.TransactionV1Envelope, tx_hash: bytes, b64: str) -> ParsedTx:
    tx = v1.tx
    soroban = tx.ext.soroban_data if tx.ext.v == 1 else None
    parsed = ParsedTx(
        hash=tx_hash,
        envelope_b64=b64,
        envelope=env,
        tx=tx,
        tx_hash=tx_hash,
        signatures=v1.signatures,
        source=muxed_to_g(tx.source_account),
        seq=tx.seq_num.sequence_number.int64,
        fee=tx.fee.uint32,
        ops=tx.operations,
        soroban=soroban,
    )
    cond = tx.cond
    bounds: sx.TimeBounds | None = None
    if cond.type == sx.PreconditionType.PRECOND_TIME:
        bounds = cond.time_bounds
    elif cond.type == sx.PreconditionType.PRECOND_V2:
        assert cond.v2 is not None
        v2 = cond.v2
        bounds = v2.time_bounds
        if v2.ledger_bounds is not None:
            parsed.min_ledger = v2.ledger_bounds.min_ledger.uint32
            parsed.max_ledger = v2.ledger_bounds.max_ledger.uint32
    if bounds is not None:
        parsed.min_time = bounds.min_time.time_point.uint64
        parsed.max_time = bounds.max_time.time_point.uint64
    return parsed


# ---------------------------------------------------------------------- checks


def check_structure(tx: ParsedTx) -> None:
    """Checks that need no ledger state (``txMALFORMED`` and friends)."""
    if not tx.ops:
        raise TxError(TRC.txMISSING_OPERATION, "the transaction has no operation")
    if len(tx.ops) > MAX_OPS:
        raise TxError(TRC.txMALFORMED, f"more than {MAX_OPS} operations")
    cond = tx.tx.cond
    if cond.type == sx.PreconditionType.PRECOND_V2:
        assert cond.v2 is not None
        v2 = cond.v2
        if (
            v2.min_seq_num is not None
            or v2.min_seq_age.duration.uint64
            or v2.min_seq_ledger_gap.uint32
            or v2.extra_signers
        ):
            raise TxError(
                TRC.txNOT_SUPPORTED,
                "minSeqNum, minSeqAge, minSeqLedgerGap and extraSigners are not supported by the devnet",
            )
    if tx.max_time and tx.min_time > tx.max_time:
        raise TxError(TRC.txMALFORMED, "minTime is after maxTime")
    soroban_ops = [op for op in tx.ops if op.body.type in SOROBAN_OPS]
    if soroban_ops:
        if len(tx.ops) != 1:
            raise TxError(
                TRC.txMALFORMED, "a Soroban operation must be the only operation of its transaction"
            )
        if tx.soroban is None:
            raise TxError(TRC.txMALFORMED, "a Soroban transaction needs SorobanTransactionData")
        if tx.resource_fee < 0:
            raise TxError(TRC.txMALFORMED, "negative resource fee")
    elif tx.soroban is not None:
        raise TxError(TRC.txMALFORMED, "a classic transaction cannot carry SorobanTransactionData")
    outcomes: list[OpOutcome] = []
    bad = False
    for op in tx.ops:
        outcome = _check_op_structure(op)
        bad = bad or not outcome.success
        outcomes.append(outcome)
    if bad:
        raise TxError(TRC.txFAILED, "an operation is malformed or not supported by the devnet", outcomes)


def _check_op_structure(op: sx.Operation) -> OpOutcome:
    t = op.body.type
    if t == OT.INVOKE_HOST_FUNCTION:
        assert op.body.invoke_host_function_op is not None
        hf = op.body.invoke_host_function_op.host_function
        if hf.type != sx.HostFunctionType.HOST_FUNCTION_TYPE_INVOKE_CONTRACT:
            return OpOutcome(t, "not_supported", note="only contract invocations are supported by the devnet")
        return OpOutcome(t, "inner", 0)
    if t == OT.EXTEND_FOOTPRINT_TTL or t == OT.RESTORE_FOOTPRINT:
        return OpOutcome(t, "not_supported", note=f"{t.name} is not supported by the devnet")
    if t not in SUPPORTED_CLASSIC:
        return OpOutcome(t, "not_supported", note=f"{t.name} is not supported by the devnet")
    if t == OT.CREATE_ACCOUNT:
        assert op.body.create_account_op is not None
        if op.body.create_account_op.starting_balance.int64 <= 0:
            return OpOutcome(t, "inner", -1)
    elif t == OT.PAYMENT:
        assert op.body.payment_op is not None
        if op.body.payment_op.amount.int64 <= 0:
            return OpOutcome(t, "inner", -1)
        try:
            asset_key_from_xdr(op.body.payment_op.asset)
        except ValueError:
            return OpOutcome(t, "inner", -1)
    elif t == OT.CHANGE_TRUST:
        assert op.body.change_trust_op is not None
        ct = op.body.change_trust_op
        try:
            asset = asset_key_from_xdr(ct.line)
        except ValueError:
            return OpOutcome(t, "inner", -1)
        if asset is None or ct.limit.int64 < 0:
            return OpOutcome(t, "inner", -1)
    return OpOutcome(t, "inner", 0)


def check_signatures(tx: ParsedTx) -> None:
    """Every required signer (fee source, tx source, operation sources) signed the hash;
    no signature is left unused. Master keys only (no ``set_options`` on the devnet)."""
    if tx.fee_bump:
        used_outer = _verify_signers(tx.hash, tx.outer_signatures, [tx.fee_source])
        if used_outer is None:
            raise TxError(TRC.txBAD_AUTH, "the fee source did not sign the fee bump")
        if len(used_outer) != len(tx.outer_signatures):
            raise TxError(TRC.txBAD_AUTH_EXTRA, "unused signatures on the fee bump")
    sources = [tx.source]
    used = _verify_signers(tx.tx_hash, tx.signatures, sources)
    if used is None:
        raise TxError(TRC.txBAD_AUTH, "missing or invalid signature of the source account")
    outcomes: list[OpOutcome] = []
    bad = False
    for op in tx.ops:
        source = tx.op_source(op)
        if source == tx.source:
            outcomes.append(OpOutcome(op.body.type, "inner", 0))
            continue
        found = _verify_signers(tx.tx_hash, tx.signatures, [source])
        if found is None:
            bad = True
            outcomes.append(OpOutcome(op.body.type, "bad_auth"))
        else:
            used |= found
            outcomes.append(OpOutcome(op.body.type, "inner", 0))
    if bad:
        raise TxError(TRC.txFAILED, "an operation's source account did not sign", outcomes)
    if len(used) != len(tx.signatures):
        raise TxError(TRC.txBAD_AUTH_EXTRA, "unused signatures")


def _verify_signers(
    message: bytes, signatures: list[sx.DecoratedSignature], signers: list[str]
) -> set[int] | None:
    """Indexes of the signatures made by ``signers`` (one each needed), or None."""
    used: set[int] = set()
    for signer in signers:
        raw = StrKey.decode_ed25519_public_key(signer)
        hint = raw[-4:]
        found = False
        for i, sig in enumerate(signatures):
            if sig.hint.signature_hint != hint:
                continue
            try:
                VerifyKey(raw).verify(message, sig.signature.signature)
            except (BadSignatureError, ValueError):
                continue
            used.add(i)
            found = True
        if not found:
            return None
    return used


def min_balance(account: Account, extra_subentries: int = 0) -> int:
    return (2 + account.num_subentries + extra_subentries) * BASE_RESERVE


def available_balance(account: Account) -> int:
    return account.balance - min_balance(account)


def check_valid(
    view: Overlay | dict[bytes, Entry],
    tx: ParsedTx,
    ledger_seq: int,
    now: float,
    required_resource_fee: int = 0,
    pending_seq: int | None = None,
) -> None:
    """State checks in core's order: fee, bounds, source account, sequence, balance.

    ``ledger_seq`` is the ledger that would apply the transaction; ``now`` the clock
    time bounds are checked against; ``pending_seq`` the sequence number the source
    account would have after the transactions already queued ahead of this one.
    """
    ops = len(tx.ops)
    if tx.fee_bump:
        inner_min = BASE_FEE * (ops + 1) + tx.resource_fee
        if tx.outer_fee < inner_min:
            raise TxError(
                TRC.txINSUFFICIENT_FEE, f"the fee bump pays {tx.outer_fee}, the minimum is {inner_min}"
            )
    elif tx.is_soroban:
        if tx.fee < tx.resource_fee + BASE_FEE:
            raise TxError(TRC.txINSUFFICIENT_FEE, f"the inclusion fee is below {BASE_FEE} stroops")
    elif tx.fee < BASE_FEE * ops:
        raise TxError(TRC.txINSUFFICIENT_FEE, f"the fee is below {BASE_FEE} stroops per operation")
    if tx.is_soroban and tx.resource_fee < required_resource_fee:
        raise TxError(
            TRC.txINSUFFICIENT_FEE,
            f"SorobanTransactionData::resourceFee {tx.resource_fee} is lower than the resource fee "
            f"{required_resource_fee} of the declared resources",
        )
    if tx.min_time and now < tx.min_time:
        raise TxError(TRC.txTOO_EARLY, "the transaction's minTime is in the future")
    if tx.max_time and now > tx.max_time:
        raise TxError(TRC.txTOO_LATE, "the transaction's maxTime has passed")
    if tx.min_ledger and ledger_seq < tx.min_ledger:
        raise TxError(TRC.txTOO_EARLY, "the transaction's minLedger is in the future")
    if tx.max_ledger and ledger_seq >= tx.max_ledger:
        raise TxError(TRC.txTOO_LATE, "the transaction's maxLedger has passed")
    source = _account(view, tx.source)
    if source is None:
        raise TxError(TRC.txNO_ACCOUNT, "the source account does not exist")
    current = source.seq_num if pending_seq is None else pending_seq
    if tx.seq != current + 1:
        raise TxError(TRC.txBAD_SEQ, f"sequence number {tx.seq} is not the account's next ({current + 1})")
    payer = source if not tx.fee_bump else _account(view, tx.fee_source)
    if payer is None:
        raise TxError(TRC.txNO_ACCOUNT, "the fee source does not exist")
    if available_balance(payer) < tx.max_fee:
        raise TxError(TRC.txINSUFFICIENT_BALANCE, "the fee is more than the available balance")


def _account(view: Overlay | dict[bytes, Entry], account: str) -> Account | None:
    entry = view.get(account_key(account)[0])
    if entry is None:
        return None
    assert isinstance(entry.data, Account)
    return entry.data


# ------------------------------------------------------------------ op outcomes


@dataclass(slots=True)
class OpOutcome:
    """One operation's result: ``kind`` is ``inner`` (with the op-specific ``code``),
    ``bad_auth``, ``no_account`` or ``not_supported``."""

    op_type: sx.OperationType
    kind: str
    code: int = 0
    extra: Any = None  # merge: the source balance; invoke: the success hash builder
    note: str = ""

    @property
    def success(self) -> bool:
        return self.kind == "inner" and self.code == 0

    def to_xdr(self) -> sx.OperationResult:
        if self.kind == "bad_auth":
            return sx.OperationResult(sx.OperationResultCode.opBAD_AUTH)
        if self.kind == "no_account":
            return sx.OperationResult(sx.OperationResultCode.opNO_ACCOUNT)
        if self.kind == "not_supported":
            return sx.OperationResult(sx.OperationResultCode.opNOT_SUPPORTED)
        t = self.op_type
        tr: sx.OperationResultTr
        if t == OT.CREATE_ACCOUNT:
            tr = sx.OperationResultTr(
                t, create_account_result=sx.CreateAccountResult(sx.CreateAccountResultCode(self.code))
            )
        elif t == OT.PAYMENT:
            tr = sx.OperationResultTr(t, payment_result=sx.PaymentResult(sx.PaymentResultCode(self.code)))
        elif t == OT.CHANGE_TRUST:
            tr = sx.OperationResultTr(
                t, change_trust_result=sx.ChangeTrustResult(sx.ChangeTrustResultCode(self.code))
            )
        elif t == OT.ACCOUNT_MERGE:
            balance = sx.Int64(self.extra) if self.code == 0 and self.extra is not None else None
            tr = sx.OperationResultTr(
                t, account_merge_result=sx.AccountMergeResult(sx.AccountMergeResultCode(self.code), balance)
            )
        elif t == OT.INVOKE_HOST_FUNCTION:
            success = sx.Hash(self.extra() if callable(self.extra) else bytes(32)) if self.code == 0 else None
            tr = sx.OperationResultTr(
                t,
                invoke_host_function_result=sx.InvokeHostFunctionResult(
                    sx.InvokeHostFunctionResultCode(self.code), success
                ),
            )
        else:  # pragma: no cover - refused before apply
            return sx.OperationResult(sx.OperationResultCode.opNOT_SUPPORTED)
        return sx.OperationResult(sx.OperationResultCode.opINNER, tr)


def transaction_result(
    code: sx.TransactionResultCode,
    fee_charged: int,
    ops: list[OpOutcome] | None,
    fee_bump: bool = False,
    inner_hash: bytes = b"",
) -> sx.TransactionResult:
    """The ``TransactionResult`` (an inner-result pair, for ``inner_hash``, of a fee bump)."""
    results = [o.to_xdr() for o in ops] if ops is not None and code in (TRC.txSUCCESS, TRC.txFAILED) else None
    if not fee_bump:
        return sx.TransactionResult(
            sx.Int64(fee_charged),
            sx.TransactionResultResult(code, results=results),
            sx.TransactionResultExt(0),
        )
    inner = sx.InnerTransactionResult(
        sx.Int64(0), sx.InnerTransactionResultResult(code, results=results), sx.InnerTransactionResultExt(0)
    )
    outer_code = TRC.txFEE_BUMP_INNER_SUCCESS if code == TRC.txSUCCESS else TRC.txFEE_BUMP_INNER_FAILED
    return sx.TransactionResult(
        sx.Int64(fee_charged),
        sx.TransactionResultResult(
            outer_code, inner_result_pair=sx.InnerTransactionResultPair(sx.Hash(inner_hash), inner)
        ),
        sx.TransactionResultExt(0),
    )


# --------------------------------------------------------------- classic ops


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
