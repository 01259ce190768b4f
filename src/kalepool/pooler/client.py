"""The pooler's HTTP client for the backend's ``/api/v1/pooler/*`` endpoints.

httpx (async) with a timeout on every request and bounded retries with exponential
backoff and jitter (tenacity) on what may pass: connection failures, timeouts, 5xx and
429 (after its ``Retry-After``). A 4xx other than 429 is the caller's mistake and is
raised at once as :class:`BackendRejected`. Every request the pooler makes is safe to
repeat: the backend plants a farmer at most once per block, records one work and one
harvest per (farmer, block), and answers a repeated request with what it already did.
Each request also carries an ``Idempotency-Key`` derived from its body.

The pooler never imports the backend: the answers are parsed here into small
dataclasses, ignoring fields this version does not know.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from kalepool.errors import KalePoolError

__all__ = [
    "API_PREFIX",
    "BackendClient",
    "BackendError",
    "BackendRejected",
    "BackendUnavailable",
    "FailedHarvest",
    "FailedPlant",
    "HarvestAnswer",
    "HarvestedPail",
    "PlantAnswer",
    "PlantedFarmer",
    "RejectedWork",
    "WorkAnswer",
    "WorkReport",
]

log = structlog.get_logger(__name__)

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


class BackendError(KalePoolError):
    """The backend did not do what was asked."""

    code = "backend_error"


class BackendUnavailable(BackendError):
    """No usable answer after every retry (connection refused, timeouts, 5xx, 429)."""

    code = "backend_unavailable"


class BackendRejected(BackendError):
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


# ------------------------------------------------------------------- answers


@dataclass(frozen=True, slots=True)
class PlantedFarmer:
    farmer_id: str
    custodial_wallet: str
    stake_amount: int
    plant_tx_hash: str
    block_index: int
    entropy: str


@dataclass(frozen=True, slots=True)
class FailedPlant:
    farmer_id: str
    error: str
    message: str
    attributed_to: str


@dataclass(frozen=True, slots=True)
class PlantAnswer:
    planted: list[PlantedFarmer]
    failed: list[FailedPlant]
    summary: dict[str, Any] = field(default_factory=dict)

    def by_block(self) -> dict[int, list[PlantedFarmer]]:
        out: dict[int, list[PlantedFarmer]] = {}
        for p in self.planted:
            out.setdefault(p.block_index, []).append(p)
        return out


@dataclass(frozen=True, slots=True)
class WorkReport:
    """One farmer's applied work, as ``work-complete`` wants it."""

    farmer_id: str
    nonce: int
    hash: str
    zeros: int
    gap: int
    work_tx_hash: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "farmer_id": self.farmer_id,
            "nonce": self.nonce,
            "hash": self.hash,
            "zeros": self.zeros,
            "gap": self.gap,
            "tx_hash": self.work_tx_hash,
        }


@dataclass(frozen=True, slots=True)
class RejectedWork:
    farmer_id: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class WorkAnswer:
    work_recorded: int
    rejected: list[RejectedWork]
    compensation_amount: int
    ready_for_harvest: list[tuple[str, int]]


@dataclass(frozen=True, slots=True)
class HarvestedPail:
    farmer_id: str
    block_index: int
    reward: int
    stake_returned: int
    harvest_tx_hash: str


@dataclass(frozen=True, slots=True)
class FailedHarvest:
    farmer_id: str
    block_index: int
    error: str
    message: str


@dataclass(frozen=True, slots=True)
class HarvestAnswer:
    harvested: list[HarvestedPail]
    failed: list[FailedHarvest]
    total_rewards: int


def _pick(cls: type, data: Mapping[str, Any]) -> Any:
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]
    return cls(**{k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items() if k in names})


# -------------------------------------------------------------------- client


