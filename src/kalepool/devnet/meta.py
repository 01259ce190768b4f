"""Rendering of what the engine applied: transaction meta XDR, error text, state changes.

- :func:`meta_xdr`: a ``TransactionMeta`` v4, assembled from the entries' cached XDR
  (packing a large instance map again for every transaction would dominate
  ``getTransaction``).
- :func:`error_text`: a simulation's host error as stellar-rpc prints it (``HostError:
  Error(Contract, #8)`` and the event log, newest first); :func:`render_scval` renders
  one value the way the host's debug printer does.
- :func:`state_changes`: a simulation's ``stateChanges``; :func:`entry_to_json`: one
  ``getLedgerEntries`` entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from kalepool.devnet.host import HostError, contract_event
from kalepool.devnet.ledger import Overlay


def error_text(err: HostError, events: Sequence[sx.DiagnosticEvent]) -> str:
    """The simulation error string, as stellar-rpc renders a host error."""
    lines = [f"HostError: {err.text}", "", "Event log (newest first):"]
    for i, ev in enumerate(reversed(events)):
        body = ev.event.body.v0
        assert body is not None
        contract = ev.event.contract_id
        who = f"contract:{contract_str(contract)}" if contract is not None else "[no contract]"
        topics = ", ".join(render_scval(t) for t in body.topics)
        lines.append(f"   {i}: [Diagnostic Event] {who}, topics:[{topics}], data:{render_scval(body.data)}")
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


def meta_xdr(
    before: list[tuple[sx.LedgerKey, Entry | None, Entry | None]],
    op_changes: list[list[tuple[Any, Entry | None, Entry | None]]],
    op_events: list[list[Any]],
    return_value: sx.SCVal | None,
    diagnostics: list[sx.DiagnosticEvent],
    soroban: bool,
    resource_fee: int,
) -> str:
    """Base64 ``TransactionMeta`` v4 (see ``Stellar-ledger.x``), built from bytes."""
    parts = [_u32(4), _ZERO, _changes_bytes(before), _u32(len(op_changes))]
    for changes, events in zip(op_changes, op_events, strict=True):
        parts += [_ZERO, _changes_bytes(changes), _events_bytes(events)]
    parts.append(_u32(0))  # txChangesAfter
    if soroban:
        parts += [
            _u32(1),  # sorobanMeta present
            _u32(1),  # SorobanTransactionMetaExt v1
            _ZERO,
            resource_fee.to_bytes(8, "big", signed=True),
            bytes(8),  # refundable resource fee charged
            bytes(8),  # rent fee charged
        ]
        if return_value is None:
            parts.append(_ZERO)
        else:
            parts += [_u32(1), return_value.to_xdr_bytes()]
    else:
        parts.append(_ZERO)
    parts.append(_ZERO)  # transaction-level events
    parts.append(_u32(len(diagnostics)))
    parts += [d.to_xdr_bytes() for d in diagnostics]
    return b64(b"".join(parts))


def entry_to_json(entry: Entry) -> dict[str, Any]:
    """A ledger entry as getLedgerEntries reports it (xdr = LedgerEntryData)."""
    out: dict[str, Any] = {
        "xdr": entry_data_xdr(entry.data).to_xdr(),
        "lastModifiedLedgerSeq": entry.last_modified,
    }
    if entry.live_until is not None:
        out["liveUntilLedgerSeq"] = entry.live_until
    return out
