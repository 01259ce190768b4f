"""Rendering of what the engine applied: transaction meta XDR, error text, state changes.

- :func:`meta_bytes`: a ``TransactionMeta`` v4, assembled from the entries' cached XDR
  (packing a large instance map again for every transaction would dominate
  ``getTransaction``); :func:`changes_bytes`: ``LedgerEntryChanges``.
- :func:`error_text`: a simulation's host error as stellar-rpc prints it (``HostError:
  Error(Contract, #8)`` and the event log, newest first); :func:`render_scval` renders
  one value the way the host's debug printer does.
- :func:`state_changes`: a simulation's ``stateChanges``; :func:`entry_to_json`: one
  ``getLedgerEntries`` entry; :func:`validation_events`: the diagnostic events of a
  transaction refused at submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stellar_sdk import StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    Entry,
    KeyBytes,
    address_str,
    b64,
    entry_data_xdr,
    ledger_entry_bytes,
)
from kalepool.devnet.host import DiagnosticRecord, HostError, contract_event, diagnostic_event
from kalepool.devnet.ledger import Overlay
from kalepool.devnet.transactions import TxError

if TYPE_CHECKING:
    from kalepool.devnet.apply import Applied


def error_text(err: HostError, events: Sequence[DiagnosticRecord]) -> str:
    """The simulation error string, as stellar-rpc renders a host error (its ``Debug``):
    the error, then the event log as it stood when the error was last raised, newest
    first (the contract of ``fn_call`` shown as its C... address)."""
    lines = [f"HostError: {err.text}", "", "Event log (newest first):"]
    for i, ev in enumerate(reversed(events)):
        who = f"contract:{ev.contract}, " if ev.contract is not None else ""
        kind = "Contract" if ev.kind == sx.ContractEventType.CONTRACT else "Diagnostic"
        rendered = [render_scval(t) for t in ev.topics]
        if len(ev.topics) > 1 and rendered[0] == "fn_call" and ev.topics[1].bytes is not None:
            rendered[1] = StrKey.encode_contract(ev.topics[1].bytes.sc_bytes)
        lines.append(
            f"   {i}: [{kind} Event] {who}topics:[{', '.join(rendered)}], data:{render_scval(ev.data)}"
        )
    return "\n".join(lines)


def contract_str(contract: sx.ContractID) -> str:
    return StrKey.encode_contract(contract.contract_id.hash)


def render_scval(val: sx.SCVal) -> str:
    t = val.type
    if t == sx.SCValType.SCV_ERROR and val.error is not None:
        err = val.error
        kind = err.type.name.removeprefix("SCE_").title().replace("_", "")
        kind = {"WasmVm": "WasmVm"}.get(kind, kind)
        if err.type == sx.SCErrorType.SCE_CONTRACT:
            assert err.contract_code is not None
            return f"Error({kind}, #{err.contract_code.uint32})"
        assert err.code is not None
        code = "".join(p.title() for p in err.code.name.removeprefix("SCEC_").split("_"))
        return f"Error({kind}, {code})"
    if t == sx.SCValType.SCV_SYMBOL:
        return scval.from_symbol(val)
    if t == sx.SCValType.SCV_STRING:
        return '"' + scval.from_string(val).decode(errors="replace") + '"'
    if t == sx.SCValType.SCV_VEC and val.vec is not None:
        return "[" + ", ".join(render_scval(v) for v in val.vec.sc_vec) + "]"
    if t == sx.SCValType.SCV_ADDRESS and val.address is not None:
        return address_str(val.address)
    if t == sx.SCValType.SCV_BYTES and val.bytes is not None:
        return f"Bytes({val.bytes.sc_bytes.hex()})"
    try:
        return str(scval.to_native(val))
    except Exception:
        return t.name


def state_changes(view: Overlay, base: dict[KeyBytes, Entry]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for key, after in view.changes.items():
        before = base.get(key)
        kind = "created" if before is None else ("deleted" if after is None else "updated")
        out.append(
            {
                "type": kind,
                "key": b64(key),
                "before": b64(ledger_entry_bytes(before)) if before is not None else None,
                "after": b64(ledger_entry_bytes(after)) if after is not None else None,
            }
        )
    return out


# TransactionMeta v4 is assembled from cached entry XDR (packing a large instance map
# again for every transaction would dominate getTransaction).
_CREATED, _UPDATED, _REMOVED, _STATE = (x.to_bytes(4, "big") for x in (0, 1, 2, 3))
_ZERO = b"\0\0\0\0"


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def _changes_bytes(changes: Sequence[tuple[Any, Entry | None, Entry | None]]) -> bytes:
    items: list[bytes] = []
    for key, before, after in changes:
        if before is None and after is not None:
            items.append(_CREATED + ledger_entry_bytes(after))
            continue
        if before is not None:
            items.append(_STATE + ledger_entry_bytes(before))
        if after is None:
            raw = key.to_xdr_bytes() if isinstance(key, sx.LedgerKey) else key
            items.append(_REMOVED + raw)
        else:
            items.append(_UPDATED + ledger_entry_bytes(after))
    return _u32(len(items)) + b"".join(items)


def _events_bytes(events: Sequence[Any]) -> bytes:
    return _u32(len(events)) + b"".join(
        contract_event(e.contract, e.topics, e.data).to_xdr_bytes() for e in events
    )


def changes_bytes(changes: Sequence[tuple[Any, Entry | None, Entry | None]]) -> bytes:
    """``LedgerEntryChanges`` XDR: ``STATE`` then ``UPDATED``/``REMOVED``, or ``CREATED``."""
    return _changes_bytes(changes)


def meta_bytes(applied: Applied, tx_events: Sequence[sx.TransactionEvent]) -> bytes:
    """``TransactionMeta`` v4 (``Stellar-ledger.x``) of an applied transaction: the
    sequence-number bump, each operation's changes and events (a failed transaction
    has none), for a Soroban transaction ``sorobanMeta`` (its fees: non-refundable,
    refundable consumed, rent; the return value when it succeeded), its fee events and
    its diagnostic events."""
    parts = [_u32(4), _ZERO, _changes_bytes(applied.before), _u32(len(applied.op_changes))]
    for changes, events in zip(applied.op_changes, applied.op_events, strict=True):
        parts += [_ZERO, _changes_bytes(changes), _events_bytes(events)]
    parts.append(_u32(0))  # txChangesAfter
    if applied.soroban:
        parts += [
            _u32(1),  # sorobanMeta present
            _u32(1),  # SorobanTransactionMetaExt v1
            _ZERO,
            applied.non_refundable.to_bytes(8, "big", signed=True),
            applied.consumed.to_bytes(8, "big", signed=True),
            applied.rent.to_bytes(8, "big", signed=True),
        ]
        if applied.return_value is None:
            parts.append(_ZERO)
        else:
            parts += [_u32(1), applied.return_value.to_xdr_bytes()]
    else:
        parts.append(_ZERO)
    parts.append(_u32(len(tx_events)))
    parts += [e.to_xdr_bytes() for e in tx_events]
    parts.append(_u32(len(applied.diagnostics)))
    parts += [d.to_xdr_bytes() for d in applied.diagnostics]
    return b"".join(parts)


def validation_events(err: TxError) -> list[sx.DiagnosticEvent]:
    """The diagnostic events of a transaction refused at submission: stellar-core's
    for a Soroban check (``[error, Error(kind, code)]``, ``[message, U64 args...]``);
    for something only the devnet refuses, a ``[error]`` event saying so; none for
    the classic result codes, as stellar-core."""
    d = err.diagnostic
    if d is not None:
        error = sx.SCVal(sx.SCValType.SCV_ERROR, error=sx.SCError(d.kind, code=d.code))
        message = scval.to_string(d.message)
        data = scval.to_vec([message, *(scval.to_uint64(a) for a in d.args)]) if d.args else message
        return [diagnostic_event(None, [scval.to_symbol("error"), error], data, False)]
    if err.note:
        return [diagnostic_event(None, [scval.to_symbol("error")], scval.to_string(err.message), False)]
    return []


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """A ledger entry as getLedgerEntries reports it (xdr = LedgerEntryData)."""
    out: dict[str, Any] = {
        "xdr": entry_data_xdr(entry.data).to_xdr(),
        "lastModifiedLedgerSeq": entry.last_modified,
    }
    if entry.live_until is not None:
        out["liveUntilLedgerSeq"] = entry.live_until
    return out
