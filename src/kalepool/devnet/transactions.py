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
    Account,
    Entry,
    account_key,
    asset_key_from_xdr,
    muxed_to_g,
    sha256,
    unb64,
)
from kalepool.devnet.fees import FeeSchedule, TxResources, resource_fee
from kalepool.devnet.ledger import BASE_FEE, BASE_RESERVE, Overlay

OT = sx.OperationType
TRC = sx.TransactionResultCode
SCE = sx.SCErrorType
SCEC = sx.SCErrorCode

SUPPORTED_CLASSIC = {OT.CREATE_ACCOUNT, OT.PAYMENT, OT.CHANGE_TRUST, OT.ACCOUNT_MERGE}
SOROBAN_OPS = {OT.INVOKE_HOST_FUNCTION, OT.EXTEND_FOOTPRINT_TTL, OT.RESTORE_FOOTPRINT}
MAX_OPS = 100
_ENVELOPE_TX = (2).to_bytes(4, "big")
_ENVELOPE_FEE_BUMP = (5).to_bytes(4, "big")


#: Ledger keys of the live contract state (in memory from protocol 23: no disk read).
SOROBAN_KEYS = {sx.LedgerEntryType.CONTRACT_DATA, sx.LedgerEntryType.CONTRACT_CODE}
_FOOTPRINT_KEYS = SOROBAN_KEYS | {sx.LedgerEntryType.ACCOUNT, sx.LedgerEntryType.TRUSTLINE}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """The diagnostic event stellar-core attaches to a Soroban validation error:
    ``[error, Error(kind, code)]`` with ``[message, args...]`` (``U64`` arguments)."""

    kind: sx.SCErrorType
    code: sx.SCErrorCode
    message: str
    args: tuple[int, ...] = ()


class TxError(Exception):
    """The transaction is invalid: ``code`` is its ``TransactionResultCode``.

    ``diagnostic`` is the event stellar-core reports with it (Soroban checks only);
    ``note`` says why the devnet refused something it does not support."""

    def __init__(
        self,
        code: sx.TransactionResultCode,
        message: str,
        op_results: list[OpOutcome] | None = None,
        diagnostic: Diagnostic | None = None,
        note: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.op_results = op_results
        self.diagnostic = diagnostic
        self.note = note


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
    size: int = 0  # bytes of the (inner) transaction's envelope, as the resource fee counts them
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

    @property
    def fee_ops(self) -> int:
        """Operations the inclusion fee is counted for (a fee bump counts as one more)."""
        return len(self.ops) + (1 if self.fee_bump else 0)

    @property
    def inclusion_fee(self) -> int:
        """The bid: the full fee less the declared resource fee."""
        return self.max_fee - self.resource_fee

    def fee_charged(self) -> int:
        """Fee taken before the ledger's transactions are applied: the declared resource
        fee plus the inclusion fee at the ledger's base fee (no surge pricing). The
        unused refundable part of a Soroban fee is refunded after them."""
        return self.resource_fee + min(self.inclusion_fee, BASE_FEE * self.fee_ops)

    def validation_fee(self) -> int:
        """The ``feeCharged`` of a transaction refused at submission (stellar-core
        reports what it would charge at the base fee)."""
        return self.resource_fee + BASE_FEE * self.fee_ops

    def declared_resources(self) -> TxResources:
        """The resources a Soroban transaction pays for, as declared: classic footprint
        entries (and archived ones) are disk reads, every read-write entry a write."""
        assert self.soroban is not None
        read_only, read_write = self.footprint()
        disk = sum(1 for k in (*read_only.values(), *read_write.values()) if k.type not in SOROBAN_KEYS)
        ext = self.soroban.ext
        if ext.v == 1 and ext.resource_ext is not None:
            disk += len(ext.resource_ext.archived_soroban_entries)
        res = self.soroban.resources
        return TxResources(
            instructions=res.instructions.uint32,
            disk_read_entries=disk,
            write_entries=len(read_write),
            disk_read_bytes=res.disk_read_bytes.uint32,
            write_bytes=res.write_bytes.uint32,
            transaction_size_bytes=self.size,
        )


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
        # the inner transaction's resources (its own envelope's size) are what is charged
        parsed.size = 4 + len(inner.to_xdr_bytes())
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
                note=True,
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
        unsupported = any(o.kind == "not_supported" for o in outcomes)
        raise TxError(
            TRC.txFAILED,
            "an operation is malformed or not supported by the devnet",
            outcomes,
            note=unsupported,
        )


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
    schedule: FeeSchedule,
    pending_seq: int | None = None,
) -> None:
    """State checks in stellar-core's order: Soroban resources and resource fee, time
    and ledger bounds, inclusion fee, source account, sequence number, balance.

    ``ledger_seq`` is the ledger that would apply the transaction; ``now`` the clock
    time bounds are checked against; ``pending_seq`` the sequence number the source
    account would have after the transactions already queued ahead of this one.
    """
    if tx.soroban is not None:
        check_soroban(tx, schedule)
    if tx.min_time and now < tx.min_time:
        raise TxError(TRC.txTOO_EARLY, "the transaction's minTime is in the future")
    if tx.max_time and now > tx.max_time:
        raise TxError(TRC.txTOO_LATE, "the transaction's maxTime has passed")
    if tx.min_ledger and ledger_seq < tx.min_ledger:
        raise TxError(TRC.txTOO_EARLY, "the transaction's minLedger is in the future")
    if tx.max_ledger and ledger_seq >= tx.max_ledger:
        raise TxError(TRC.txTOO_LATE, "the transaction's maxLedger has passed")
    minimum = BASE_FEE * tx.fee_ops
    if tx.inclusion_fee < minimum:
        raise TxError(
            TRC.txINSUFFICIENT_FEE, f"the inclusion fee {tx.inclusion_fee} is below the minimum {minimum}"
        )
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