class BackendClient:
    """Async client of one backend, authenticated by the pooler's API key.

    :param transport: an httpx transport (tests pass an ``ASGITransport`` or a mock)
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
    ) -> None:
        self.base_url = base_url.rstrip("/")
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
                raise _rejected(response)
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

    async def whoami(self) -> str:
        """The pooler id this API key belongs to (asked once, then remembered)."""
        if self.pooler_id is None:
            data = await self.request("GET", "/pooler/farmers?limit=1")
            self.pooler_id = str(data["pooler_id"])
        return self.pooler_id

    async def farmers(self, *, limit: int = 1000) -> list[dict[str, Any]]:
        data = await self.request("GET", f"/pooler/farmers?limit={limit}")
        return list(data.get("farmers", []))

    async def earnings(self) -> dict[str, Any]:
        """Our share of our farmers' rewards: ``claim`` (owed now), ``held_in_custody``,
        ``kale_by_kind`` (the journal) and ``recent_payouts`` (stroops of KALE)."""
        data: dict[str, Any] = await self.request("GET", "/pooler/earnings")
        return data

    async def heartbeat(
        self,
        *,
        status: str | None = None,
        hash_rate: float | None = None,
        current_block: int | None = None,
        farmers_mining: int | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"pooler_id": await self.whoami()}
        for key, value in (
            ("status", status),
            ("hash_rate", hash_rate),
            ("current_block", current_block),
            ("farmers_mining", farmers_mining),
            ("version", version),
        ):
            if value is not None:
                body[key] = value
        data: dict[str, Any] = await self.request("POST", "/pooler/heartbeat", body)
        return data

    async def plant_request(self, block_index: int, *, max_farmers: int | None = None) -> PlantAnswer:
        """Ask the backend to plant our farmers for ``block_index`` (safe to repeat)."""
        body: dict[str, Any] = {"block_index": block_index, "pooler_id": await self.whoami()}
        if max_farmers is not None:
            body["max_farmers_capacity"] = max_farmers
        data = await self.request("POST", "/pooler/plant-request", body)
        return PlantAnswer(
            planted=[_pick(PlantedFarmer, p) for p in data.get("planted_farmers", [])],
            failed=[_pick(FailedPlant, f) for f in data.get("failed_plants", [])],
            summary=dict(data.get("summary", {})),
        )

    async def work_complete(self, block_index: int, results: Sequence[WorkReport]) -> WorkAnswer:
        body = {
            "block_index": block_index,
            "pooler_id": await self.whoami(),
            "work_results": [r.as_json() for r in results],
        }
        data = await self.request("POST", "/pooler/work-complete", body)
        return WorkAnswer(
            work_recorded=int(data.get("work_recorded", 0)),
            rejected=[_pick(RejectedWork, r) for r in data.get("rejected", [])],
            compensation_amount=int(data.get("compensation_amount", 0)),
            ready_for_harvest=[
                (str(r["farmer_id"]), int(r["block_index"])) for r in data.get("ready_for_harvest", [])
            ],
        )

    async def harvest_request(self, blocks: Mapping[int, Sequence[str]]) -> HarvestAnswer:
        body = {
            "pooler_id": await self.whoami(),
            "harvest_blocks": [
                {"block_index": index, "farmer_ids": list(ids)}
                for index, ids in sorted(blocks.items())
                if ids
            ],
        }
        data = await self.request("POST", "/pooler/harvest-request", body)
        return HarvestAnswer(
            harvested=[_pick(HarvestedPail, h) for h in data.get("harvest_results", [])],
            failed=[_pick(FailedHarvest, f) for f in data.get("failed_harvests", [])],
            total_rewards=int(data.get("total_rewards", 0)),
        )


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


def format_earnings(data: Mapping[str, Any]) -> str:
    """``GET /pooler/earnings`` as a few lines for a terminal (amounts in KALE)."""

    def kale(stroops: int) -> str:
        return f"{stroops / 10**7:,.7f} KALE"

    by_kind = data.get("kale_by_kind", {})
    lines = [
        f"pooler {data['pooler_id']}  account {data.get('account') or '(none: nothing can be sent)'}",
        f"owed now        {kale(int(data['claim']))}",
        f"in custody      {kale(int(data['held_in_custody']))} (its fees still in its farmers' accounts)",
        f"shares earned   {kale(int(by_kind.get('pooler_share', 0)))}",
        f"compensations   {kale(int(by_kind.get('compensation_owed', 0)))}",
        f"paid            {kale(int(by_kind.get('payout', 0)) + int(by_kind.get('payout_reversed', 0)))}",
    ]
    for p in data.get("recent_payouts", []):
        tx = p.get("tx_hash") or "-"
        what = p.get("kind", "payout")
        lines.append(f"  {what} {p['id']}: {kale(int(p['amount']))} {p['status']} {p['created_at']} tx {tx}")
    return "\n".join(lines)
