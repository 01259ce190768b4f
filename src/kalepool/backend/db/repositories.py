"""Queries, one function each. They take the caller's session and never commit.

Keyword-only arguments everywhere past the session, so a call reads like a sentence and
two UUIDs cannot be swapped by position.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend.custody import SealedSecret
from kalepool.backend.db.models import (
    ApiKey,
    BlockOperation,
    Farmer,
    Harvest,
    Planting,
    Pooler,
    Work,
)
from kalepool.backend.enums import ApiKeyKind, FarmerStatus, FundingState
from kalepool.backend.security import IssuedKey

__all__ = [
    "add_api_key",
    "add_farmer",
    "add_pooler",
    "block_event_counts",
    "block_operations",
    "count_farmers",
    "farmers_by_ids",
    "farmers_sealed_under_other_keys",
    "find_api_key",
    "get_farmer",
    "get_pooler",
    "list_farmers",
    "list_poolers",
    "plantable_farmers",
    "recent_harvests",
    "recent_plantings",
    "recent_works",
    "record_heartbeat",
]


# --- poolers ----------------------------------------------------------------------------------


async def add_pooler(
    session: AsyncSession,
    *,
    name: str,
    public_key: str | None,
    reward_share_bps: int,
    max_farmers: int | None,
) -> Pooler:
    pooler = Pooler(
        name=name, public_key=public_key, reward_share_bps=reward_share_bps, max_farmers=max_farmers
    )
    session.add(pooler)
    await session.flush()
    await session.refresh(pooler)
    return pooler


async def get_pooler(
    session: AsyncSession, pooler_id: uuid.UUID, *, for_update: bool = False
) -> Pooler | None:
    query = select(Pooler).where(Pooler.id == pooler_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def list_poolers(session: AsyncSession) -> Sequence[tuple[Pooler, int, int]]:
    """Every pooler with its farmer count (not departed) and its plantable count."""
    total = func.count(Farmer.id).filter(Farmer.status != FarmerStatus.DEPARTED.value)
    plantable = func.count(Farmer.id).filter(
        Farmer.status == FarmerStatus.ACTIVE.value, Farmer.funding_state == FundingState.READY.value
    )
    query = (
        select(Pooler, total, plantable)
        .outerjoin(Farmer, Farmer.pooler_id == Pooler.id)
        .group_by(Pooler.id)
        .order_by(Pooler.created_at, Pooler.name)
    )
    return [(p, int(t), int(r)) for p, t, r in (await session.execute(query)).all()]


async def record_heartbeat(
    session: AsyncSession, *, pooler_id: uuid.UUID, at: datetime, payload: dict[str, Any]
) -> None:
    await session.execute(
        update(Pooler).where(Pooler.id == pooler_id).values(last_heartbeat_at=at, last_heartbeat=payload)
    )


# --- credentials ------------------------------------------------------------------------------


async def add_api_key(
    session: AsyncSession,
    *,
    key: IssuedKey,
    kind: ApiKeyKind,
    pooler_id: uuid.UUID | None = None,
    farmer_id: uuid.UUID | None = None,
) -> ApiKey:
    row = ApiKey(
        kind=kind.value, pooler_id=pooler_id, farmer_id=farmer_id, key_hash=key.key_hash, prefix=key.prefix
    )
    session.add(row)
    await session.flush()
    return row


async def find_api_key(session: AsyncSession, *, key_hash: bytes) -> ApiKey | None:
    """The live (not revoked) key with this hash."""
    query = select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    return (await session.scalars(query)).one_or_none()


# --- farmers ----------------------------------------------------------------------------------


async def add_farmer(
    session: AsyncSession,
    *,
    pooler_id: uuid.UUID,
    public_key: str,
    sealed: SealedSecret,
    payout_wallet: str,
    stake_bps: int,
) -> Farmer:
    farmer = Farmer(
        pooler_id=pooler_id,
        public_key=public_key,
        secret_key_id=sealed.key_id,
        secret_nonce=sealed.nonce,
        secret_ciphertext=sealed.ciphertext,
        payout_wallet=payout_wallet,
        stake_bps=stake_bps,
    )
    session.add(farmer)
    await session.flush()
    await session.refresh(farmer)
    return farmer


async def get_farmer(
    session: AsyncSession, farmer_id: uuid.UUID, *, for_update: bool = False
) -> Farmer | None:
    query = select(Farmer).where(Farmer.id == farmer_id)
    if for_update:
        query = query.with_for_update()
    return (await session.scalars(query)).one_or_none()


async def farmers_by_ids(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Farmer]:
    """The farmers with these ids that exist, in one query (callers bound the list)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = (await session.scalars(select(Farmer).where(Farmer.id.in_(wanted)))).all()
    return {f.id: f for f in rows}


