"""Errors the backend raises on purpose, each with its HTTP status and a stable ``code``.

The API turns any of these into ``{"error": {"code", "message", "field"?}}`` in one
exception handler (:mod:`kalepool.backend.api.errors`).

* ``ServiceError`` (500)
    * ``BadRequest`` (400, also a ``ValueError``): ``field`` names the culprit
    * ``Unauthenticated`` (401): no token, or an unknown / revoked one
    * ``Forbidden`` (403): a valid token acting on what it does not own
    * ``NotFound`` (404)
    * ``Conflict`` (409): the request is valid but the state does not allow it
    * ``RateLimited`` (429): ``retry_after`` seconds
"""

from __future__ import annotations

import math

from kalepool.errors import KalePoolError

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "NotFound",
    "RateLimited",
    "ServiceError",
    "Unauthenticated",
]


class ServiceError(KalePoolError):
    status: int = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field


class BadRequest(ServiceError, ValueError):
    status = 400
    code = "invalid_request"


class Unauthenticated(ServiceError):
    status = 401
    code = "unauthenticated"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class RateLimited(ServiceError):
    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: float) -> None:
        #: whole seconds, at least 1: what the message and ``Retry-After`` both say
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many requests: retry in {self.retry_after} s")
