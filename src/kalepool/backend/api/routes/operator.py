"""Operator endpoints (admin token): poolers and the per-block report."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from kalepool.backend.api import schemas as s
from kalepool.backend.api import views
from kalepool.backend.api.deps import AdminDep, ContextDep
from kalepool.backend.api.errors import responses
from kalepool.backend.services import poolers
from kalepool.backend.services.poolers import PoolerSummary

router = APIRouter(tags=["operator"])


@router.post(
    "/poolers",
    status_code=status.HTTP_201_CREATED,
    response_model=s.PoolerCreated,
    responses=responses(401, 403, 409, 422, 429),
)
async def create_pooler(body: s.PoolerCreate, context: ContextDep, _: AdminDep) -> s.PoolerCreated:
    """Register a pooler. The answer carries its API key, shown this once."""
    pooler, key = await poolers.create_pooler(
        context.db,
        name=body.name,
        public_key=body.public_key,
        reward_share_bps=body.reward_share_bps,
        max_farmers=body.max_farmers,
    )
    return s.PoolerCreated(pooler=views.pooler_public(PoolerSummary(pooler, 0, 0)), api_key=key.token)


@router.get("/poolers", response_model=s.PoolerList, responses=responses(401, 403, 429))
async def list_poolers(context: ContextDep, _: AdminDep) -> s.PoolerList:
    """Every pooler, with its farmer counts and last heartbeat."""
    summaries = await poolers.list_poolers(context.db)
    return s.PoolerList(poolers=[views.pooler_public(x) for x in summaries], count=len(summaries))


@router.get(
    "/blocks/{block_index}", response_model=s.BlockPublic, responses=responses(401, 403, 404, 422, 429)
)
async def get_block(
    block_index: Annotated[int, Path(ge=0, le=2**32 - 1)], context: ContextDep, _: AdminDep
) -> s.BlockPublic:
    """What the pool did in one block: per-pooler operations and event counts."""
    return views.block_public(await poolers.block_report(context.db, block_index=block_index))
