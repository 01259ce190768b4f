"""One place that turns exceptions into ``{"error": {"code", "message", "field"?}}`` answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kalepool.backend.chain import ChainError, ChainUnavailable
from kalepool.backend.custody import CustodyError
from kalepool.backend.errors import RateLimited, ServiceError
from kalepool.backend.logs import describe, get_logger, redact
from kalepool.wire.pooler import ErrorResponse

__all__ = [
    "CHAIN_RETRY_AFTER",
    "DATABASE_RETRY_AFTER",
    "UnhandledErrors",
    "error_response",
    "install_error_handlers",
    "responses",
]

log = get_logger(__name__)

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_DESCRIPTIONS = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Missing, unknown or revoked credential",
    403: "Valid credential, but not for this resource",
    404: "No such resource",
    409: "The current state does not allow this",
    422: "A field failed validation",
    429: "Rate limit exceeded (see Retry-After)",
    502: "The chain refused or failed the call",
    503: "The chain or the database is unavailable",
}

#: seconds a client is told to wait when the database, or the chain, does not answer
DATABASE_RETRY_AFTER = 5
CHAIN_RETRY_AFTER = 5


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(s, "Error")} for s in statuses}


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


async def _backend_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(exc.status, exc.code, exc.message, exc.field, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    first = errors[0] if errors else {}
    field = _field_of(tuple(first.get("loc", ())))
    message = str(first.get("msg", "invalid request"))
    if field:
        message = f"{field}: {message}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return error_response(422, "validation_error", message, field)


def _allowed_methods(request: Request) -> str:
    """Every method the API documents at this path (Starlette names only the first
    matching route's); the table is built from the OpenAPI document once per app."""
    table = getattr(request.app.state, "allowed_methods", None)
    if table is None:
        paths = request.app.openapi()["paths"]
        table = [(compile_path(path)[0], sorted(m.upper() for m in ops)) for path, ops in paths.items()]
        request.app.state.allowed_methods = table
    for regex, methods in table:
        if regex.match(request.url.path):
            return ", ".join(methods)
    return ""


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(exc.status_code, code, message, headers=headers or None)


async def _chain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChainError)
    request.app.state.backend.metrics.chain_errors.labels(code=exc.code).inc()
    if isinstance(exc, ChainUnavailable):  # its message names the RPC URL: never shown
        log.warning("chain unavailable", path=request.url.path, error=describe(exc))
        return error_response(
            503,
            exc.code,
            "the chain cannot be reached; retry later",
            headers={"Retry-After": str(CHAIN_RETRY_AFTER)},
        )
    return error_response(502, exc.code, redact(exc.message))


async def _custody_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("custody failure", error_type=type(exc).__name__, path=request.url.path)
    return error_response(500, "custody_error", "a custodial key could not be used")


#: the database cannot be reached or did not answer in time (not a bad statement)
DATABASE_DOWN = (sa.OperationalError, sa.InterfaceError, sa.TimeoutError, sa.DisconnectionError)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable", path=request.url.path, error=describe(exc))
    return error_response(
        503,
        "database_unavailable",
        "the database is not answering; retry later",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


class UnhandledErrors:
    """The outermost handler: an exception nothing else handled is logged once (with its
    traceback, without locals) and answered 500 ``internal_error``; it is not raised on to
    the server, which would log a second traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled error", path=scope.get("path", ""), method=scope.get("method", ""))
            if not started:
                await error_response(500, "internal_error", "internal error")(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _backend_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ChainError, _chain_error)
    app.add_exception_handler(CustodyError, _custody_error)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    app.add_middleware(UnhandledErrors)
