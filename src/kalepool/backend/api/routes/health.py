"""``/health``, ``/health/db``, ``/health/stellar`` (open) and ``/metrics`` (open, or behind
``backend.metrics_token``).

The database and chain checks are cached for ``backend.health_cache_seconds``, and
concurrent callers share one check: anonymous requests cannot turn into one database query
or RPC call each. No answer names the RPC URL (it may carry a key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from kalepool import __version__
from kalepool.backend.api.deps import ContextDep
from kalepool.backend.api.errors import responses
from kalepool.backend.api.schemas import DatabaseHealth, Health, StellarHealth
from kalepool.backend.chain import ChainError
from kalepool.backend.db.migrate import head_revision
from kalepool.backend.errors import Unauthenticated
from kalepool.backend.metrics import CONTENT_TYPE_LATEST
from kalepool.backend.security import same_secret

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT = 5.0

Answer = tuple[int, dict[str, Any]]


class CachedCheck:
    """One check's answer, reused for ``seconds``; callers arriving meanwhile wait for it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._answer: Answer | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def answer(self, check: Callable[[], Awaitable[Answer]]) -> Answer:
        async with self._lock:
            if self._answer is None or time.monotonic() - self._at >= self.seconds:
                self._answer = await check()
                self._at = time.monotonic()
            return self._answer


def _cached(request: Request, name: str, seconds: float) -> CachedCheck:
    checks: dict[str, CachedCheck] = getattr(request.app.state, "health_checks", None) or {}
    request.app.state.health_checks = checks
    return checks.setdefault(name, CachedCheck(seconds))


@router.get("/health", response_model=Health)
async def health(context: ContextDep) -> Health:
    """The process is up; ``degraded`` when this process's last reconciler run found a
    custodial account holding less KALE than the journal says."""
    reconciliation = context.reconcile_status.state
    status = "degraded" if reconciliation == "mismatch" else "ok"
    return Health(status=status, version=__version__, checks={"reconciliation": reconciliation})


@router.get(
    "/health/db",
    response_model=DatabaseHealth,
    responses={503: {"model": DatabaseHealth, "description": "database unreachable or not migrated"}},
)
async def health_db(request: Request, context: ContextDep) -> Response:
    """The database answers and is migrated to the revision this code expects."""

    async def check() -> Answer:
        expected = head_revision()
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                revision = await context.db.revision()
        except Exception:
            body = DatabaseHealth(status="unavailable", revision=None, expected_revision=expected)
            return 503, body.model_dump()
        status = "ok" if revision == expected else "not_migrated"
        body = DatabaseHealth(status=status, revision=revision, expected_revision=expected)
        return (200 if status == "ok" else 503), body.model_dump()

    code, body = await _cached(request, "db", context.settings.health_cache_seconds).answer(check)
    return JSONResponse(body, status_code=code)


@router.get(
    "/health/stellar",
    response_model=StellarHealth,
    responses={503: {"model": StellarHealth, "description": "the chain cannot be reached"}},
)
async def health_stellar(request: Request, context: ContextDep) -> Response:
    """The chain answers (latest ledger and network passphrase)."""

    async def check() -> Answer:
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                info = await context.chain.health()
        except (ChainError, TimeoutError) as exc:
            # the code only: the message names the RPC URL, which may carry a key
            detail = exc.code if isinstance(exc, ChainError) else "timeout"
            return 503, StellarHealth(status="unavailable", detail=detail).model_dump()
        body = StellarHealth(
            status="ok", network_passphrase=info.network_passphrase, latest_ledger=info.latest_ledger
        )
        return 200, body.model_dump()

    code, body = await _cached(request, "stellar", context.settings.health_cache_seconds).answer(check)
    return JSONResponse(body, status_code=code)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **responses(401)},
)
async def metrics(request: Request, context: ContextDep) -> Response:
    """Prometheus metrics of this process. When ``backend.metrics_token`` is set, only for
    ``Authorization: Bearer <that token>`` (401 otherwise)."""
    expected = context.settings.metrics_token
    if expected is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not same_secret(given.strip(), expected.get_secret_value()):
            raise Unauthenticated("/metrics needs the metrics token (Authorization: Bearer <token>)")
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
