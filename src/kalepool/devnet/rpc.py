"""The JSON-RPC 2.0 façade: decode a request, call the engine, encode the reply.

Methods and result fields follow stellar-rpc (params by name; numbers that the real RPC
sends as strings are strings here too: ``closeTime``, ``latestLedgerCloseTime``,
``oldestLedgerCloseTime``, ``createdAt``, ``minResourceFee``, fee-stat values).

Error codes: -32700 unparsable body, -32600 invalid request (and ``getEvents`` outside
the retention window), -32601 unknown method, -32602 bad params or undecodable XDR.

Non-standard **test controls** all start with ``devnet_``:

========================= ==============================================================
``devnet_closeLedgers``   ``{count=1}``: apply the queue and close ``count`` ledgers
``devnet_advanceTime``    ``{seconds, close=false}``: move the clock forward
``devnet_snapshot``       ``{}`` → ``{id}``: remember the whole state
``devnet_revert``         ``{id}``: go back to a snapshot
``devnet_fund``           ``{address, xlm?, kale?}``: create/top up an account (stroops)
``devnet_setLedgerEntry`` ``{key, entry|null, liveUntilLedgerSeq?}``: write an entry
``devnet_constructFarm``  ``{homesteader?, asset?}``: rerun the farm constructor
``devnet_pending``        ``{}``: queued transaction hashes (and ones dropped at close)
``devnet_requests``       ``{method?, clear=false}``: the requests received so far
``devnet_info``           ``{}``: what ``GET /devnet`` returns
========================= ==============================================================
"""

from __future__ import annotations

import logging
import re
import threading
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from stellar_sdk import StrKey
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import unb64
from kalepool.devnet.engine import Devnet, DevnetError, homesteader_keypair
from kalepool.devnet.history import (
    PageRefused,
    close_meta,
    get_ledgers,
    get_transactions,
    ledger_records,
    transaction_fields,
)
from kalepool.devnet.jsonrpc import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    HttpReply,
    answer,
    error_reply,
    serve,
)
from kalepool.devnet.ledger import PROTOCOL_VERSION, EventRecord
from kalepool.devnet.meta import entry_to_json

log = logging.getLogger(__name__)

MAX_LEDGER_ENTRY_KEYS = 200
DEFAULT_EVENTS_LIMIT = 100
MAX_EVENTS_LIMIT = 10_000
VERSION = "kalepool-devnet 0.1.0"
_HASH = re.compile(r"^[0-9a-fA-F]{64}$")


