"""Ledger history as stellar-rpc serves it: ``LedgerCloseMeta``, ``getLedgers``,
``getTransactions``.

A closed ledger's ``LedgerCloseMeta`` (v2, protocol 23) is assembled from what the
engine kept: the header, the transaction set (classic phase, then the Soroban phase as
one stage of one cluster, both at the base fee), and per transaction its result, fee
charge, meta and refund (``TransactionResultMetaV1``), plus the live contract state's
size. It is packed from the pieces' cached XDR, on request.

Pagination follows stellar-rpc: ``getLedgers`` pages by ledger sequence (the cursor is
the last ledger returned), ``getTransactions`` by TOID (``ledger << 32 | order << 12 |
1``), both at most 200 per page (50 by default) and within the retention window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kalepool.devnet.codec import b64, sha256, unb64
from kalepool.devnet.ledger import BASE_FEE, LedgerInfo, TxRecord
from kalepool.errors import KalePoolError

if TYPE_CHECKING:
    from kalepool.devnet.engine import Devnet

MAX_LIMIT = 200
DEFAULT_LIMIT = 50


class PageRefused(KalePoolError, ValueError):
    """A page request stellar-rpc refuses: ``invalid_request`` (-32600) or not (-32602)."""

    code = "page_refused"

    def __init__(self, message: str, invalid_request: bool = True) -> None:
        super().__init__(message)
        self.invalid_request = invalid_request


def _u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def tx_set_bytes(previous_hash: bytes, classic: Sequence[bytes], soroban: Sequence[bytes]) -> bytes:
    """``GeneralizedTransactionSet`` v1: a classic phase and a Soroban phase (one stage,
    one cluster), both with the base fee, of the given envelopes' XDR."""
    fee = _u32(1) + BASE_FEE.to_bytes(8, "big")  # optional baseFee present
    parts = [_u32(1), previous_hash, _u32(2), _u32(0)]  # v1, hash, two phases, phase v0
    if classic:
        parts += [_u32(1), _u32(0), fee, _u32(len(classic)), *classic]  # one maybe-discounted component
    else:
        parts.append(_u32(0))
    parts += [_u32(1), fee]  # phase v1: parallel component
    if soroban:
        parts += [_u32(1), _u32(1), _u32(len(soroban)), *soroban]  # one stage, one cluster
    else:
        parts.append(_u32(0))
    return b"".join(parts)


def tx_set_hash(previous_hash: bytes, records: Sequence[tuple[bytes, bool]]) -> bytes:
    """The header's ``txSetHash``: the hash of the ledger's transaction set, from
    ``(envelope XDR, is Soroban)`` in application order."""
    return sha256(tx_set(previous_hash, records))


def tx_set(previous_hash: bytes, records: Sequence[tuple[bytes, bool]]) -> bytes:
    classic = [raw for raw, soroban in records if not soroban]
    contracts = [raw for raw, soroban in records if soroban]
    return tx_set_bytes(previous_hash, classic, contracts)


def close_meta(info: LedgerInfo, records: Sequence[TxRecord]) -> str:
    """Base64 ``LedgerCloseMeta`` v2 of a closed ledger and its applied transactions."""
    header = unb64(info.header_xdr)
    previous = header[4:36]  # LedgerHeader: ledgerVersion, previousLedgerHash, ...
    envelopes = [(unb64(r.envelope_xdr), r.soroban) for r in records]
    parts = [_u32(2), _u32(0), info.hash, header, _u32(0), tx_set(previous, envelopes), _u32(len(records))]
    for r in records:
        parts += [
            _u32(0),
            bytes.fromhex(r.hash),
            unb64(r.result.get()),
            unb64(r.fee_changes.get()),
            unb64(r.meta.get()),
            unb64(r.refund_changes.get()),
        ]
    parts += [_u32(0), _u32(0), info.soroban_bytes.to_bytes(8, "big"), _u32(0)]  # no upgrades, SCP, evictions
    return b64(b"".join(parts))


def header_entry(info: LedgerInfo) -> str:
    """Base64 ``LedgerHeaderHistoryEntry`` (what ``getLedgers`` calls ``headerXdr``)."""
    return b64(info.hash + unb64(info.header_xdr) + _u32(0))


def ledger_records(devnet: Devnet, info: LedgerInfo) -> list[TxRecord]:
    state = devnet.state
    return [state.txs[h] for h in state.tx_ledgers.get(info.sequence, []) if h in state.txs]


def _limit(pagination: dict[str, Any] | None) -> int:
    limit = (pagination or {}).get("limit") or DEFAULT_LIMIT
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise PageRefused("invalid parameters: limit must be a positive integer", invalid_request=False)
    if limit > MAX_LIMIT:
        raise PageRefused(f"limit must not exceed {MAX_LIMIT}")
    return limit