async def count_farmers(session: AsyncSession, *, pooler_id: uuid.UUID) -> int:
    """Farmers of a pooler that still occupy a place (not departed)."""
    query = select(func.count(Farmer.id)).where(
        Farmer.pooler_id == pooler_id, Farmer.status != FarmerStatus.DEPARTED.value
    )
    return int((await session.execute(query)).scalar_one())


async def list_farmers(
    session: AsyncSession,
    *,
    pooler_id: uuid.UUID,
    status: FarmerStatus | None = None,
    funding_state: FundingState | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[Sequence[Farmer], int]:
    """One page of a pooler's farmers (oldest first) and the total that match."""
    conditions: list[Any] = [Farmer.pooler_id == pooler_id]
    if status is not None:
        conditions.append(Farmer.status == status.value)
    if funding_state is not None:
        conditions.append(Farmer.funding_state == funding_state.value)
    page = (
        select(Farmer).where(*conditions).order_by(Farmer.created_at, Farmer.id).limit(limit).offset(offset)
    )
    total = select(func.count(Farmer.id)).where(*conditions)
    return (await session.scalars(page)).all(), int((await session.execute(total)).scalar_one())


async def plantable_farmers(
    session: AsyncSession, *, pooler_id: uuid.UUID, limit: int | None = None
) -> Sequence[Farmer]:
    """A pooler's active farmers whose account is funded and has the KALE trustline."""
    query = (
        select(Farmer)
        .where(
            Farmer.pooler_id == pooler_id,
            Farmer.status == FarmerStatus.ACTIVE.value,
            Farmer.funding_state == FundingState.READY.value,
        )
        .order_by(Farmer.created_at, Farmer.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return (await session.scalars(query)).all()


async def farmers_sealed_under_other_keys(
    session: AsyncSession, *, active_key_id: str, limit: int
) -> Sequence[Farmer]:
    """Farmers whose secret another key sealed, locked for re-sealing (skipping locked ones)."""
    query = (
        select(Farmer)
        .where(Farmer.secret_key_id != active_key_id)
        .order_by(Farmer.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await session.scalars(query)).all()


# --- events -----------------------------------------------------------------------------------


async def recent_plantings(session: AsyncSession, *, farmer_id: uuid.UUID, limit: int) -> Sequence[Planting]:
    query = (
        select(Planting)
        .where(Planting.farmer_id == farmer_id)
        .order_by(Planting.created_at.desc(), Planting.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def recent_works(session: AsyncSession, *, farmer_id: uuid.UUID, limit: int) -> Sequence[Work]:
    query = (
        select(Work)
        .where(Work.farmer_id == farmer_id)
        .order_by(Work.created_at.desc(), Work.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def recent_harvests(session: AsyncSession, *, farmer_id: uuid.UUID, limit: int) -> Sequence[Harvest]:
    query = (
        select(Harvest)
        .where(Harvest.farmer_id == farmer_id)
        .order_by(Harvest.created_at.desc(), Harvest.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def block_operations(session: AsyncSession, *, block_index: int) -> Sequence[BlockOperation]:
    query = (
        select(BlockOperation).where(BlockOperation.block_index == block_index).order_by(BlockOperation.id)
    )
    return (await session.scalars(query)).all()


async def block_event_counts(session: AsyncSession, *, block_index: int) -> dict[str, dict[str, int]]:
    """``{"plantings": {status: n}, "works": {...}, "harvests": {...}}`` for one block."""
    counts: dict[str, dict[str, int]] = {}
    for name, model in (("plantings", Planting), ("works", Work), ("harvests", Harvest)):
        query = (
            select(model.status, func.count(model.id))
            .where(model.block_index == block_index)
            .group_by(model.status)
        )
        counts[name] = {status: int(n) for status, n in (await session.execute(query)).all()}
    return counts
