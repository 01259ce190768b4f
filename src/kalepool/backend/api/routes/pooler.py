"""Pooler endpoints (API key): its farmers, heartbeats, and the block cycle:
``plant-request``, ``work-complete``, ``harvest-request`` (the contract: ``docs/backend.md``).

A pooler acts only on its own farmers: a body naming another ``pooler_id`` is refused (403).
Per-farmer failures are entries of a 200 answer, each with who it is attributed to.
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
from kalepool.backend.services import harvesting, planting, poolers, working
from kalepool.backend.services.auth import Principal
from kalepool.wire import pooler as w

router = APIRouter(prefix="/pooler", tags=["pooler"])


def own_pooler(principal: Principal, pooler_id: uuid.UUID) -> uuid.UUID:
    """``pooler_id`` if it is the caller's own; 403 otherwise."""
    if principal.pooler_id != pooler_id:
        raise Forbidden("this API key belongs to another pooler", code="forbidden", field="pooler_id")
    return pooler_id


@router.get("/farmers", response_model=w.PoolerFarmerList, responses=responses(401, 403, 422, 429))
async def list_farmers(
    context: ContextDep,
    principal: PoolerDep,
    status: FarmerStatus | None = None,
    funding_state: FundingState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=s.MAX_OFFSET)] = 0,
) -> w.PoolerFarmerList:
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
    return w.PoolerFarmerList(
        pooler_id=principal.pooler_id,
        farmers=[views.pooler_farmer(f) for f in rows],
        count=len(rows),
        total=total,
    )


@router.get("/earnings", response_model=w.PoolerEarnings, responses=responses(401, 403, 429))
async def earnings(context: ContextDep, principal: PoolerDep) -> w.PoolerEarnings:
    """The caller's share of its farmers' rewards: owed, held in custody, paid."""
    assert principal.pooler_id is not None
    return views.pooler_earnings(await poolers.earnings(context.db, pooler_id=principal.pooler_id))


@router.post(
    "/heartbeat", response_model=w.HeartbeatResponse, responses=responses(401, 403, 409, 422, 429)
)
async def heartbeat(
    body: w.HeartbeatRequest, context: ContextDep, principal: PoolerDep
) -> w.HeartbeatResponse:
    """The pooler is alive; answers how many of its farmers can be planted. A pooler on
    another network than the backend's (``network``) is refused: 409 ``network_mismatch``."""
    pooler_id = own_pooler(principal, body.pooler_id)
    await poolers.check_network(context.chain, body.network.model_dump() if body.network else None)
    payload = body.model_dump(mode="json", exclude={"pooler_id"}, exclude_none=True)
    received_at, plantable = await poolers.heartbeat(context.db, pooler_id=pooler_id, payload=payload)
    return w.HeartbeatResponse(pooler_id=pooler_id, received_at=received_at, plantable_farmers=plantable)


_CHAIN = responses(400, 401, 403, 422, 429, 502, 503)
_PLANT = responses(400, 401, 403, 409, 422, 429, 502, 503)


@router.post("/plant-request", response_model=w.PlantResponse, responses=_PLANT)
async def plant_request(body: w.PlantRequest, context: ContextDep, principal: PoolerDep) -> w.PlantResponse:
    """Plant every active farmer of the pooler whose custodial account is ready, in parallel.

    A pooler on another network than the backend's (``network``) is refused first: 409
    ``network_mismatch``, naming the fact and both values.

    Idempotent: farmers an earlier request planted in this block are answered again
    (``already_planted``), never planted twice. ``block_index`` of each planted farmer is
    the block the plant really landed in, ``entropy`` that block's entropy.
    """
    pooler_id = own_pooler(principal, body.pooler_id)
    await poolers.check_network(
        context.chain, body.network.model_dump() if body.network else None, required=True
    )
    report = await planting.plant_request(
        context.ops, pooler_id=pooler_id, block_index=body.block_index, capacity=body.max_farmers_capacity
    )
    return views.plant_response(report)


@router.post("/work-complete", response_model=w.WorkCompleteResponse, responses=_CHAIN)
async def work_complete(
    body: w.WorkCompleteRequest, context: ContextDep, principal: PoolerDep
) -> w.WorkCompleteResponse:
    """Check each reported work (recomputed hash, zeros, the pail on chain), record it, and
    record the compensation the pooler owes for its planted farmers without a valid work."""
    pooler_id = own_pooler(principal, body.pooler_id)
    report = await working.work_complete(
        context.ops, pooler_id=pooler_id, block_index=body.block_index, claims=views.work_claims(body)
    )
    return views.work_response(report)


@router.post("/harvest-request", response_model=w.HarvestResponse, responses=_CHAIN)
async def harvest_request(
    body: w.HarvestRequest, context: ContextDep, principal: PoolerDep
) -> w.HarvestResponse:
    """Harvest the listed pails in parallel; rewards are read from the transactions and
    split in the journal. Idempotent: a pail harvested before is answered again
    (``already_harvested``), never harvested or journaled twice."""
    pooler_id = own_pooler(principal, body.pooler_id)
    items = [(b.block_index, farmer_id) for b in body.harvest_blocks for farmer_id in b.farmer_ids]
    report = await harvesting.harvest_request(context.ops, pooler_id=pooler_id, items=items)
    return views.harvest_response(report)
