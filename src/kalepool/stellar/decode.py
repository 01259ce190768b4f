"""Pure decoding of what Soroban RPC returns: results, metas, diagnostic events, entries.

Nothing here performs I/O. Inputs are the base64 XDR strings of the wire format
(``stellar-python.md`` §2); outputs are small frozen dataclasses and kalepool errors.

- :func:`decode_result`: a ``TransactionResult`` (fee bumps unwrapped) → :class:`ResultInfo`.
- :func:`decode_meta`: a ``TransactionMeta`` v0..v4 → :class:`MetaInfo` (return value,
  diagnostic events, ledger entry changes). v3 keeps the return value and diagnostic
  events in ``soroban_meta``; v4 moves the diagnostic events to the top level.
- :func:`event_errors`: the host's ``error`` diagnostic events, oldest first, each with
  the contract that was executing when it was raised.
- :func:`contract_error`: turn the first contract error into ``FarmError``/``TokenError``
  by comparing its contract with the farm and the token, never by its number.
- :func:`parse_error_text`: the same from a simulation's error text, when no events came.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from stellar_sdk import Address, StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.kale.errors import (
    ContractError,
    FarmError,
    FarmErrorCode,
    TokenError,
    TokenErrorCode,
)

__all__ = [
    "AccountState",
    "ContractDataChange",
    "EventError",
    "MetaInfo",
    "ResultInfo",
    "TrustlineState",
    "account_state",
    "base_reserve_from_header",
    "contract_data_changes",
    "contract_error",
    "decode_events",
    "decode_meta",
    "decode_result",
    "event_errors",
    "footprint",
    "host_error",
    "is_race_failure",
    "pail_index_in_key",
    "parse_error_text",
    "trustline_state",
]

# ------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class ResultInfo:
    """A decoded ``TransactionResult``.

    ``code`` is the transaction code's XDR name (for a fee bump, the inner transaction's);
    ``op_codes`` one name per operation: the operation-specific code for ``opINNER``
    (``INVOKE_HOST_FUNCTION_TRAPPED``, ``PAYMENT_UNDERFUNDED``...) or the generic one
    (``opNO_ACCOUNT``...). ``fee_charged`` is the outer fee in stroops.
    """

    fee_charged: int
    code: str
    op_codes: tuple[str, ...]

    @property
    def success(self) -> bool:
        return self.code == "txSUCCESS"


def _op_code(result: sx.OperationResult) -> str:
    if result.code != sx.OperationResultCode.opINNER or result.tr is None:
        return result.code.name
    tr = result.tr
    for name, value in vars(tr).items():
        if name != "type" and value is not None and hasattr(value, "code"):
            return str(value.code.name)
    return tr.type.name


def decode_result(result_xdr: str) -> ResultInfo:
    """Decode a base64 ``TransactionResult`` (from ``resultXdr`` or ``errorResultXdr``)."""
    result = sx.TransactionResult.from_xdr(result_xdr)
    body = result.result
    code = body.code
    ops = body.results
    if body.inner_result_pair is not None:  # fee bump: report the inner transaction
        inner = body.inner_result_pair.result.result
        code = inner.code
        ops = inner.results
    return ResultInfo(
        fee_charged=result.fee_charged.int64,
        code=code.name,
        op_codes=tuple(_op_code(op) for op in ops or ()),
    )


# ---------------------------------------------------------------------- meta


@dataclass(frozen=True, slots=True)
class MetaInfo:
    """What the gateway needs from a ``TransactionMeta``.

    ``return_value`` is the invoked function's result (None for classic transactions
    and, in v4, for failed ones); ``changes`` every ledger entry change, transaction
    level and per operation, in order.
    """

    version: int
    return_value: sx.SCVal | None
    diagnostic_events: tuple[sx.DiagnosticEvent, ...]
    changes: tuple[sx.LedgerEntryChange, ...]


def decode_meta(meta_xdr: str) -> MetaInfo:
    """Decode a base64 ``TransactionMeta`` of any version (v3 and v4 carry Soroban data)."""
    meta = sx.TransactionMeta.from_xdr(meta_xdr)
    changes: list[sx.LedgerEntryChange] = []
    events: list[sx.DiagnosticEvent] = []
    ret: sx.SCVal | None = None
    if meta.v == 0:
        for op in meta.operations or ():
            changes.extend(op.changes.ledger_entry_changes)
    elif meta.v == 1 and meta.v1 is not None:
        changes.extend(meta.v1.tx_changes.ledger_entry_changes)
        for op in meta.v1.operations:
            changes.extend(op.changes.ledger_entry_changes)
    elif meta.v == 2 and meta.v2 is not None:
        v2 = meta.v2
        changes.extend(v2.tx_changes_before.ledger_entry_changes)
        for op in v2.operations:
            changes.extend(op.changes.ledger_entry_changes)
        changes.extend(v2.tx_changes_after.ledger_entry_changes)
    elif meta.v == 3 and meta.v3 is not None:
        v3 = meta.v3
        changes.extend(v3.tx_changes_before.ledger_entry_changes)
        for op in v3.operations:
            changes.extend(op.changes.ledger_entry_changes)
        changes.extend(v3.tx_changes_after.ledger_entry_changes)
        if v3.soroban_meta is not None:
            ret = v3.soroban_meta.return_value
            events.extend(v3.soroban_meta.diagnostic_events)
    elif meta.v == 4 and meta.v4 is not None:
        v4 = meta.v4
        changes.extend(v4.tx_changes_before.ledger_entry_changes)
        for op2 in v4.operations:
            changes.extend(op2.changes.ledger_entry_changes)
        changes.extend(v4.tx_changes_after.ledger_entry_changes)
        if v4.soroban_meta is not None:
            ret = v4.soroban_meta.return_value
        events.extend(v4.diagnostic_events)
    else:
        raise ValueError(f"unsupported TransactionMeta version {meta.v}")
    return MetaInfo(version=meta.v, return_value=ret, diagnostic_events=tuple(events), changes=tuple(changes))


@dataclass(frozen=True, slots=True)
class ContractDataChange:
    """A created, updated or removed contract-data entry (``value`` None when removed)."""

    kind: str  # "created" | "updated" | "removed" | "restored"
    contract_id: str
    key: sx.SCVal
    temporary: bool
    value: sx.SCVal | None


def contract_data_changes(
    changes: Iterable[sx.LedgerEntryChange], contract_id: str | None = None
) -> list[ContractDataChange]:
    """The contract-data writes among ``changes`` (``state`` snapshots skipped),
    optionally only those of ``contract_id``."""
    out: list[ContractDataChange] = []
    T = sx.LedgerEntryChangeType
    for change in changes:
        kind: str
        data: sx.ContractDataEntry | None = None
        key_data: sx.LedgerKeyContractData | None = None
        if change.type == T.LEDGER_ENTRY_CREATED and change.created is not None:
            kind, data = "created", change.created.data.contract_data
        elif change.type == T.LEDGER_ENTRY_UPDATED and change.updated is not None:
            kind, data = "updated", change.updated.data.contract_data
        elif change.type == T.LEDGER_ENTRY_RESTORED and change.restored is not None:
            kind, data = "restored", change.restored.data.contract_data
        elif change.type == T.LEDGER_ENTRY_REMOVED and change.removed is not None:
            kind, key_data = "removed", change.removed.contract_data
        else:
            continue
        if data is not None:
            cid = Address.from_xdr_sc_address(data.contract).address
            item = ContractDataChange(
                kind, cid, data.key, data.durability == sx.ContractDataDurability.TEMPORARY, data.val
            )
        elif key_data is not None:
            cid = Address.from_xdr_sc_address(key_data.contract).address
            item = ContractDataChange(
                kind,
                cid,
                key_data.key,
                key_data.durability == sx.ContractDataDurability.TEMPORARY,
                None,
            )
        else:
            continue
        if contract_id is None or item.contract_id == contract_id:
            out.append(item)
    return out


def pail_index_in_key(key: sx.SCVal, farmer: str) -> int | None:
    """``i`` when ``key`` is ``Vec[Symbol("Pail"), Address(farmer), U32(i)]``, else None."""
    if key.type != sx.SCValType.SCV_VEC or key.vec is None:
        return None
    items = key.vec.sc_vec
    if len(items) != 3:
        return None
    head, who, index = items
    if head.type != sx.SCValType.SCV_SYMBOL or head.sym is None or head.sym.sc_symbol != b"Pail":
        return None
    if who.type != sx.SCValType.SCV_ADDRESS or index.type != sx.SCValType.SCV_U32:
        return None
    if scval.from_address(who).address != farmer:
        return None
    return scval.from_uint32(index)


def footprint(transaction_data_xdr: str) -> tuple[list[sx.LedgerKey], list[sx.LedgerKey]]:
    """``(read_only, read_write)`` ledger keys of a base64 ``SorobanTransactionData``."""
    data = sx.SorobanTransactionData.from_xdr(transaction_data_xdr)
    fp = data.resources.footprint
    return list(fp.read_only), list(fp.read_write)


# -------------------------------------------------------------------- events

_TYPE_NAMES = {
    sx.SCErrorType.SCE_CONTRACT: "Contract",
    sx.SCErrorType.SCE_WASM_VM: "WasmVm",
    sx.SCErrorType.SCE_CONTEXT: "Context",
    sx.SCErrorType.SCE_STORAGE: "Storage",
    sx.SCErrorType.SCE_OBJECT: "Object",
    sx.SCErrorType.SCE_CRYPTO: "Crypto",
    sx.SCErrorType.SCE_EVENTS: "Events",
    sx.SCErrorType.SCE_BUDGET: "Budget",
    sx.SCErrorType.SCE_VALUE: "Value",
    sx.SCErrorType.SCE_AUTH: "Auth",
}


def _code_name(code: sx.SCErrorCode) -> str:
    # SCEC_EXCEEDED_LIMIT -> ExceededLimit, as the host prints it
    return "".join(part.capitalize() for part in code.name.removeprefix("SCEC_").split("_"))


@dataclass(frozen=True, slots=True)
class EventError:
    """One ``Error(type, code)`` the host reported.

    ``contract_id`` is the contract that was executing when it was raised (None for the
    host's top-level frame); ``contract_code`` is set for ``Contract`` errors, ``code``
    (e.g. ``ExceededLimit``) for the others.
    """

    type: str
    contract_id: str | None = None
    contract_code: int | None = None
    code: str | None = None

    def __str__(self) -> str:
        if self.contract_code is not None:
            return f"Error({self.type}, #{self.contract_code})"
        return f"Error({self.type}, {self.code})"


def decode_events(events_xdr: Iterable[str] | None) -> list[sx.DiagnosticEvent]:
    """Decode base64 ``DiagnosticEvent`` strings (``diagnosticEventsXdr``, simulation events)."""
    return [sx.DiagnosticEvent.from_xdr(e) for e in events_xdr or ()]


def _sc_error(err: sx.SCError, contract_id: str | None) -> EventError:
    name = _TYPE_NAMES.get(err.type, err.type.name)
    if err.type == sx.SCErrorType.SCE_CONTRACT:
        code = err.contract_code.uint32 if err.contract_code is not None else None
        return EventError(name, contract_id, contract_code=code)
    return EventError(name, contract_id, code=_code_name(err.code) if err.code is not None else None)


def event_errors(events: Iterable[sx.DiagnosticEvent]) -> list[EventError]:
    """The errors of the host's ``error`` events, in emission order (oldest first)."""
    out: list[EventError] = []
    for diag in events:
        event = diag.event
        body = event.body.v0
        if body is None or not body.topics:
            continue
        head = body.topics[0]
        if head.type != sx.SCValType.SCV_SYMBOL or head.sym is None or head.sym.sc_symbol != b"error":
            continue
        contract_id = (
            StrKey.encode_contract(event.contract_id.contract_id.hash)
            if event.contract_id is not None
            else None
        )
        for topic in body.topics[1:]:
            if topic.type == sx.SCValType.SCV_ERROR and topic.error is not None:
                out.append(_sc_error(topic.error, contract_id))
                break
    return out


_LINE_ERROR = re.compile(r"Error\((\w+),\s*(#?)(\w+)\)")
_LINE_CONTRACT = re.compile(r"contract:\s*(C[A-Z2-7]{55})")


def parse_error_text(text: str) -> list[EventError]:
    """Errors named in a simulation's ``error`` text, oldest first.

    The RPC formats it as ``HostError: Error(Contract, #8)`` followed by an "Event log
    (newest first)" whose lines name the executing contract (``contract:C...``); lines
    of that log are reversed to emission order, and the headline comes last.
    """
    lines = text.splitlines()
    headline: list[EventError] = []
    logged: list[EventError] = []
    in_log = False
    newest_first = False
    for line in lines:
        if "Event log" in line:
            in_log = True
            newest_first = "newest first" in line
            continue
        match = _LINE_ERROR.search(line)
        if not match:
            continue
        kind, hash_mark, code = match.groups()
        cmatch = _LINE_CONTRACT.search(line)
        contract_id = cmatch.group(1) if cmatch else None
        if hash_mark or kind == "Contract":
            err = EventError(kind, contract_id, contract_code=int(code) if code.isdigit() else None)
        else:
            err = EventError(kind, contract_id, code=code)
        (logged if in_log else headline).append(err)
    if newest_first:
        logged.reverse()
    return logged + headline


_FARM_CODES = frozenset(int(c) for c in FarmErrorCode)
_TOKEN_CODES = frozenset(int(c) for c in TokenErrorCode)


def contract_error(
    errors: Sequence[EventError], *, farm_id: str, token_id: str, detail: str | None = None
) -> ContractError | None:
    """The first attributed contract error as a typed exception, or None.

    The first ``Contract`` error raised inside a known contract names the culprit
    (the errors a failing callee raises precede the ones its callers re-raise):
    the farm gives :class:`FarmError`, the KALE token :class:`TokenError`, any other
    contract a plain :class:`ContractError` with its id. A code outside the known table
    also gives a plain :class:`ContractError`. Unattributed contract errors count only
    when no attributed one exists.
    """
    contract_errors = [e for e in errors if e.contract_code is not None]
    if not contract_errors:
        return None
    attributed = [e for e in contract_errors if e.contract_id is not None]
    first = attributed[0] if attributed else contract_errors[0]
    code = first.contract_code
    assert code is not None
    if first.contract_id == farm_id and code in _FARM_CODES:
        return FarmError(code, detail, contract_id=farm_id)
    if first.contract_id == token_id and code in _TOKEN_CODES:
        return TokenError(code, detail, contract_id=token_id)
    return ContractError(code, detail, contract_id=first.contract_id)


def host_error(errors: Sequence[EventError]) -> EventError | None:
    """The first non-contract error (storage, budget, auth...), when there is one."""
    for err in errors:
        if err.contract_code is None:
            return err
    return None


_RACE_OP_CODES = frozenset(
    {
        "INVOKE_HOST_FUNCTION_RESOURCE_LIMIT_EXCEEDED",
        "INVOKE_HOST_FUNCTION_INSUFFICIENT_REFUNDABLE_FEE",
    }
)


def is_race_failure(result: ResultInfo, errors: Sequence[EventError]) -> bool:
    """Whether a failed Soroban transaction lost a race with a state change.

    A transaction whose state moved on after simulation fails on its footprint (a key
    it did not declare: ``Error(Storage, ...)``) or on the resources and rent it was
    simulated with; contract errors are never races.
    """
    if any(e.contract_code is not None for e in errors):
        return False
    if any(code in _RACE_OP_CODES for code in result.op_codes):
        return True
    first = host_error(errors)
    return first is not None and first.type in {"Storage", "Budget"}


# ------------------------------------------------------------ classic entries


@dataclass(frozen=True, slots=True)
class AccountState:
    """An account entry's balance (stroops), sequence and reserve-relevant counts."""

    balance: int
    sequence: int
    num_sub_entries: int
    num_sponsoring: int
    num_sponsored: int
    selling_liabilities: int
    buying_liabilities: int

    def minimum_balance(self, base_reserve: int) -> int:
        """``(2 + subentries + sponsoring - sponsored) × base_reserve``."""
        count = 2 + self.num_sub_entries + self.num_sponsoring - self.num_sponsored
        return max(count, 0) * base_reserve

    def spendable(self, base_reserve: int) -> int:
        """Balance above the reserve and the selling liabilities (never negative)."""
        return max(0, self.balance - self.minimum_balance(base_reserve) - self.selling_liabilities)


def account_state(entry_xdr: str) -> AccountState:
    """Decode a base64 ``LedgerEntryData`` holding an ``AccountEntry``."""
    data = sx.LedgerEntryData.from_xdr(entry_xdr)
    if data.account is None:
        raise ValueError(f"not an account entry: {data.type.name}")
    acct = data.account
    selling = buying = sponsoring = sponsored = 0
    if acct.ext.v == 1 and acct.ext.v1 is not None:
        selling = acct.ext.v1.liabilities.selling.int64
        buying = acct.ext.v1.liabilities.buying.int64
        ext2 = acct.ext.v1.ext
        if ext2.v == 2 and ext2.v2 is not None:
            sponsoring = ext2.v2.num_sponsoring.uint32
            sponsored = ext2.v2.num_sponsored.uint32
    return AccountState(
        balance=acct.balance.int64,
        sequence=acct.seq_num.sequence_number.int64,
        num_sub_entries=acct.num_sub_entries.uint32,
        num_sponsoring=sponsoring,
        num_sponsored=sponsored,
        selling_liabilities=selling,
        buying_liabilities=buying,
    )


@dataclass(frozen=True, slots=True)
class TrustlineState:
    """A trustline's balance and limit (stroops), authorisation and liabilities."""

    balance: int
    limit: int
    authorized: bool
    selling_liabilities: int
    buying_liabilities: int

    @property
    def spendable(self) -> int:
        return max(0, self.balance - self.selling_liabilities) if self.authorized else 0

    @property
    def room(self) -> int:
        """How much more it can receive before hitting its limit."""
        return max(0, self.limit - self.balance - self.buying_liabilities)


_AUTHORIZED_FLAG = 1


def trustline_state(entry_xdr: str) -> TrustlineState:
    """Decode a base64 ``LedgerEntryData`` holding a ``TrustLineEntry``."""
    data = sx.LedgerEntryData.from_xdr(entry_xdr)
    if data.trust_line is None:
        raise ValueError(f"not a trustline entry: {data.type.name}")
    line = data.trust_line
    selling = buying = 0
    if line.ext.v == 1 and line.ext.v1 is not None:
        selling = line.ext.v1.liabilities.selling.int64
        buying = line.ext.v1.liabilities.buying.int64
    return TrustlineState(
        balance=line.balance.int64,
        limit=line.limit.int64,
        authorized=bool(line.flags.uint32 & _AUTHORIZED_FLAG),
        selling_liabilities=selling,
        buying_liabilities=buying,
    )


def base_reserve_from_header(header_xdr: str) -> int | None:
    """``base_reserve`` (stroops) of a base64 ``LedgerHeader`` (``getLatestLedger``'s
    ``headerXdr``); None when the RPC sent no usable header."""
    if not header_xdr:
        return None
    try:
        header = sx.LedgerHeader.from_xdr(header_xdr)
    except Exception:
        return None
    reserve = int(header.base_reserve.uint32)
    return reserve if reserve > 0 else None
