"""The app factory: ``create_app(context)`` → a FastAPI app serving ``/api/v1`` and health.

Nothing happens at import time: the caller builds the context (database, chain, keyring,
settings) and passes it in, so tests and the CLI assemble the same app differently.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalepool import __version__
from kalepool.backend.api.app_context import BackendContext
from kalepool.backend.api.errors import error_response, install_error_handlers
from kalepool.backend.api.openapi import MAX_BODY_BYTES, install_openapi
from kalepool.backend.api.routes import farmers, health, operator, pooler
from kalepool.backend.metrics import Metrics
from kalepool.backend.workers import WorkerRunner

__all__ = ["API_PREFIX", "BackendContext", "create_app"]

API_PREFIX = "/api/v1"

DESCRIPTION = """
Pooled KALE mining on Stellar. Three kinds of callers, each with its own bearer credential:

* **operator**: the admin token from the backend settings (`/poolers`, `/blocks`);
* **pooler**: its API key, acting only on its own farmers (`/pooler/...`);
* **farmer**: the token returned at registration, for its own record (`/farmers/{id}`).

Every error answer is `{"error": {"code", "message", "field"?}}`. Amounts are integers in
stroops (1 KALE = 10,000,000). Requests are rate-limited per credential (per client IP
without one), failed authentications per client IP; a refused request gets 429 with
`Retry-After`. A database (or chain) outage answers 503 with `Retry-After`. Integer fields
take JSON integers written as such (not strings, booleans, `1e3` or `3.0`, which JSON
Schema would count as integers); bodies are at most 4 MiB.
"""


def _operation_id(route: APIRoute) -> str:
    return route.name


def _route_template(scope: Scope) -> str:
    """The matched route's template (``/api/v1/farmers/{farmer_id}``), or ``unmatched``."""
    template = getattr(scope.get("route"), "path", None)
    if not template:
        return "unmatched"
    # routes of included routers may report their path without the include prefix
    if scope.get("path", "").startswith(API_PREFIX + "/") and not template.startswith(API_PREFIX + "/"):
        template = API_PREFIX + template
    return str(template)


class _MetricsMiddleware:
    """Counts and times every HTTP request by route template (not by raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            template = _route_template(scope)
            method = scope.get("method", "")
            self.metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=template).observe(time.perf_counter() - start)


class _BodyLimit:
    """413 ``payload_too_large`` for a body over ``limit`` bytes: before it is read when its
    Content-Length says so, else as soon as the chunks received pass it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            message = f"the body is over {self.limit} bytes"
            await error_response(413, "payload_too_large", message)(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, f"the body is over {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


def create_app(
    context: BackendContext, *, dispose_on_shutdown: bool = False, run_workers: bool = False
) -> FastAPI:
    """The backend's ASGI app.

    ``dispose_on_shutdown``: close the database pool and the chain client at shutdown;
    ``run_workers``: run the auto-harvester and the reconciler in this process while it
    serves (``kalepool backend serve`` passes ``backend.workers``).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runner = WorkerRunner(context.ops, context.reconcile_status) if run_workers else None
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            if dispose_on_shutdown:
                close = getattr(context.chain, "aclose", None)
                if close is not None:
                    await close()
                await context.db.dispose()

    app = FastAPI(
        title="kalepool backend",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        openapi_tags=[
            {"name": "operator", "description": "The pool operator (admin token)"},
            {"name": "pooler", "description": "Mining machines (pooler API key)"},
            {"name": "farmers", "description": "Farmers (farmer token; registration is open)"},
            {"name": "health", "description": "Liveness, readiness, metrics"},
        ],
    )
    app.state.backend = context
    install_error_handlers(app)
    install_openapi(app, API_PREFIX)
    app.add_middleware(_BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(_MetricsMiddleware, metrics=context.metrics)
    app.include_router(health.router)
    for router in (operator.router, farmers.router, pooler.router):
        app.include_router(router, prefix=API_PREFIX)
    if context.settings.dashboard:
        from kalepool.backend.web import install_dashboard

        install_dashboard(app, context)
    return app
