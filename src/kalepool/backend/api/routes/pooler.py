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
    offset: Annotated[int, Query(ge=0, le=s.MAX_OFFSET)] = 0,
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


@router.get("/earnings", response_model=s.PoolerEarnings, responses=responses(401, 403, 429))
async def earnings(context: ContextDep, principal: PoolerDep) -> s.PoolerEarnings:
    """The caller's share of its farmers' rewards: owed, held in custody, paid."""
    assert principal.pooler_id is not None
    return views.pooler_earnings(await poolers.earnings(context.db, pooler_id=principal.pooler_id))


@router.post("/heartbeat", response_model=s.HeartbeatResponse, responses=responses(401, 403, 422, 429))
async def heartbeat(
    body: s.HeartbeatRequest, context: ContextDep, principal: PoolerDep
) -> s.HeartbeatResponse:
    """The pooler is alive; answers how many of its farmers can be planted."""
    pooler_id = own_pooler(principal, body.pooler_id)
    payload = body.model_dump(mode="json", exclude={"pooler_id"}, exclude_none=True)
    received_at, plantable = await poolers.heartbeat(context.db, pooler_id=pooler_id, payload=payload)
    return s.HeartbeatResponse(pooler_id=pooler_id, received_at=received_at, plantable_farmers=plantable)


_CHAIN = responses(400, 401, 403, 422, 429, 502, 503)


@router.post("/plant-request", response_model=s.PlantResponse, responses=_CHAIN)
async def plant_request(body: s.PlantRequest, context: ContextDep, principal: PoolerDep) -> s.PlantResponse:
    """Plant every active farmer of the pooler whose custodial account is ready, in parallel.

    Idempotent: farmers an earlier request planted in this block are answered again
    (``already_planted``), never planted twice. ``block_index`` of each planted farmer is
    the block the plant really landed in, ``entropy`` that block's entropy.
    """
    pooler_id = own_pooler(principal, body.pooler_id)
    report = await planting.plant_request(
        context.ops, pooler_id=pooler_id, block_index=body.block_index, capacity=body.max_farmers_capacity
    )
    return s.PlantResponse(
        planted_farmers=[
            s.PlantedFarmer(
                farmer_id=p.farmer_id,
                custodial_wallet=p.custodial_wallet,
                stake_amount=p.stake_amount,
                plant_tx_hash=p.plant_tx_hash,
                block_index=p.block_index,
                entropy=p.entropy.hex(),
                already_planted=p.already_planted,
            )
            for p in report.planted
        ],
        failed_plants=[
            s.FailedPlant(
                farmer_id=f.farmer_id, error=f.error, message=f.message, attributed_to=f.attributed_to
            )
            for f in report.failed
        ],
        summary=s.PlantSummary(
            requested_block_index=report.requested_block_index,
            farm_index=report.farm_index,
            eligible=report.eligible,
            planted=report.newly_planted,
            already_planted=report.already_planted,
            failed=len(report.failed),
            skipped_capacity=report.skipped_capacity,
            total_staked=report.total_staked,
            xlm_fees=report.xlm_fees,
            duration_ms=report.duration_ms,
        ),
    )


@router.post("/work-complete", response_model=s.WorkCompleteResponse, responses=_CHAIN)
async def work_complete(
    body: s.WorkCompleteRequest, context: ContextDep, principal: PoolerDep
) -> s.WorkCompleteResponse:
    """Check each reported work (recomputed hash, zeros, the pail on chain), record it, and
    record the compensation the pooler owes for its planted farmers without a valid work."""
    pooler_id = own_pooler(principal, body.pooler_id)
    claims = [
        working.WorkClaim(
            farmer_id=r.farmer_id,
            nonce=r.nonce,
            hash=bytes.fromhex(r.hash),
            zeros=r.zeros,
            gap=r.gap,
            tx_hash=r.tx_hash,
        )
        for r in body.work_results
    ]
    report = await working.work_complete(
        context.ops, pooler_id=pooler_id, block_index=body.block_index, claims=claims
    )
    return s.WorkCompleteResponse(
        block_index=report.block_index,
        work_recorded=report.work_recorded,
        rejected=[
            s.RejectedWork(farmer_id=r.farmer_id, reason=r.reason, message=r.message) for r in report.rejected
        ],
        compensation_amount=report.compensation_amount,
        compensations=[
            s.CompensationPublic(farmer_id=c.farmer_id, reason=c.reason, amount=c.amount)
            for c in report.compensations
        ],
        ready_for_harvest=[
            s.ReadyForHarvest(farmer_id=f, block_index=report.block_index) for f in report.ready_for_harvest
        ],
    )


@router.post("/harvest-request", response_model=s.HarvestResponse, responses=_CHAIN)
async def harvest_request(
    body: s.HarvestRequest, context: ContextDep, principal: PoolerDep
) -> s.HarvestResponse:
    """Harvest the listed pails in parallel; rewards are read from the transactions and
    split in the journal. Idempotent: a pail harvested before is answered again
    (``already_harvested``), never harvested or journaled twice."""
    pooler_id = own_pooler(principal, body.pooler_id)
    items = [(b.block_index, farmer_id) for b in body.harvest_blocks for farmer_id in b.farmer_ids]
    report = await harvesting.harvest_request(context.ops, pooler_id=pooler_id, items=items)
    return s.HarvestResponse(
        harvest_results=[
            s.HarvestResult(
                farmer_id=h.farmer_id,
                block_index=h.block_index,
                reward=h.reward,
                stake_returned=h.stake_returned,
                harvest_tx_hash=h.tx_hash,
                pooler_share=h.pooler_share,
                platform_fee=h.platform_fee,
                farmer_reward=h.farmer_reward,
                already_harvested=h.already_harvested,
            )
            for h in report.results
        ],
        failed_harvests=[
            s.FailedHarvest(
                farmer_id=f.farmer_id,
                block_index=f.block_index,
                error=f.error,
                message=f.message,
                attributed_to=f.attributed_to,
            )
            for f in report.failed
        ],
        total_rewards=report.total_rewards,
    )
