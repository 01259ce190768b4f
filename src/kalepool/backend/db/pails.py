"""Queries on the chain-facing state: pails (the work queue), plantings, harvests, block totals.

Claims: a request or worker takes pails with ``SELECT ... FOR UPDATE SKIP LOCKED`` and
marks them ``claimed_by`` / ``claimed_until`` in the same short transaction; the chain call
happens after the commit, outside any transaction. Another claimant skips rows that are
locked (being claimed right now) or whose claim has not lapsed. A live holder renews its
claims while it works (:func:`renew_claims`, every third of ``backend.claim_seconds``), so
a crashed holder's claims lapse within ``backend.claim_seconds`` and the pails are taken
again, their recorded intent (the signed envelope) resumed by hash rather than signed anew.

Functions take the caller's session and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend.db.models import BlockOperation, Harvest, Pail, Planting, PoolerCompensation, Work
from kalepool.backend.enums import EventStatus, PailState, WorkStatus

__all__ = [
    "PLANTED_STATES",
    "accepted_works",
    "bump_block_operation",
    "claim_for_harvest",
    "claim_for_planting",
    "claimable",
    "compensations",
    "db_now",
    "delete_pail",
    "insert_planting_pails",
    "lock_pooler_block",
    "pails_by_ids",
    "pails_for_plant_request",
    "pails_in_block",
    "pails_of",
    "rejected_works",
    "release",
    "set_pail",
    "successful_harvests",
    "successful_plantings",
]

#: States of a pail whose plant succeeded.
PLANTED_STATES = frozenset(
    {
        PailState.PLANTED,
        PailState.WORKED,
        PailState.UNWORKED,
        PailState.HARVESTING,
        PailState.HARVESTED,
        PailState.LOST,
    }
)


async def db_now(session: AsyncSession) -> datetime:
    """The database's clock (claims are compared with it, never with this machine's)."""
    return (await session.execute(select(func.clock_timestamp()))).scalar_one()  # type: ignore[no-any-return]


def claimable() -> Any:
    return or_(Pail.claimed_until.is_(None), Pail.claimed_until < func.clock_timestamp())


# --- plant-request ------------------------------------------------------------------------


async def pails_for_plant_request(
    session: AsyncSession, *, pooler_id: uuid.UUID, requested: int, landing: int
) -> Sequence[Pail]:
    """The pooler's pails an earlier request for ``requested`` made, or in that block or
    the one a plant would land in now."""
    query = select(Pail).where(
        Pail.pooler_id == pooler_id,
        or_(Pail.requested_block_index == requested, Pail.block_index.in_({requested, landing})),
    )
    return (await session.scalars(query)).all()


async def pails_in_block(session: AsyncSession, *, pooler_id: uuid.UUID, block_index: int) -> Sequence[Pail]:
    query = select(Pail).where(Pail.pooler_id == pooler_id, Pail.block_index == block_index).order_by(Pail.id)
    return (await session.scalars(query)).all()


async def insert_planting_pails(
    session: AsyncSession,
    *,
    pooler_id: uuid.UUID,
    farmer_ids: Iterable[uuid.UUID],
    block_index: int,
    requested: int,
) -> None:
    rows = [
        {
            "farmer_id": farmer_id,
            "pooler_id": pooler_id,
            "block_index": block_index,
            "requested_block_index": requested,
            "state": PailState.PLANTING.value,
        }
        for farmer_id in farmer_ids
    ]
    if rows:
        await session.execute(
            insert(Pail).on_conflict_do_nothing(index_elements=["farmer_id", "block_index"]), rows
        )


async def claim_for_planting(
    session: AsyncSession,
    *,
    pooler_id: uuid.UUID,
    farmer_ids: Sequence[uuid.UUID],
    requested: int,
    landing: int,
    claimant: str,
    seconds: float,
) -> Sequence[Pail]:
    """Claim the plantable pails of these farmers for this request (SKIP LOCKED)."""
    if not farmer_ids:
        return []
    query = (
        select(Pail)
        .where(
            Pail.pooler_id == pooler_id,
            Pail.farmer_id.in_(farmer_ids),
            or_(Pail.requested_block_index == requested, Pail.block_index == landing),
            or_(
                Pail.state == PailState.PLANT_FAILED.value,
                and_(Pail.state == PailState.PLANTING.value, claimable()),
            ),
        )
        .order_by(Pail.id)
        .with_for_update(skip_locked=True)
    )
    pails = (await session.scalars(query)).all()
    if pails:
        await session.execute(
            update(Pail)
            .where(Pail.id.in_([p.id for p in pails]))
            .values(
                state=PailState.PLANTING.value,
                requested_block_index=requested,
                claimed_by=claimant,
                claimed_until=func.clock_timestamp() + timedelta(seconds=seconds),
                updated_at=func.clock_timestamp(),
            )
        )
        pails = await _reloaded(session, [p.id for p in pails])
    return pails


# --- harvests -----------------------------------------------------------------------------


async def claim_for_harvest(
    session: AsyncSession,
    *,
    claimant: str,
    seconds: float,
    below_block: int,
    limit: int,
    pail_ids: Sequence[int] | None = None,
) -> Sequence[Pail]:
    """Claim worked pails of closed blocks (and lapsed harvest claims), most urgent first:
    the earliest ``live_until_ledger`` (unknown last), then the oldest block."""
    conditions: list[Any] = [
        Pail.block_index < below_block,
        or_(
            and_(Pail.state == PailState.WORKED.value, claimable()),
            and_(Pail.state == PailState.HARVESTING.value, claimable()),
        ),
    ]
    if pail_ids is not None:
        conditions.append(Pail.id.in_(pail_ids))
    query = (
        select(Pail)
        .where(*conditions)
        .order_by(Pail.live_until_ledger.asc().nulls_last(), Pail.block_index, Pail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    pails = (await session.scalars(query)).all()
    if pails:
        await session.execute(
            update(Pail)
            .where(Pail.id.in_([p.id for p in pails]))
            .values(
                state=PailState.HARVESTING.value,
                claimed_by=claimant,
                claimed_until=func.clock_timestamp() + timedelta(seconds=seconds),
                updated_at=func.clock_timestamp(),
            )
        )
        pails = await _reloaded(session, [p.id for p in pails])
    return pails


# --- generic ------------------------------------------------------------------------------


async def _reloaded(session: AsyncSession, ids: list[int]) -> Sequence[Pail]:
    """The rows as they are now (one query; the identity map's copies are overwritten)."""
    query = select(Pail).where(Pail.id.in_(ids)).order_by(Pail.id).execution_options(populate_existing=True)
    return (await session.scalars(query)).all()


async def pails_by_ids(session: AsyncSession, ids: Iterable[int]) -> Sequence[Pail]:
    ids = list(ids)
    if not ids:
        return []
    return (await session.scalars(select(Pail).where(Pail.id.in_(ids)).order_by(Pail.id))).all()


async def pails_of(
    session: AsyncSession, pairs: Iterable[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], Pail]:
    pairs = list(pairs)
    if not pairs:
        return {}
    farmers = {f for f, _ in pairs}
    blocks = {b for _, b in pairs}
    query = select(Pail).where(Pail.farmer_id.in_(farmers), Pail.block_index.in_(blocks))
    wanted = set(pairs)
    return {
        (p.farmer_id, p.block_index): p
        for p in (await session.scalars(query)).all()
        if (p.farmer_id, p.block_index) in wanted
    }


async def set_pail(session: AsyncSession, pail_id: int, **values: Any) -> None:
    """Update one pail (``updated_at`` too)."""
    await session.execute(
        update(Pail).where(Pail.id == pail_id).values(updated_at=func.clock_timestamp(), **values)
    )


async def release(session: AsyncSession, pail_id: int, **values: Any) -> None:
    """Drop this pail's claim (and set ``values``)."""
    await set_pail(session, pail_id, claimed_by=None, claimed_until=None, **values)


class ClaimLost(Exception):
    """The claim on a pail lapsed and another request or worker took it: this one must
    not send anything for it (raised from the intent hook, before sending)."""


async def record_intent(session: AsyncSession, pail: Pail, **values: Any) -> None:
    """Write a signed transaction (hash and envelope) on ``pail`` while its claimant
    (``pail.claimed_by``, as claimed) still holds it; :class:`ClaimLost` otherwise."""
    result = await session.execute(
        update(Pail)
        .where(Pail.id == pail.id, Pail.claimed_by == pail.claimed_by)
        .values(updated_at=func.clock_timestamp(), **values)
    )
    if not getattr(result, "rowcount", 0):
        raise ClaimLost(f"pail {pail.id}: the claim of {pail.claimed_by} was taken over")


async def renew_claims(session: AsyncSession, claimant: str, seconds: float) -> int:
    """Extend every claim ``claimant`` still holds by ``seconds`` from now; how many."""
    result = await session.execute(
        update(Pail)
        .where(Pail.claimed_by == claimant, Pail.claimed_until.is_not(None))
        .values(claimed_until=func.clock_timestamp() + timedelta(seconds=seconds))
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_pail(session: AsyncSession, pail_id: int) -> None:
    await session.execute(delete(Pail).where(Pail.id == pail_id))


async def successful_plantings(
    session: AsyncSession, pairs: Iterable[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], Planting]:
    return await _succeeded(session, Planting, pairs)


async def successful_harvests(
    session: AsyncSession, pairs: Iterable[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], Harvest]:
    return await _succeeded(session, Harvest, pairs)


E = TypeVar("E", Planting, Harvest)


async def _succeeded(
    session: AsyncSession, model: type[E], pairs: Iterable[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], E]:
    """The succeeded event rows of these (farmer, block) pairs, keyed by the pair."""
    wanted = set(pairs)
    if not wanted:
        return {}
    query = select(model).where(
        model.status == EventStatus.SUCCEEDED.value,
        model.farmer_id.in_({f for f, _ in wanted}),
        model.block_index.in_({b for _, b in wanted}),
    )
    rows = (await session.scalars(query)).all()
    return {(r.farmer_id, r.block_index): r for r in rows if (r.farmer_id, r.block_index) in wanted}


async def accepted_works(
    session: AsyncSession, *, block_index: int, farmer_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    ids = list(farmer_ids)
    if not ids:
        return set()
    query = select(Work.farmer_id).where(
        Work.block_index == block_index, Work.status == WorkStatus.ACCEPTED.value, Work.farmer_id.in_(ids)
    )
    return set((await session.scalars(query)).all())


async def rejected_works(
    session: AsyncSession, *, block_index: int, farmer_ids: Iterable[uuid.UUID]
) -> set[tuple[uuid.UUID, str | None]]:
    """(farmer, reason) of the rejected works recorded in this block."""
    ids = list(farmer_ids)
    if not ids:
        return set()
    query = select(Work.farmer_id, Work.reason).where(
        Work.block_index == block_index, Work.status == WorkStatus.REJECTED.value, Work.farmer_id.in_(ids)
    )
    return {(row.farmer_id, row.reason) for row in (await session.execute(query)).all()}


async def lock_pooler_block(session: AsyncSession, *, pooler_id: uuid.UUID, block_index: int) -> None:
    """A transaction-scoped advisory lock on one pooler's block (its writers queue up)."""
    key = f"pooler-block:{pooler_id}:{block_index}"
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def compensations(
    session: AsyncSession, *, pooler_id: uuid.UUID, block_index: int
) -> Sequence[PoolerCompensation]:
    query = (
        select(PoolerCompensation)
        .where(PoolerCompensation.pooler_id == pooler_id, PoolerCompensation.block_index == block_index)
        .order_by(PoolerCompensation.id)
    )
    return (await session.scalars(query)).all()


_COUNTERS = (
    "farmers_planted",
    "farmers_failed",
    "works_accepted",
    "works_rejected",
    "harvests_succeeded",
    "harvests_failed",
    "total_staked",
    "total_rewards",
    "total_compensation",
    "xlm_fees",
)
_STAMPS = ("plant_requested_at", "plant_completed_at", "work_reported_at", "harvest_completed_at")


async def bump_block_operation(
    session: AsyncSession,
    *,
    block_index: int,
    pooler_id: uuid.UUID,
    entropy: bytes | None = None,
    stamps: Iterable[str] = (),
    **increments: int,
) -> None:
    """Add to one (block, pooler) row's counters (created on first use); ``stamps`` names
    the timing columns to set to now (``plant_requested_at`` keeps its first value)."""
    unknown = (set(increments) - set(_COUNTERS)) | (set(stamps) - set(_STAMPS))
    if unknown:
        raise ValueError(f"unknown block_operations columns: {sorted(unknown)}")
    now = func.clock_timestamp()
    values: dict[str, Any] = {"block_index": block_index, "pooler_id": pooler_id, "entropy": entropy}
    values.update({name: increments.get(name, 0) for name in _COUNTERS})
    values.update({name: now for name in stamps})
    statement = insert(BlockOperation).values(**values)
    excluded = statement.excluded
    assignments: dict[str, Any] = {
        name: getattr(BlockOperation, name) + getattr(excluded, name)
        for name in _COUNTERS
        if increments.get(name)
    }
    for name in stamps:
        column = getattr(BlockOperation, name)
        assignments[name] = func.coalesce(column, now) if name == "plant_requested_at" else now
    assignments["entropy"] = func.coalesce(BlockOperation.entropy, excluded.entropy)
    assignments["updated_at"] = now
    await session.execute(
        statement.on_conflict_do_update(index_elements=["block_index", "pooler_id"], set_=assignments)
    )
