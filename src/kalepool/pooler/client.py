"""The pooler's HTTP client for the backend's ``/api/v1/pooler/*`` endpoints.

httpx (async) with a timeout on every request and bounded retries with exponential
backoff and jitter (tenacity) on what may pass: connection failures, timeouts, 5xx and
429 (after its ``Retry-After``). A 4xx other than 429 is the caller's mistake and is
raised at once as :class:`BackendRejected`. Every request the pooler makes is safe to
repeat: the backend plants a farmer at most once per block, records one work and one
harvest per (farmer, block), and answers a repeated request with what it already did.
Each request also carries an ``Idempotency-Key`` derived from its body.

The pooler never imports the backend: bodies are written and answers parsed with the
shared wire contract (:mod:`kalepool.wire.pooler`); an answer's unknown fields are logged
(an error when ``strict``, as in the tests).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from kalepool.errors import ConfigError, KalePoolError
from kalepool.wire import parse
from kalepool.wire import pooler as w
from kalepool.wire.codes import ErrorCode

__all__ = [
    "API_PREFIX",
    "BackendCallError",
    "BackendClient",
    "BackendRejected",
    "BackendUnavailable",
    "NetworkRefused",
    "format_earnings",
]

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0

A = TypeVar("A", bound=w.Answer)


class BackendCallError(KalePoolError):
    """The backend did not do what the pooler asked."""

    code = "backend_error"


class BackendUnavailable(BackendCallError):
    """No usable answer after every retry (connection refused, timeouts, 5xx, 429)."""

    code = "backend_unavailable"


class NetworkRefused(ConfigError):
    """The backend works on another network than this pooler (409 ``network_mismatch``):
    nothing can be planted until one of them is configured anew."""

    code = "network_mismatch"


class BackendRejected(BackendCallError):
    """A 4xx answer: ``status``, the error body's ``error_code``, ``message`` and ``field``."""

    code = "backend_rejected"

    def __init__(self, status: int, error_code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"backend answered {status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.field = field


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# -------------------------------------------------------------------- client


class BackendClient:
    """Async client of one backend, authenticated by the pooler's API key.

    :param transport: an httpx transport (tests pass an ``ASGITransport`` or a mock)
    :param strict: unknown fields in an answer raise (default: ``KALEPOOL_WIRE_STRICT``)
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        retries: int = 5,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        strict: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.strict = strict
        self.retries = retries
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "User-Agent": "kalepool-pooler"},
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
        )
        self.pooler_id: str | None = None
        #: the network facts the backend checks against its own (learnt from the network)
        self.network: w.NetworkFacts | None = None

    async def close(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> BackendClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- plumbing

    async def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One API call with retries; returns the decoded JSON body of a 2xx answer."""
        content = json.dumps(body, sort_keys=True).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else {}
        if content is not None:
            digest = hashlib.sha256(method.encode() + path.encode() + content).hexdigest()
            headers["Idempotency-Key"] = digest[:32]
        url = API_PREFIX + path

        async def once() -> Any:
            try:
                response = await self.http.request(method, url, content=content, headers=headers)
            except httpx.TimeoutException as exc:
                raise _Retryable(f"{method} {path}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise _Retryable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(
                    f"{method} {path}: HTTP {response.status_code} {_error_text(response)}",
                    _retry_after(response),
                )
            if response.status_code >= 400:
                rejected = _rejected(response)
                if rejected.error_code == ErrorCode.NETWORK_MISMATCH:
                    raise NetworkRefused(f"the backend refused our network: {rejected.message}")
                raise rejected
            if response.status_code == 204 or not response.content:
                return None
            return response.json()

        backoff = wait_exponential_jitter(
            multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
        )

        def wait(state: Any) -> float:
            exc = state.outcome.exception() if state.outcome else None
            base = backoff(state)
            if isinstance(exc, _Retryable) and exc.retry_after is not None:
                return max(base, min(exc.retry_after, MAX_RETRY_AFTER))
            return float(base)

        def before_sleep(state: Any) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning("backend.retry", attempt=state.attempt_number, error=str(exc))

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=wait,
                retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    return await once()
        except _Retryable as exc:
            raise BackendUnavailable(str(exc)) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # --------------------------------------------------------------- endpoints

    async def call(self, method: str, path: str, answer: type[A], body: w.Request | None = None) -> A:
        """One endpoint: the body as the wire contract writes it, the answer parsed by it."""
        data = await self.request(method, path, body.model_dump(mode="json") if body is not None else None)
        return parse(answer, data, strict=self.strict)

    async def whoami(self) -> str:
        """The pooler id this API key belongs to (asked once, then remembered)."""
        if self.pooler_id is None:
            page = await self.call("GET", "/pooler/farmers?limit=1", w.PoolerFarmerList)
            self.pooler_id = str(page.pooler_id)
        return self.pooler_id

    async def farmers(self, *, limit: int = 1000) -> w.PoolerFarmerList:
        return await self.call("GET", f"/pooler/farmers?limit={limit}", w.PoolerFarmerList)

    async def earnings(self) -> w.PoolerEarnings:
        """Our share of our farmers' rewards: ``claim`` (owed now), ``held_in_custody``,
        ``kale_by_kind`` (the journal) and ``recent_payouts`` (stroops of KALE)."""
        return await self.call("GET", "/pooler/earnings", w.PoolerEarnings)

    async def heartbeat(
        self,
        *,
        status: str | None = None,
        hash_rate: float | None = None,
        current_block: int | None = None,
        farmers_mining: int | None = None,
        version: str | None = None,
    ) -> w.HeartbeatResponse:
        body = w.HeartbeatRequest(
            pooler_id=uuid.UUID(await self.whoami()),
            network=self.network,
            status=status,
            hash_rate=hash_rate,
            current_block=current_block,
            farmers_mining=farmers_mining,
            version=version,
        )
        return await self.call("POST", "/pooler/heartbeat", w.HeartbeatResponse, body)

    async def plant_request(self, block_index: int, *, max_farmers: int | None = None) -> w.PlantResponse:
        """Ask the backend to plant our farmers for ``block_index`` (safe to repeat)."""
        pooler_id = uuid.UUID(await self.whoami())
        body = w.PlantRequest(
            block_index=block_index,
            pooler_id=pooler_id,
            network=self.network,
            max_farmers_capacity=max_farmers,
        )
        return await self.call("POST", "/pooler/plant-request", w.PlantResponse, body)

    async def work_complete(
        self, block_index: int, results: Sequence[w.WorkResult]
    ) -> w.WorkCompleteResponse:
        pooler_id = uuid.UUID(await self.whoami())
        body = w.WorkCompleteRequest(block_index=block_index, pooler_id=pooler_id, work_results=list(results))
        return await self.call("POST", "/pooler/work-complete", w.WorkCompleteResponse, body)

    async def harvest_request(self, blocks: Mapping[int, Sequence[str]]) -> w.HarvestResponse:
        body = w.HarvestRequest(
            pooler_id=uuid.UUID(await self.whoami()),
            harvest_blocks=[
                w.HarvestBlock(block_index=index, farmer_ids=[uuid.UUID(f) for f in ids])
                for index, ids in sorted(blocks.items())
                if ids
            ],
        )
        return await self.call("POST", "/pooler/harvest-request", w.HarvestResponse, body)


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError):
        return response.text[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _rejected(response: httpx.Response) -> BackendRejected:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        error = {}
    return BackendRejected(
        response.status_code,
        str(error.get("code") or f"http_{response.status_code}"),
        str(error.get("message") or response.text[:200]),
        error.get("field"),
    )


def format_earnings(earnings: w.PoolerEarnings) -> str:
    """``GET /pooler/earnings`` as a few lines for a terminal (amounts in KALE)."""

    def kale(stroops: int) -> str:
        return f"{stroops / 10**7:,.7f} KALE"

    by_kind = earnings.kale_by_kind
    lines = [
        f"pooler {earnings.pooler_id}  account {earnings.account or '(none: nothing can be sent)'}",
        f"owed now        {kale(earnings.claim)}",
        f"in custody      {kale(earnings.held_in_custody)} (its fees still in its farmers' accounts)",
        f"shares earned   {kale(by_kind.get('pooler_share', 0))}",
        f"compensations   {kale(by_kind.get('compensation_owed', 0))}",
        f"paid            {kale(by_kind.get('payout', 0) + by_kind.get('payout_reversed', 0))}",
    ]
    for p in earnings.recent_payouts:
        tx = p.tx_hash or "-"
        lines.append(f"  {p.kind} {p.id}: {kale(p.amount)} {p.status} {p.created_at.isoformat()} tx {tx}")
    return "\n".join(lines)
