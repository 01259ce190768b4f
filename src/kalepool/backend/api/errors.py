"""One place that turns exceptions into ``{"error": {"code", "message", "field"?}}`` answers."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kalepool.backend.api.schemas import ErrorResponse
from kalepool.backend.chain import ChainError, ChainUnavailable
from kalepool.backend.custody import CustodyError
from kalepool.backend.errors import BackendError, RateLimited
from kalepool.backend.logs import get_logger

__all__ = ["error_response", "install_error_handlers", "responses"]

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
    assert isinstance(exc, BackendError)
    headers = None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(max(1, int(exc.retry_after + 0.999)))}
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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _chain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ChainError)
    request.app.state.backend.metrics.chain_errors.labels(code=exc.code).inc()
    if isinstance(exc, ChainUnavailable):
        return error_response(503, exc.code, exc.message)
    return error_response(502, exc.code, exc.message)


async def _custody_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("custody failure", error_type=type(exc).__name__, path=request.url.path)
    return error_response(500, "custody_error", "a custodial key could not be used")


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", path=request.url.path)
    return error_response(500, "internal_error", "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(BackendError, _backend_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(ChainError, _chain_error)
    app.add_exception_handler(CustodyError, _custody_error)
    app.add_exception_handler(Exception, _unexpected)
