"""The ``--state FILE``: the whole devnet as JSON, written atomically at ledger close.

The document holds every live ledger entry (as base64 ``LedgerKey`` and
``LedgerEntryData`` XDR with ``lastModifiedLedgerSeq``/``liveUntilLedgerSeq``), the
recent ledger headers, the applied transactions and events still in the retention
window, the queued transactions, and the clock. It is written to a temporary file next
to the target and moved over it with ``os.replace``, so a crash leaves either the old or
the new state, never half of one. Serialised entries and transactions are cached, so a
ledger close re-encodes only what changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from stellar_sdk import xdr as sx

from kalepool.devnet.codec import Entry, b64, entry_data_from_xdr, entry_data_xdr, unb64
from kalepool.devnet.ledger import (
    NO_CHANGES,
    EventRecord,
    Lazy,
    LedgerInfo,
    LedgerState,
    TxRecord,
    soroban_size,
)
from kalepool.errors import ConfigError

FORMAT = "kalepool-devnet-state"
VERSION = 1
KEEP_LEDGERS = 2_000  # headers kept in the file (older transactions/events go with them)


class StateWriter:
    """Serialises a :class:`LedgerState` to ``path``, reusing unchanged fragments."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: dict[bytes, tuple[Entry, dict[str, Any]]] = {}
        self._txs: dict[str, tuple[TxRecord, dict[str, Any]]] = {}

    def document(self, state: LedgerState, passphrase: str, pending: list[str]) -> dict[str, Any]:
        entries = []
        cache: dict[bytes, tuple[Entry, dict[str, Any]]] = {}
        for key, entry in state.entries.items():
            hit = self._entries.get(key)
            if hit is None or hit[0] is not entry:
                doc: dict[str, Any] = {
                    "key": b64(key),
                    "entry": entry_data_xdr(entry.data).to_xdr(),
                    "lastModified": entry.last_modified,
                }
                if entry.live_until is not None:
                    doc["liveUntil"] = entry.live_until
                hit = (entry, doc)
            cache[key] = hit
            entries.append(hit[1])
        self._entries = cache
        ledgers = state.ledgers[-KEEP_LEDGERS:]
        first = ledgers[0].sequence
        txs = []
        tx_cache: dict[str, tuple[TxRecord, dict[str, Any]]] = {}
        for seq in sorted(state.tx_ledgers):
            if seq < first:
                continue
            for h in state.tx_ledgers[seq]:
                record = state.txs.get(h)
                if record is None:
                    continue
                cached = self._txs.get(h)
                if cached is None or cached[0] is not record:
                    cached = (record, _tx_doc(record))
                tx_cache[h] = cached
                txs.append(cached[1])
        self._txs = tx_cache
        return {
            "format": FORMAT,
            "version": VERSION,
            "passphrase": passphrase,
            "feePool": state.fee_pool,
            "timeShift": state.time_shift,
            "virtualElapsed": state.virtual_elapsed,
            "genesisTime": state.genesis_time,
            "ledgers": [
                {
                    "sequence": i.sequence,
                    "closeTime": i.close_time,
                    "hash": i.hash.hex(),
                    "headerXdr": i.header_xdr,
                    "txCount": i.tx_count,
                    "sorobanBytes": i.soroban_bytes,
                }
                for i in ledgers
            ],
            "entries": entries,
            "transactions": txs,
            "events": [_event_doc(e) for e in state.events if e.ledger >= first],
            "pending": pending,
        }

    def write(self, state: LedgerState, passphrase: str, pending: list[str]) -> None:
        data = json.dumps(self.document(state, passphrase, pending), separators=(",", ":"))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