def check_soroban(tx: ParsedTx, s: FeeSchedule) -> None:
    """stellar-core's Soroban checks (``txSOROBAN_INVALID``, with its diagnostic event):
    the declared resources within the network's limits, a footprint of entry kinds a
    contract can touch with no key twice, and a ``resourceFee`` at most the full fee and
    at least the fee of the declared resources."""
    assert tx.soroban is not None
    r = tx.declared_resources()
    res = tx.soroban.resources
    footprint = [*res.footprint.read_only, *res.footprint.read_write]
    limits = (
        (r.instructions, s.tx_max_instructions, SCE.SCE_BUDGET, "transaction instructions resources"),
        (r.disk_read_bytes, s.tx_max_disk_read_bytes, SCE.SCE_STORAGE, "transaction byte-read resources"),
        (r.write_bytes, s.tx_max_write_bytes, SCE.SCE_STORAGE, "transaction byte-write resources"),
        (
            len(footprint),
            s.tx_max_footprint_entries,
            SCE.SCE_STORAGE,
            "the number of entries in transaction footprint",
        ),
        (
            r.disk_read_entries,
            s.tx_max_disk_read_entries,
            SCE.SCE_STORAGE,
            "transaction entry-disk-read resources",
        ),
        (r.write_entries, s.tx_max_write_entries, SCE.SCE_STORAGE, "transaction entry-write resources"),
    )
    for used, limit, kind, what in limits:
        if used > limit:
            _soroban_invalid(
                kind, SCEC.SCEC_EXCEEDED_LIMIT, f"{what} exceed network config limit", used, limit
            )
    read_only, read_write = tx.footprint()  # keys by their XDR, packed once
    for raw, key in (*read_only.items(), *read_write.items()):
        if key.type not in _FOOTPRINT_KEYS:
            _soroban_invalid(
                SCE.SCE_STORAGE,
                SCEC.SCEC_UNEXPECTED_TYPE,
                "transaction footprint contains unsupported ledger key type",
                key.type.value,
            )
        size = len(raw)
        if size > s.max_contract_data_key_size_bytes:
            _soroban_invalid(
                SCE.SCE_STORAGE,
                SCEC.SCEC_EXCEEDED_LIMIT,
                "transaction footprint key exceeds network config limit",
                size,
                s.max_contract_data_key_size_bytes,
            )
    if r.transaction_size_bytes > s.tx_max_size_bytes:
        _soroban_invalid(
            SCE.SCE_BUDGET,
            SCEC.SCEC_EXCEEDED_LIMIT,
            "total transaction size exceeds network config limit",
            r.transaction_size_bytes,
            s.tx_max_size_bytes,
        )
    if not tx.fee_bump and tx.resource_fee > tx.fee:
        _soroban_invalid(
            SCE.SCE_STORAGE,
            SCEC.SCEC_EXCEEDED_LIMIT,
            "transaction `sorobanData.resourceFee` is higher than the full transaction fee",
            tx.resource_fee,
            tx.fee,
        )
    required = sum(resource_fee(r, s))
    if tx.resource_fee < required:
        _soroban_invalid(
            SCE.SCE_STORAGE,
            SCEC.SCEC_EXCEEDED_LIMIT,
            "transaction `sorobanData.resourceFee` is lower than the actual Soroban resource fee",
            tx.resource_fee,
            required,
        )
    if len(read_only) + len(read_write) != len(footprint) or set(read_only) & set(read_write):
        _soroban_invalid(
            SCE.SCE_STORAGE,
            SCEC.SCEC_INVALID_INPUT,
            "Found duplicate key in the Soroban footprint; every key across read-only and "
            "read-write footprints has to be unique.",
        )


def _soroban_invalid(kind: sx.SCErrorType, code: sx.SCErrorCode, message: str, *args: int) -> None:
    raise TxError(TRC.txSOROBAN_INVALID, message, diagnostic=Diagnostic(kind, code, message, args))


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
