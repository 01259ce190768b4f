"""``/health``, ``/health/db``, ``/health/stellar`` and ``/metrics`` (no credentials)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from kalepool import __version__
from kalepool.backend.api.deps import ContextDep
from kalepool.backend.api.schemas import DatabaseHealth, Health, StellarHealth
from kalepool.backend.chain import ChainError
from kalepool.backend.db.migrate import head_revision
from kalepool.backend.metrics import CONTENT_TYPE_LATEST

router = APIRouter(tags=["health"])

_CHECK_TIMEOUT = 5.0


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
async def health_db(context: ContextDep) -> Response:
    """The database answers and is migrated to the revision this code expects."""
    expected = head_revision()
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            revision = await context.db.revision()
    except Exception:
        body = DatabaseHealth(status="unavailable", revision=None, expected_revision=expected)
        return JSONResponse(body.model_dump(), status_code=503)
    status = "ok" if revision == expected else "not_migrated"
    body = DatabaseHealth(status=status, revision=revision, expected_revision=expected)
    return JSONResponse(body.model_dump(), status_code=200 if status == "ok" else 503)


@router.get(
    "/health/stellar",
    response_model=StellarHealth,
    responses={503: {"model": StellarHealth, "description": "the chain cannot be reached"}},
)
async def health_stellar(context: ContextDep) -> Response:
    """The chain answers (latest ledger and network passphrase)."""
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT):
            info = await context.chain.health()
    except (ChainError, TimeoutError) as exc:
        # the code only: the message names the RPC URL, which may carry a key
        detail = exc.code if isinstance(exc, ChainError) else "timeout"
        body = StellarHealth(status="unavailable", detail=detail)
        return JSONResponse(body.model_dump(), status_code=503)
    body = StellarHealth(
        status="ok", network_passphrase=info.network_passphrase, latest_ledger=info.latest_ledger
    )
    return JSONResponse(body.model_dump())


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(context: ContextDep) -> Response:
    """Prometheus metrics of this process."""
    return Response(context.metrics.render(), media_type=CONTENT_TYPE_LATEST)
