"""Dependencies: the backend context, credentials with rate limits, principals by role.

Every authenticated request spends one token of its credential's bucket *before* the
credential is looked up; requests without a credential spend from their client IP's
bucket. A credential that fails to authenticate (401) spends from its client IP's
failure bucket, which every credential from that address shares: once it is empty, the
address gets 429 whatever it sends (guessing keys one per bucket does not work). The
client IP is the connection's, or the ``X-Forwarded-For`` one when the connection comes
from a configured proxy (``backend.trusted_proxies``; uvicorn applies it).
Route signatures read like prose: ``principal: PoolerDep``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kalepool.backend.api.app_context import BackendContext
from kalepool.backend.errors import RateLimited, Unauthenticated
from kalepool.backend.services.auth import Principal, Role, authenticate

__all__ = [
    "AdminDep",
    "ContextDep",
    "FarmerDep",
    "PoolerDep",
    "anonymous_rate_limit",
    "get_context",
]


def get_context(request: Request) -> BackendContext:
    context: BackendContext = request.app.state.backend
    return context


ContextDep = Annotated[BackendContext, Depends(get_context)]

_admin_scheme = HTTPBearer(
    scheme_name="AdminToken",
    description="The operator's admin token (settings: backend.admin_token)",
    auto_error=False,
)
_pooler_scheme = HTTPBearer(
    scheme_name="PoolerApiKey", description="A pooler's API key (kp_pooler_...)", auto_error=False
)
_farmer_scheme = HTTPBearer(
    scheme_name="FarmerToken", description="A farmer's token (kp_farmer_...)", auto_error=False
)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _spend_anonymous(context: BackendContext, request: Request) -> None:
    wait = context.anonymous_limiter.acquire("ip:" + _client(request))
    if wait:
        context.metrics.rate_limited.labels(scope="anonymous").inc()
        raise RateLimited(wait)


def anonymous_rate_limit(request: Request, context: ContextDep) -> None:
    """For endpoints open to anyone (registration): one bucket per client IP."""
    _spend_anonymous(context, request)


async def _principal(
    request: Request, context: BackendContext, credentials: HTTPAuthorizationCredentials | None, role: Role
) -> Principal:
    if credentials is None or not credentials.credentials:
        _spend_anonymous(context, request)
        raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
    address = "ip:" + _client(request)
    wait = context.auth_failures.peek(address)
    if wait:
        context.metrics.rate_limited.labels(scope="auth_failures").inc()
        raise RateLimited(wait)
    token = credentials.credentials
    wait = context.limiter.acquire("key:" + hashlib.sha256(token.encode()).hexdigest())
    if wait:
        context.metrics.rate_limited.labels(scope=role.value).inc()
        raise RateLimited(wait)
    admin = context.settings.admin_token.get_secret_value() if context.settings.admin_token else None
    try:
        return await authenticate(context.db, token, role=role, admin_token=admin)
    except Unauthenticated:
        context.auth_failures.acquire(address)
        raise


async def _admin(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_admin_scheme)],
) -> Principal:
    return await _principal(request, context, credentials, Role.ADMIN)


async def _pooler(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_pooler_scheme)],
) -> Principal:
    return await _principal(request, context, credentials, Role.POOLER)


async def _farmer(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_farmer_scheme)],
) -> Principal:
    return await _principal(request, context, credentials, Role.FARMER)


AdminDep = Annotated[Principal, Depends(_admin)]
PoolerDep = Annotated[Principal, Depends(_pooler)]
FarmerDep = Annotated[Principal, Depends(_farmer)]