def _request(
    devnet: Devnet, start: Any, pagination: dict[str, Any] | None, both: str
) -> tuple[LedgerInfo, LedgerInfo, Any, int]:
    """The window, the cursor and the limit of a page request (``both``: the message
    when a start ledger and a cursor are both given)."""
    cursor = (pagination or {}).get("cursor")
    if cursor and start:
        raise PageRefused(both)
    return devnet.state.oldest, devnet.state.latest, cursor, _limit(pagination)


def _start(start: Any, oldest: LedgerInfo, latest: LedgerInfo, what: str) -> int:
    if (
        not isinstance(start, int)
        or isinstance(start, bool)
        or not oldest.sequence <= start <= latest.sequence
    ):
        raise PageRefused(
            f"{what} must be between the oldest ledger: {oldest.sequence} and the latest ledger: "
            f"{latest.sequence} for this rpc instance"
        )
    return start


def _cursor(cursor: Any) -> int:
    try:
        return int(cursor)
    except (TypeError, ValueError) as exc:
        raise PageRefused(f"invalid cursor {cursor!r}", invalid_request=False) from exc


def get_ledgers(devnet: Devnet, start: Any, pagination: dict[str, Any] | None) -> dict[str, Any]:
    """``getLedgers`` (XDR format)."""
    with devnet.lock:
        both = f"startLedger ({start}) and cursor cannot both be set"
        oldest, latest, cursor, limit = _request(devnet, start, pagination, both)
        if cursor:
            first = _cursor(cursor) + 1
            if not oldest.sequence <= first <= latest.sequence:
                raise PageRefused(
                    f"cursor ('{cursor}') must be between the oldest ledger: {oldest.sequence} and the "
                    f"latest ledger: {latest.sequence} for this rpc instance",
                    invalid_request=False,
                )
        else:
            first = _start(start, oldest, latest, f"start ledger ({start})")
        infos = [i for i in devnet.state.ledgers if first <= i.sequence < first + limit]
        ledgers = [
            {
                "hash": i.hash_hex,
                "sequence": i.sequence,
                "ledgerCloseTime": str(i.close_time),
                "headerXdr": header_entry(i),
                "metadataXdr": close_meta(i, ledger_records(devnet, i)),
            }
            for i in infos
        ]
        # the last ledger returned; else where the next page starts from
        next_cursor = str(infos[-1].sequence if infos else (cursor or first - 1))
        return {
            "ledgers": ledgers,
            "latestLedger": latest.sequence,
            "latestLedgerCloseTime": latest.close_time,
            "oldestLedger": oldest.sequence,
            "oldestLedgerCloseTime": oldest.close_time,
            "cursor": next_cursor,
        }


def get_transactions(devnet: Devnet, start: Any, pagination: dict[str, Any] | None) -> dict[str, Any]:
    """``getTransactions`` (XDR format)."""
    with devnet.lock:
        oldest, latest, cursor, limit = _request(
            devnet, start, pagination, "startLedger and cursor cannot both be set"
        )
        if cursor:
            toid = _cursor(cursor)
            ledger, order = toid >> 32, ((toid >> 12) & 0xFFFFF) + 1  # the one after the cursor
        else:
            ledger, order = _start(start, oldest, latest, "start ledger"), 1
        found: list[dict[str, Any]] = []
        position = 0
        for info in devnet.state.ledgers:
            if info.sequence < ledger:
                continue
            position = (info.sequence << 32) | 1  # toid(ledger, 0, 1): nothing of it returned yet
            for record in ledger_records(devnet, info):
                if info.sequence == ledger and record.application_order < order:
                    continue
                position = (info.sequence << 32) | (record.application_order << 12) | 1
                found.append(transaction_info(record, transaction_fields(record)))
                if len(found) >= limit:
                    break
            if len(found) >= limit:
                break
        return {
            "transactions": found,
            "latestLedger": latest.sequence,
            "latestLedgerCloseTimestamp": latest.close_time,
            "oldestLedger": oldest.sequence,
            "oldestLedgerCloseTimestamp": oldest.close_time,
            "cursor": str(position),
        }


def transaction_info(record: TxRecord, fields: dict[str, Any]) -> dict[str, Any]:
    """A ``getTransactions`` item: ``getTransaction``'s fields, ``createdAt`` a number."""
    return {
        "status": "SUCCESS" if record.successful else "FAILED",
        "txHash": record.hash,
        **fields,
        "createdAt": record.close_time,
    }


def transaction_fields(record: TxRecord) -> dict[str, Any]:
    """The getTransaction fields of an applied transaction."""
    events = record.events.get()
    out: dict[str, Any] = {
        "applicationOrder": record.application_order,
        "feeBump": record.fee_bump,
        "envelopeXdr": record.envelope_xdr,
        "resultXdr": record.result.get(),
        "resultMetaXdr": record.meta.get(),
        "ledger": record.ledger,
        "createdAt": str(record.close_time),
        "events": {"transactionEventsXdr": record.tx_events.get(), "contractEventsXdr": events},
    }
    diagnostics = record.diagnostic_events.get()
    if diagnostics:
        out["diagnosticEventsXdr"] = diagnostics
    return out