class RpcError(Exception):
    """A JSON-RPC error answer (``code``: -32602...): the devnet's model of the RPC's own
    refusals, never raised to a caller of kalepool."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


Params = dict[str, Any]


class DevnetRPC:
    """Dispatches JSON-RPC requests to a :class:`~kalepool.devnet.engine.Devnet`.

    ``info`` returns the ``GET /devnet`` document (it knows the server's URLs).
    Every request is recorded (method and params) in ``requests`` for tests.
    """

    def __init__(
        self,
        engine: Devnet,
        info: Callable[[], dict[str, Any]],
        friendbot_url: str | None = None,
        record: int = 10_000,
    ) -> None:
        self.engine = engine
        self.info = info
        self.friendbot_url = friendbot_url
        self.requests: deque[tuple[str, Any]] = deque(maxlen=record)
        self._requests_lock = threading.Lock()
        self.methods: dict[str, Callable[[Params], Any]] = {
            "getHealth": self.get_health,
            "getNetwork": self.get_network,
            "getLatestLedger": self.get_latest_ledger,
            "getVersionInfo": self.get_version_info,
            "getLedgerEntries": self.get_ledger_entries,
            "simulateTransaction": self.simulate_transaction,
            "sendTransaction": self.send_transaction,
            "getTransaction": self.get_transaction,
            "getEvents": self.get_events,
            "getFeeStats": self.get_fee_stats,
            "getLedgers": self.get_ledgers,
            "getTransactions": self.get_transactions,
            "devnet_closeLedgers": self.close_ledgers,
            "devnet_advanceTime": self.advance_time,
            "devnet_snapshot": self.snapshot,
            "devnet_revert": self.revert,
            "devnet_fund": self.fund,
            "devnet_setLedgerEntry": self.set_ledger_entry,
            "devnet_constructFarm": self.construct_farm,
            "devnet_pending": self.pending,
            "devnet_requests": self.recorded_requests,
            "devnet_info": lambda params: self.info(),
        }

    # ------------------------------------------------------------ transport

    def handle_http(self, method: str, content_type: str | None, body: bytes) -> HttpReply:
        """One HTTP request to the endpoint (see :mod:`.jsonrpc`)."""
        return serve(method, content_type, body, lambda raw: self.handle_bytes(raw))

    def handle_bytes(self, body: bytes) -> Any:
        """A JSON body in, the reply document out (None: nothing to answer); a body
        that is not JSON raises (answered as an HTTP error)."""
        return answer(body, self.handle)

    def handle(self, request: Any) -> dict[str, Any]:
        """One request object → its reply."""
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, "invalid request")
        rid = request.get("id")
        if request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            return _error(rid, INVALID_REQUEST, "invalid request")
        method = request["method"]
        params = request.get("params")
        with self._requests_lock:
            self.requests.append((method, params))
        handler = self.methods.get(method)
        if handler is None:
            return _error(rid, METHOD_NOT_FOUND, "method not found", method)
        if params is None:
            params = {}
        if not isinstance(params, dict):
            return _error(rid, INVALID_PARAMS, "invalid parameters: params must be an object (by name)")
        try:
            result = handler(params)
        except RpcError as err:
            return _error(rid, err.code, err.message, err.data)
        except (DevnetError, ValueError, TypeError, KeyError) as err:
            return _error(rid, INVALID_PARAMS, f"invalid parameters: {err}")
        except Exception as err:  # a devnet bug: answer like stellar-rpc's internal error
            log.exception("devnet: %s failed", method)
            return _error(rid, INTERNAL_ERROR, f"request failed to process due to internal issue: {err}")
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    # ---------------------------------------------------------- standard API

    def _window(self) -> dict[str, Any]:
        latest, oldest = self.engine.latest(), self.engine.oldest()
        return {
            "latestLedger": latest.sequence,
            "latestLedgerCloseTime": str(latest.close_time),
            "oldestLedger": oldest.sequence,
            "oldestLedgerCloseTime": str(oldest.close_time),
        }

    def get_health(self, params: Params) -> dict[str, Any]:
        latest, oldest = self.engine.latest(), self.engine.oldest()
        return {
            "status": "healthy",
            "latestLedger": latest.sequence,
            "oldestLedger": oldest.sequence,
            "ledgerRetentionWindow": self.engine.config.retention_ledgers,
            "latestLedgerCloseTime": latest.close_time,
        }

    def get_network(self, params: Params) -> dict[str, Any]:
        out: dict[str, Any] = {
            "passphrase": self.engine.config.passphrase,
            "protocolVersion": PROTOCOL_VERSION,
        }
        if self.friendbot_url:
            out["friendbotUrl"] = self.friendbot_url
        return out

    def get_latest_ledger(self, params: Params) -> dict[str, Any]:
        with self.engine.lock:
            latest = self.engine.latest()
            meta = close_meta(latest, ledger_records(self.engine, latest))
        return {
            "id": latest.hash_hex,
            "protocolVersion": PROTOCOL_VERSION,
            "sequence": latest.sequence,
            "closeTime": str(latest.close_time),
            "headerXdr": latest.header_xdr,
            "metadataXdr": meta,
        }

    def get_ledgers(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        return self._page(get_ledgers, params)

    def get_transactions(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        return self._page(get_transactions, params)

    def _page(self, method: Callable[..., dict[str, Any]], params: Params) -> dict[str, Any]:
        pagination = params.get("pagination")
        if pagination is not None and not isinstance(pagination, dict):
            raise RpcError(INVALID_PARAMS, "invalid parameters: pagination must be an object")
        try:
            return method(self.engine, params.get("startLedger"), pagination)
        except PageRefused as err:
            raise RpcError(INVALID_REQUEST if err.invalid_request else INVALID_PARAMS, str(err)) from err

    def get_version_info(self, params: Params) -> dict[str, Any]:
        return {
            "version": VERSION,
            "commitHash": "",
            "buildTimestamp": "",
            "captiveCoreVersion": "none (kalepool devnet engine)",
            "protocolVersion": PROTOCOL_VERSION,
        }

    def get_ledger_entries(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        keys = params.get("keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise RpcError(
                INVALID_PARAMS, "invalid parameters: keys must be a non-empty list of base64 LedgerKeys"
            )
        if len(keys) > MAX_LEDGER_ENTRY_KEYS:
            raise RpcError(
                INVALID_PARAMS, f"key count ({len(keys)}) exceeds maximum supported ({MAX_LEDGER_ENTRY_KEYS})"
            )
        try:
            found = self.engine.get_ledger_entries(keys)
        except ValueError as err:
            raise RpcError(INVALID_PARAMS, str(err)) from err
        return {
            "entries": [{"key": key, **entry_to_json(entry)} for key, entry in found],
            "latestLedger": self.engine.latest().sequence,
        }

    def simulate_transaction(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        envelope = _required_str(params, "transaction")
        config = params.get("resourceConfig") or {}
        if not isinstance(config, dict):
            raise RpcError(INVALID_PARAMS, "invalid parameters: resourceConfig must be an object")
        leeway = config.get("instructionLeeway") or 0
        if not isinstance(leeway, int) or leeway < 0:
            raise RpcError(
                INVALID_PARAMS, "invalid parameters: instructionLeeway must be a non-negative integer"
            )
        sim = self.engine.simulate(envelope, params.get("authMode") or None, leeway)
        out: dict[str, Any] = {"latestLedger": sim.latest_ledger}
        if sim.error is not None:
            out["error"] = sim.error
            if sim.events:
                out["events"] = sim.events
            return out
        out.update(
            {
                "transactionData": sim.transaction_data,
                "minResourceFee": str(sim.min_resource_fee),
                "events": sim.events,
                "results": [{"auth": sim.auth, "xdr": sim.result_xdr}],
                "cost": {"cpuInsns": str(sim.cost[0]), "memBytes": str(sim.cost[1])},
                "stateChanges": sim.state_changes,
            }
        )
        return out

    def send_transaction(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        envelope = _required_str(params, "transaction")
        try:
            sent = self.engine.send(envelope)
        except ValueError as err:
            raise RpcError(INVALID_PARAMS, "invalid_xdr", str(err)) from err
        out: dict[str, Any] = {
            "status": sent.status,
            "hash": sent.hash,
            "latestLedger": sent.latest_ledger,
            "latestLedgerCloseTime": str(sent.latest_close_time),
        }
        if sent.error_result_xdr is not None:
            out["errorResultXdr"] = sent.error_result_xdr
        if sent.diagnostic_events_xdr:
            out["diagnosticEventsXdr"] = sent.diagnostic_events_xdr
        return out

    def get_transaction(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        tx_hash = _required_str(params, "hash")
        if not _HASH.match(tx_hash):
            raise RpcError(INVALID_PARAMS, f"invalid parameters: unexpected hash length ({len(tx_hash)})")
        record = self.engine.get_transaction(tx_hash)
        window = self._window()
        if record is None:
            return {"status": "NOT_FOUND", "txHash": tx_hash.lower(), **window}
        return {
            "status": "SUCCESS" if record.successful else "FAILED",
            "txHash": record.hash,
            **window,
            **transaction_fields(record),
        }

    def get_events(self, params: Params) -> dict[str, Any]:
        _no_json_format(params)
        engine = self.engine
        pagination = params.get("pagination") or {}
        if not isinstance(pagination, dict):
            raise RpcError(INVALID_PARAMS, "invalid parameters: pagination must be an object")
        cursor = pagination.get("cursor")
        limit = pagination.get("limit") or DEFAULT_EVENTS_LIMIT
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise RpcError(INVALID_PARAMS, "invalid parameters: limit must be a positive integer")
        if limit > MAX_EVENTS_LIMIT:
            raise RpcError(INVALID_PARAMS, f"limit must not exceed {MAX_EVENTS_LIMIT}")
        start = params.get("startLedger")
        end = params.get("endLedger")
        after: tuple[int, int] | None = None
        latest, oldest = engine.latest().sequence, engine.oldest().sequence
        if cursor:
            if start or end:
                raise RpcError(INVALID_PARAMS, "startLedger and endLedger cannot be set with a cursor")
            after = _parse_cursor(cursor)
            start = max(oldest, after[0] >> 32)
        else:
            if not isinstance(start, int) or isinstance(start, bool) or start <= 0:
                raise RpcError(INVALID_PARAMS, "invalid parameters: startLedger must be a positive integer")
            if start < oldest or start > latest:
                raise RpcError(
                    INVALID_REQUEST,
                    f"startLedger must be between the oldest ledger: {oldest} "
                    f"and the latest ledger: {latest}",
                )
        if end is not None and (not isinstance(end, int) or isinstance(end, bool) or end <= start):
            raise RpcError(
                INVALID_PARAMS, "invalid parameters: endLedger must be an integer after startLedger"
            )
        matchers = _event_filters(params.get("filters"))
        found: list[EventRecord] = []
        with engine.lock:
            for event in engine.state.iter_events(start, end):
                if after is not None and _event_position(event) <= after:
                    continue
                if matchers and not any(m(event) for m in matchers):
                    continue
                found.append(event)
                if len(found) >= limit:
                    break
        if len(found) >= limit:
            next_cursor = found[-1].id
        else:
            stop = min(end if end is not None else latest + 1, latest + 1)
            next_cursor = f"{(stop << 32) - 1:019d}-{0:010d}" if stop > 0 else found[-1].id
            if found and _event_position(found[-1]) > _parse_cursor(next_cursor):
                next_cursor = found[-1].id
        return {
            "events": [_event_json(e) for e in found],
            "cursor": next_cursor,
            **self._window(),
        }

    def get_fee_stats(self, params: Params) -> dict[str, Any]:
        soroban, classic, ledgers = self.engine.fee_stats()
        return {
            "sorobanInclusionFee": _distribution(soroban, ledgers),
            "inclusionFee": _distribution(classic, ledgers),
            "latestLedger": self.engine.latest().sequence,
        }

    # ------------------------------------------------------------- controls

    def close_ledgers(self, params: Params) -> dict[str, Any]:
        count = params.get("count", 1)
        info = self.engine.close_ledgers(count)
        return {
            "latestLedger": info.sequence,
            "closeTime": info.close_time,
            "id": info.hash_hex,
            "transactionCount": info.tx_count,
        }

    def advance_time(self, params: Params) -> dict[str, Any]:
        seconds = params.get("seconds")
        if seconds is None:
            raise RpcError(INVALID_PARAMS, "invalid parameters: seconds is required")
        next_close = self.engine.advance_time(seconds)
        out: dict[str, Any] = {"nextCloseTime": next_close}
        if params.get("close"):
            info = self.engine.close_ledger()
            out.update({"latestLedger": info.sequence, "closeTime": info.close_time})
        return out

    def snapshot(self, params: Params) -> dict[str, Any]:
        return {"id": self.engine.snapshot()}

    def revert(self, params: Params) -> dict[str, Any]:
        sid = params.get("id")
        if not isinstance(sid, int):
            raise RpcError(INVALID_PARAMS, "invalid parameters: id must be a snapshot id")
        self.engine.revert(sid)
        return {"latestLedger": self.engine.latest().sequence}

    def fund(self, params: Params) -> dict[str, Any]:
        address = _required_str(params, "address")
        xlm = params.get("xlm")
        kale = params.get("kale", 0)
        for name, value in (("xlm", xlm), ("kale", kale)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                raise RpcError(INVALID_PARAMS, f"invalid parameters: {name} must be an integer (stroops)")
        self.engine.fund(address, xlm, kale or 0)
        account = self.engine.account(address)
        assert account is not None
        return {
            "address": address,
            "xlm": account.balance,
            "kale": self.engine.kale_balance(address),
            "sequence": str(account.seq_num),
        }

    def set_ledger_entry(self, params: Params) -> dict[str, Any]:
        key = _required_str(params, "key")
        entry = params.get("entry")
        if entry is not None and not isinstance(entry, str):
            raise RpcError(
                INVALID_PARAMS, "invalid parameters: entry must be a base64 LedgerEntryData or null"
            )
        live_until = params.get("liveUntilLedgerSeq")
        if live_until is not None and not isinstance(live_until, int):
            raise RpcError(INVALID_PARAMS, "invalid parameters: liveUntilLedgerSeq must be an integer")
        self.engine.set_entry(key, entry, live_until)
        return {"latestLedger": self.engine.latest().sequence}

    def construct_farm(self, params: Params) -> dict[str, Any]:
        homesteader = params.get("homesteader") or homesteader_keypair().public_key
        asset = params.get("asset") or self.engine.config.kale_sac_id
        for name, value in (("homesteader", homesteader), ("asset", asset)):
            if not isinstance(value, str) or not (
                StrKey.is_valid_ed25519_public_key(value) or StrKey.is_valid_contract(value)
            ):
                raise RpcError(INVALID_PARAMS, f"invalid parameters: {name} must be a G... or C... address")
        return {"error": self.engine.construct_farm(homesteader, asset)}

    def pending(self, params: Params) -> dict[str, Any]:
        with self.engine.lock:
            return {"hashes": self.engine.pending(), "dropped": dict(self.engine.dropped)}

    def recorded_requests(self, params: Params) -> dict[str, Any]:
        method = params.get("method")
        with self._requests_lock:
            items = [{"method": m, "params": p} for m, p in self.requests if method is None or m == method]
            if params.get("clear"):
                self.requests.clear()
        return {"requests": items}


# ------------------------------------------------------------------ helpers


_error = error_reply


def _required_str(params: Params, name: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise RpcError(INVALID_PARAMS, f"invalid parameters: {name} is required")
    return value


def _no_json_format(params: Params) -> None:
    fmt = params.get("xdrFormat")
    if fmt not in (None, "", "base64"):
        raise RpcError(
            INVALID_PARAMS, f"invalid parameters: xdrFormat {fmt!r} is not supported by the devnet"
        )


def _parse_cursor(cursor: Any) -> tuple[int, int]:
    if not isinstance(cursor, str):
        raise RpcError(INVALID_PARAMS, "invalid parameters: cursor must be a string")
    parts = cursor.split("-")
    try:
        if len(parts) == 1:
            return int(parts[0]), -1
        if len(parts) == 2:
            return int(parts[0]), int(parts[1])
    except ValueError:
        pass
    raise RpcError(INVALID_PARAMS, f"invalid parameters: invalid cursor {cursor!r}")


def _event_position(event: EventRecord) -> tuple[int, int]:
    return event.position


def _event_json(event: EventRecord) -> dict[str, Any]:
    return {
        "type": event.type,
        "ledger": event.ledger,
        "ledgerClosedAt": datetime.fromtimestamp(event.close_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "contractId": event.contract_id,
        "id": event.id,
        "operationIndex": event.op_index,
        "transactionIndex": event.tx_index,
        "txHash": event.tx_hash,
        "inSuccessfulContractCall": event.successful,
        "topic": event.topic_b64,
        "value": event.value_b64,
    }


def _event_filters(filters: Any) -> list[Callable[[EventRecord], bool]]:
    if filters is None:
        return []
    if not isinstance(filters, list):
        raise RpcError(INVALID_PARAMS, "invalid parameters: filters must be a list")
    if len(filters) > 5:
        raise RpcError(INVALID_PARAMS, "maximum 5 filters per request")
    out = []
    for f in filters:
        if not isinstance(f, dict):
            raise RpcError(INVALID_PARAMS, "invalid parameters: each filter must be an object")
        kind = f.get("type")
        if kind not in (None, "", "contract", "system", "diagnostic"):
            raise RpcError(INVALID_PARAMS, f"invalid parameters: unknown event type {kind!r}")
        ids = f.get("contractIds") or []
        if not isinstance(ids, list) or len(ids) > 5:
            raise RpcError(INVALID_PARAMS, "invalid parameters: at most 5 contractIds per filter")
        for cid in ids:
            if not isinstance(cid, str) or not StrKey.is_valid_contract(cid):
                raise RpcError(INVALID_PARAMS, f"invalid parameters: invalid contract id {cid!r}")
        topics = f.get("topics") or []
        if not isinstance(topics, list) or len(topics) > 5:
            raise RpcError(INVALID_PARAMS, "invalid parameters: at most 5 topic filters per filter")
        patterns = [_topic_pattern(t) for t in topics]
        out.append(_matcher(kind or None, set(ids), patterns))
    return out


def _topic_pattern(segments: Any) -> list[bytes | str | None]:
    if not isinstance(segments, list) or not 1 <= len(segments) <= 4:
        raise RpcError(INVALID_PARAMS, "invalid parameters: a topic filter has 1 to 4 segments")
    pattern: list[bytes | str | None] = []
    for i, seg in enumerate(segments):
        if seg == "*":
            pattern.append(None)
        elif seg == "**":
            if i != len(segments) - 1:
                raise RpcError(INVALID_PARAMS, "invalid parameters: '**' must be the last segment")
            pattern.append("**")
        else:
            try:
                pattern.append(sx.SCVal.from_xdr_bytes(unb64(seg)).to_xdr_bytes())
            except Exception as exc:
                raise RpcError(INVALID_PARAMS, f"invalid parameters: bad topic segment {seg!r}") from exc
    return pattern


def _matcher(
    kind: str | None, ids: set[str], patterns: list[list[bytes | str | None]]
) -> Callable[[EventRecord], bool]:
    def match(event: EventRecord) -> bool:
        if kind is not None and event.type != kind:
            return False
        if ids and event.contract_id not in ids:
            return False
        if not patterns:
            return True
        topics = [t.to_xdr_bytes() for t in event.topics]
        return any(_topics_match(p, topics) for p in patterns)

    return match


def _topics_match(pattern: list[bytes | str | None], topics: list[bytes]) -> bool:
    for i, seg in enumerate(pattern):
        if seg == "**":
            return True
        if i >= len(topics):
            return False
        if seg is not None and seg != topics[i]:
            return False
    return len(pattern) == len(topics)


def _distribution(fees: list[int], ledgers: int) -> dict[str, Any]:
    values = sorted(fees) or [100]

    def pct(p: int) -> str:
        return str(values[min(len(values) - 1, max(0, (p * len(values) + 99) // 100 - 1))])

    counts: dict[int, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    mode = max(counts, key=lambda v: (counts[v], -v))
    out: dict[str, Any] = {"max": str(values[-1]), "min": str(values[0]), "mode": str(mode)}
    for p in (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99):
        out[f"p{p}"] = pct(p)
    out["transactionCount"] = str(len(fees))
    out["ledgerCount"] = ledgers
    return out
