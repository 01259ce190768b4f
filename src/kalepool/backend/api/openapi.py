"""The OpenAPI document declares every status the server answers, with its body.

The routes declare what is particular to them (403, 404, 409, 502, ...); the answers any
operation of a kind can give are added here, once, when the document is built:

* every operation: 500 ``internal_error``;
* every ``/api/v1`` operation: 503 (``database_unavailable``, ``Retry-After``);
* with a request body: 400 (not JSON), 413 (over ``MAX_BODY_BYTES``), 422;
* with path or query parameters: 422;
* with a credential: 401, and 429 (``Retry-After``).

FastAPI's own 422 body (``HTTPValidationError``) is replaced by ours (``ErrorResponse``):
the server never answers the former.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["MAX_BODY_BYTES", "install_openapi"]

#: the largest request body accepted (10,000 work results fit in about 2 MB)
MAX_BODY_BYTES = 4 * 1024 * 1024

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
_RETRY_AFTER = {
    "Retry-After": {"description": "seconds to wait before trying again", "schema": {"type": "integer"}}
}
_DESCRIPTIONS = {
    400: "The body is not valid JSON",
    401: "Missing, unknown or revoked credential",
    413: f"The body is over {MAX_BODY_BYTES} bytes",
    422: "A field failed validation",
    429: "Rate limit exceeded (see Retry-After)",
    500: "Internal error",
    503: "The database (or the chain) is unavailable; retry after Retry-After seconds",
}


def _error(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    entry = dict(existing or {})
    entry.setdefault("description", _DESCRIPTIONS[status])
    entry["content"] = _ERROR
    if status in (429, 503):
        entry["headers"] = _RETRY_AFTER
    return entry


def declare_errors(schema: dict[str, Any], api_prefix: str) -> dict[str, Any]:
    """Add the common error answers to every operation of ``schema`` (in place)."""
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            answers: dict[str, Any] = operation.setdefault("responses", {})
            statuses = {500}
            if path.startswith(api_prefix + "/"):
                statuses.add(503)
            if "requestBody" in operation:
                statuses |= {400, 413, 422}
            if operation.get("parameters"):
                statuses.add(422)
            if operation.get("security"):
                statuses |= {401, 429}
            for status in sorted(statuses | {int(code) for code in answers if code in ("429", "503")}):
                existing = answers.get(str(status))
                if existing is not None and "ErrorResponse" not in str(existing) and status != 422:
                    continue  # the route's own body (the health checks' 503)
                answers[str(status)] = _error(status, existing)
    components = schema.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install_openapi(app: FastAPI, api_prefix: str) -> None:
    """Build the app's OpenAPI document with :func:`declare_errors` applied."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            app.openapi_schema = declare_errors(schema, api_prefix)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
