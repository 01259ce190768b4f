"""Pooler endpoints (API key): its farmers, heartbeats. Plant, work and harvest come next.

A pooler acts only on its own farmers: a body naming another ``pooler_id`` is refused (403).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from kalepool.backend.api import schemas as s
from kalepool.backend.api import views
from kalepool.backend.api.deps import ContextDep, PoolerDep
from kalepool.backend.api.errors import responses
from kalepool.backend.enums import FarmerStatus, FundingState
from kalepool.backend.errors import Forbidden
from kalepool.backend.services import poolers
from kalepool.backend.services.auth import Principal

router = APIRouter(prefix="/pooler", tags=["pooler"])


def own_pooler(principal: Principal, pooler_id: uuid.UUID) -> uuid.UUID:
    """``pooler_id`` if it is the caller's own; 403 otherwise."""
    if principal.pooler_id != pooler_id:
        raise Forbidden("this API key belongs to another pooler", code="forbidden", field="pooler_id")
    return pooler_id


@router.get("/farmers", response_model=s.PoolerFarmerList, responses=responses(401, 403, 422, 429))
async def list_farmers(
    context: ContextDep,
    principal: PoolerDep,
    status: FarmerStatus | None = None,
    funding_state: FundingState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> s.PoolerFarmerList:
    """The caller's farmers, oldest first (no secrets, ever)."""
    assert principal.pooler_id is not None
    rows, total = await poolers.pooler_farmers(
        context.db,
        pooler_id=principal.pooler_id,
        status=status,
        funding_state=funding_state,
        limit=limit,
        offset=offset,
    )
    return s.PoolerFarmerList(
        pooler_id=principal.pooler_id,
        farmers=[views.pooler_farmer(f) for f in rows],
        count=len(rows),
        total=total,
    )


@router.post("/heartbeat", response_model=s.HeartbeatResponse, responses=responses(401, 403, 422, 429))
async def heartbeat(
    body: s.HeartbeatRequest, context: ContextDep, principal: PoolerDep
) -> s.HeartbeatResponse:
    """The pooler is alive; answers how many of its farmers can be planted."""
    pooler_id = own_pooler(principal, body.pooler_id)
    payload = body.model_dump(mode="json", exclude={"pooler_id"}, exclude_none=True)
    received_at, plantable = await poolers.heartbeat(context.db, pooler_id=pooler_id, payload=payload)
    return s.HeartbeatResponse(pooler_id=pooler_id, received_at=received_at, plantable_farmers=plantable)