def _tx_doc(r: TxRecord) -> dict[str, Any]:
    return {
        "hash": r.hash,
        "ledger": r.ledger,
        "closeTime": r.close_time,
        "order": r.application_order,
        "feeBump": r.fee_bump,
        "envelope": r.envelope_xdr,
        "successful": r.successful,
        "feeCharged": r.fee_charged,
        "result": r.result.get(),
        "meta": r.meta.get(),
        "events": r.events.get(),
        "diagnostics": r.diagnostic_events.get(),
        "txEvents": r.tx_events.get(),
        "feeChanges": r.fee_changes.get(),
        "refundChanges": r.refund_changes.get(),
        "returnValue": r.return_value.to_xdr() if r.return_value is not None else None,
        "inclusionFee": r.inclusion_fee,
        "soroban": r.soroban,
    }


def _event_doc(e: EventRecord) -> dict[str, Any]:
    return {
        "ledger": e.ledger,
        "closeTime": e.close_time,
        "txOrder": e.tx_index,
        "opIndex": e.op_index,
        "index": e.event_index,
        "successful": e.successful,
        "contract": e.contract_id,
        "topics": e.topic_b64,
        "value": e.value_b64,
        "txHash": e.tx_hash,
    }


def load_state(path: str | os.PathLike[str], passphrase: str) -> tuple[LedgerState, list[str]]:
    """The state saved in ``path`` and its queued envelopes; ``ConfigError`` if unusable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"state file {path}: cannot read it: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ConfigError(f"state file {path}: not a kalepool devnet state (version {VERSION})")
    if doc.get("passphrase") != passphrase:
        raise ConfigError(f"state file {path}: it belongs to another network ({doc.get('passphrase')!r})")
    try:
        state = LedgerState(
            fee_pool=int(doc["feePool"]),
            time_shift=float(doc["timeShift"]),
            virtual_elapsed=float(doc["virtualElapsed"]),
            genesis_time=int(doc["genesisTime"]),
        )
        for item in doc["ledgers"]:
            state.ledgers.append(
                LedgerInfo(
                    int(item["sequence"]),
                    int(item["closeTime"]),
                    bytes.fromhex(item["hash"]),
                    item["headerXdr"],
                    int(item["txCount"]),
                    int(item.get("sorobanBytes", 0)),
                )
            )
        for item in doc["entries"]:
            data = entry_data_from_xdr(sx.LedgerEntryData.from_xdr(item["entry"]))
            state.entries[unb64(item["key"])] = Entry(data, int(item["lastModified"]), item.get("liveUntil"))
        for item in doc["transactions"]:
            rv = item.get("returnValue")
            record = TxRecord(
                item["hash"],
                int(item["ledger"]),
                int(item["closeTime"]),
                int(item["order"]),
                bool(item["feeBump"]),
                item["envelope"],
                bool(item["successful"]),
                int(item["feeCharged"]),
                Lazy.of(item["result"]),
                Lazy.of(item["meta"]),
                Lazy.of(item["events"]),
                Lazy.of(item["diagnostics"]),
                sx.SCVal.from_xdr(rv) if rv else None,
                int(item.get("inclusionFee", 100)),
                bool(item.get("soroban", False)),
                Lazy.of(item.get("txEvents", [])),
                Lazy.of(item.get("feeChanges", NO_CHANGES)),
                Lazy.of(item.get("refundChanges", NO_CHANGES)),
            )
            state.txs[record.hash] = record
            state.tx_ledgers.setdefault(record.ledger, []).append(record.hash)
        for item in doc["events"]:
            state.events.append(
                EventRecord(
                    int(item["ledger"]),
                    int(item["closeTime"]),
                    int(item["txOrder"]),
                    int(item["opIndex"]),
                    int(item["index"]),
                    item["contract"],
                    [sx.SCVal.from_xdr(t) for t in item["topics"]],
                    sx.SCVal.from_xdr(item["value"]),
                    item["txHash"],
                    bool(item.get("successful", True)),
                )
            )
        state.soroban_bytes = sum(soroban_size(e) for e in state.entries.values())
        for seq in (i.sequence for i in state.ledgers):
            state.tx_ledgers.setdefault(seq, [])
        pending = [str(p) for p in doc.get("pending", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"state file {path}: malformed: {exc}") from exc
    if not state.ledgers:
        raise ConfigError(f"state file {path}: it holds no ledger")
    return state, pending
