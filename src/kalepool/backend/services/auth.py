"""Who is calling: resolve a bearer token to a :class:`Principal`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from kalepool.backend.db import repositories as repo
from kalepool.backend.db.session import Database
from kalepool.backend.enums import ApiKeyKind, PoolerStatus
from kalepool.backend.errors import Forbidden, Unauthenticated
from kalepool.backend.security import hash_key, key_kind, same_secret

__all__ = ["Principal", "Role", "authenticate"]


class Role(StrEnum):
    ADMIN = "admin"
    POOLER = "pooler"
    FARMER = "farmer"


@dataclass(frozen=True)
class Principal:
    role: Role
    pooler_id: uuid.UUID | None = None
    farmer_id: uuid.UUID | None = None


_ROLE_OF_KIND = {ApiKeyKind.POOLER: Role.POOLER, ApiKeyKind.FARMER: Role.FARMER}
_NEEDS = {
    Role.ADMIN: "the operator's admin token",
    Role.POOLER: "a pooler API key",
    Role.FARMER: "the farmer's token",
}


async def authenticate(db: Database, token: str, *, role: Role, admin_token: str | None) -> Principal:
    """The principal behind ``token`` if it has ``role``; raises 401 or 403 otherwise.

    401: the token is unknown or revoked. 403: it is valid but of another role (a pooler
    key on an operator endpoint, a farmer token on a pooler endpoint), or its pooler is
    suspended.
    """
    is_admin = admin_token is not None and same_secret(token, admin_token)
    kind = key_kind(token)
    if role is Role.ADMIN:
        if is_admin:
            return Principal(Role.ADMIN)
        if kind is not None:
            raise Forbidden(f"this endpoint needs {_NEEDS[role]}")
        raise Unauthenticated("invalid token", code="invalid_token")
    if is_admin or (kind is not None and _ROLE_OF_KIND[kind] is not role):
        raise Forbidden(f"this endpoint needs {_NEEDS[role]}")
    if kind is None:
        raise Unauthenticated("invalid token", code="invalid_token")
    async with db.transaction() as session:
        key = await repo.find_api_key(session, key_hash=hash_key(token))
        if key is None:
            raise Unauthenticated("invalid or revoked token", code="invalid_token")
        if role is Role.POOLER:
            assert key.pooler_id is not None
            pooler = await repo.get_pooler(session, key.pooler_id)
            if pooler is None or pooler.status != PoolerStatus.ACTIVE.value:
                raise Forbidden("this pooler is suspended", code="pooler_suspended")
            return Principal(Role.POOLER, pooler_id=key.pooler_id)
        assert key.farmer_id is not None
        return Principal(Role.FARMER, farmer_id=key.farmer_id)
