"""What the pool did, read back for people: per-block statistics (the whole pool or one
pooler), a farmer's statement per block, failures and who they are blamed on, the payout
queue, the pool at a glance. Read-only; one transaction per call.

Amounts are integer stroops. A block's figures come from the event tables (plantings,
works, harvests) and the journal (rewards and fees), never from the state rows alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from kalepool.backend.chain import Chain, ChainError, FarmView
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import (
    BalanceChange,
    Farmer,
    Harvest,
    Pail,
    Payout,
    Planting,
    Pooler,
    PoolerCompensation,
    Work,
)
from kalepool.backend.db.session import Database
from kalepool.backend.enums import (
    AccountType,
    Asset,
    EventStatus,
    FarmerStatus,
    FundingState,
    JournalKind,
    PayoutStatus,
    PoolerStatus,
    WorkStatus,
)

__all__ = [
    "BlockStats",
    "FailureCount",
    "FailureLine",
    "FarmNow",
    "FarmerBlock",
    "PayoutQueue",
    "PoolOverview",
    "PoolerCard",
    "failure_counts",
    "failures",
    "farm_now",
    "farmer_blocks",
    "payout_queue",
    "pool_overview",
    "recent_blocks",
]

_FEE_KINDS = (JournalKind.POOLER_FEE.value, JournalKind.PLATFORM_FEE.value)


# --- the pool at a glance ----------------------------------------------------------------------


@dataclass(frozen=True)
class PoolerCard:
    """A pooler as anyone may see it: name, fee, farmers, whether it is mining."""

    pooler_id: uuid.UUID
    name: str
    status: str
    reward_share_bps: int
    max_farmers: int | None
    farmers: int
    plantable_farmers: int
    last_heartbeat_at: datetime | None
    #: hashes per second from its last heartbeat (0 when offline)
    hash_rate: float
    online: bool

    @property
    def full(self) -> bool:
        return self.max_farmers is not None and self.farmers >= self.max_farmers

    @property
    def accepts_farmers(self) -> bool:
        return self.status == PoolerStatus.ACTIVE.value and not self.full


@dataclass(frozen=True)
class PoolOverview:
    poolers: list[PoolerCard]
    farmers_registered: int
    #: active, funded and with the KALE trustline: planted every block
    farmers_farming: int

    @property
    def poolers_online(self) -> int:
        return sum(1 for p in self.poolers if p.online)

    @property
    def hash_rate(self) -> float:
        return sum(p.hash_rate for p in self.poolers if p.online)


def _heartbeat_rate(payload: dict[str, Any] | None) -> float:
    value = (payload or {}).get("hash_rate")
    return float(value) if isinstance(value, int | float) and value >= 0 else 0.0


def pooler_card(pooler: Pooler, farmers: int, plantable: int, *, offline_after: float) -> PoolerCard:
    now = datetime.now(UTC)
    beat = pooler.last_heartbeat_at
    online = (
        pooler.status == PoolerStatus.ACTIVE.value
        and beat is not None
        and now - beat <= timedelta(seconds=offline_after)
    )
    return PoolerCard(
        pooler_id=pooler.id,
        name=pooler.name,
        status=pooler.status,
        reward_share_bps=pooler.reward_share_bps,
        max_farmers=pooler.max_farmers,
        farmers=farmers,
        plantable_farmers=plantable,
        last_heartbeat_at=beat,
        hash_rate=_heartbeat_rate(pooler.last_heartbeat) if online else 0.0,
        online=online,
    )


async def pool_overview(db: Database, *, offline_after: float) -> PoolOverview:
    """Every pooler (with its heartbeat's hash rate) and the farmer counts.

    ``offline_after``: seconds without a heartbeat after which a pooler counts as offline."""
    async with db.transaction() as session:
        rows = await repo.list_poolers(session)
        registered = int(
            (
                await session.execute(
                    select(func.count(Farmer.id)).where(Farmer.status != FarmerStatus.DEPARTED.value)
                )
            ).scalar_one()
        )
    cards = [pooler_card(p, t, r, offline_after=offline_after) for p, t, r in rows]
    return PoolOverview(cards, registered, sum(c.plantable_farmers for c in cards))


@dataclass(frozen=True)
class FarmNow:
    """The farm's current block and when the next one can open (ledger time)."""

    index: int
    close_time: int
    next_block_at: int | None
    paused: bool
    latest_ledger: int

    @property
    def seconds_to_next(self) -> int | None:
        if self.next_block_at is None:
            return None
        return max(0, self.next_block_at - self.close_time)


async def farm_now(chain: Chain) -> FarmNow | None:
    """The farm as the chain shows it now; ``None`` when the chain cannot be read."""
    try:
        farm: FarmView = await chain.farm()
    except ChainError:
        return None
    return FarmNow(farm.index, farm.close_time, farm.next_rollover_time, farm.paused, farm.latest_ledger)


# --- blocks ------------------------------------------------------------------------------------


@dataclass
class BlockStats:
    """One block for the whole pool (or one pooler): counts, zeros, stake, reward, fees."""

    index: int
    planted: int = 0
    plant_failed: int = 0
    worked: int = 0
    harvested: int = 0
    zeros_min: int | None = None
    zeros_max: int | None = None
    staked: int = 0
    reward: int = 0
    pooler_fees: int = 0
    platform_fees: int = 0

    @property
    def fees(self) -> int:
        return self.pooler_fees + self.platform_fees


async def recent_blocks(
    db: Database, *, limit: int = 20, pooler_id: uuid.UUID | None = None
) -> list[BlockStats]:
    """The ``limit`` most recent blocks the pool (or ``pooler_id``) had pails in, newest first.

    ``reward`` and the fees are the journal's (``reward``, ``pooler_fee``, ``platform_fee``
    lines of the farmers, fees as positive amounts)."""
    async with db.transaction() as session:
        query = select(Pail.block_index).distinct().order_by(Pail.block_index.desc()).limit(limit)
        if pooler_id is not None:
            query = query.where(Pail.pooler_id == pooler_id)
        indexes = list((await session.scalars(query)).all())
        if not indexes:
            return []
        blocks = {i: BlockStats(i) for i in indexes}

        def scope(model: Any) -> list[Any]:
            where = [model.block_index.in_(indexes)]
            if pooler_id is not None:
                where.append(model.pooler_id == pooler_id)
            return where

        plants = (
            select(
                Planting.block_index,
                func.count(Planting.id).filter(Planting.status == EventStatus.SUCCEEDED.value),
                func.coalesce(
                    func.sum(Planting.stake_amount).filter(Planting.status == EventStatus.SUCCEEDED.value), 0
                ),
                func.count(func.distinct(Planting.farmer_id)).filter(
                    Planting.status == EventStatus.FAILED.value
                ),
            )
            .where(*scope(Planting))
            .group_by(Planting.block_index)
        )
        for index, planted, staked, failed in (await session.execute(plants)).all():
            b = blocks[index]
            b.planted, b.staked, b.plant_failed = int(planted), int(staked), int(failed)
        works = (
            select(Work.block_index, func.count(Work.id), func.min(Work.zeros), func.max(Work.zeros))
            .where(*scope(Work), Work.status == WorkStatus.ACCEPTED.value)
            .group_by(Work.block_index)
        )
        for index, worked, low, high in (await session.execute(works)).all():
            b = blocks[index]
            b.worked, b.zeros_min, b.zeros_max = int(worked), low, high
        harvests = (
            select(Harvest.block_index, func.count(Harvest.id))
            .where(*scope(Harvest), Harvest.status == EventStatus.SUCCEEDED.value)
            .group_by(Harvest.block_index)
        )
        for index, harvested in (await session.execute(harvests)).all():
            blocks[index].harvested = int(harvested)
        journal = (
            select(BalanceChange.block_index, BalanceChange.kind, func.sum(BalanceChange.amount))
            .where(
                BalanceChange.account_type == AccountType.FARMER.value,
                BalanceChange.asset == Asset.KALE.value,
                BalanceChange.block_index.in_(indexes),
                BalanceChange.kind.in_([JournalKind.REWARD.value, *_FEE_KINDS]),
            )
            .group_by(BalanceChange.block_index, BalanceChange.kind)
        )
        if pooler_id is not None:
            journal = journal.join(
                Pail,
                (Pail.farmer_id == BalanceChange.farmer_id) & (Pail.block_index == BalanceChange.block_index),
            ).where(Pail.pooler_id == pooler_id)
        for block_index, kind, total in (await session.execute(journal)).all():
            b = blocks[int(block_index or 0)]
            if kind == JournalKind.REWARD.value:
                b.reward = int(total)
            elif kind == JournalKind.POOLER_FEE.value:
                b.pooler_fees = -int(total)
            else:
                b.platform_fees = -int(total)
    return [blocks[i] for i in indexes]


@dataclass(frozen=True)
class FarmerBlock:
    """One line of a farmer's statement: its pail in one block and what it earned there."""

    index: int
    state: str
    stake: int
    zeros: int | None
    gap: int | None
    reward: int
    #: positive amounts taken from the reward
    pooler_fee: int
    platform_fee: int
    #: what the pooler owes for a block it did not (validly) work
    compensation: int

    @property
    def net(self) -> int:
        return self.reward - self.pooler_fee - self.platform_fee + self.compensation


async def farmer_blocks(db: Database, *, farmer_id: uuid.UUID, limit: int = 20) -> list[FarmerBlock]:
    """The farmer's ``limit`` most recent pails, newest first, with their journal lines."""
    async with db.transaction() as session:
        pails = (
            await session.execute(
                select(Pail.block_index, Pail.state, Pail.stake_amount)
                .where(Pail.farmer_id == farmer_id)
                .order_by(Pail.block_index.desc())
                .limit(limit)
            )
        ).all()
        indexes = [p[0] for p in pails]
        if not indexes:
            return []
        stakes = {
            index: stake
            for index, stake in (
                await session.execute(
                    select(Planting.block_index, Planting.stake_amount).where(
                        Planting.farmer_id == farmer_id,
                        Planting.block_index.in_(indexes),
                        Planting.status == EventStatus.SUCCEEDED.value,
                    )
                )
            ).all()
        }
        works = {
            index: (zeros, gap)
            for index, zeros, gap in (
                await session.execute(
                    select(Work.block_index, Work.zeros, Work.gap).where(
                        Work.farmer_id == farmer_id,
                        Work.block_index.in_(indexes),
                        Work.status == WorkStatus.ACCEPTED.value,
                    )
                )
            ).all()
        }
        lines: dict[tuple[int, str], int] = {}
        for index, kind, total in (
            await session.execute(
                select(BalanceChange.block_index, BalanceChange.kind, func.sum(BalanceChange.amount))
                .where(
                    BalanceChange.account_type == AccountType.FARMER.value,
                    BalanceChange.farmer_id == farmer_id,
                    BalanceChange.asset == Asset.KALE.value,
                    BalanceChange.block_index.in_(indexes),
                )
                .group_by(BalanceChange.block_index, BalanceChange.kind)
            )
        ).all():
            lines[(int(index or 0), str(kind))] = int(total)
    out = []
    for index, state, pail_stake in pails:
        zeros, gap = works.get(index, (None, None))
        out.append(
            FarmerBlock(
                index=index,
                state=state,
                stake=int(stakes.get(index, pail_stake)),
                zeros=zeros,
                gap=gap,
                reward=lines.get((index, JournalKind.REWARD.value), 0),
                pooler_fee=-lines.get((index, JournalKind.POOLER_FEE.value), 0),
                platform_fee=-lines.get((index, JournalKind.PLATFORM_FEE.value), 0),
                compensation=lines.get((index, JournalKind.COMPENSATION.value), 0),
            )
        )
    return out


# --- failures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailureLine:
    """A failed plant or harvest, a rejected work, or a compensation owed."""

    at: datetime
    block_index: int
    action: str
    farmer_id: uuid.UUID
    code: str
    attributed_to: str


async def failures(
    db: Database, *, pooler_id: uuid.UUID, attributed_to: str = "pooler", limit: int = 20
) -> list[FailureLine]:
    """A pooler's most recent failures blamed on ``attributed_to``, newest first: failed
    plants and harvests, rejected works and compensations (the last two are always the
    pooler's)."""
    async with db.transaction() as session:
        found: list[FailureLine] = []
        for model, action in ((Planting, "plant"), (Harvest, "harvest")):
            rows = await session.execute(
                select(model.created_at, model.block_index, model.farmer_id, model.error_code)
                .where(
                    model.pooler_id == pooler_id,
                    model.status == EventStatus.FAILED.value,
                    model.attributed_to == attributed_to,
                )
                .order_by(model.created_at.desc())
                .limit(limit)
            )
            found += [
                FailureLine(at, b, action, f, code or "", attributed_to) for at, b, f, code in rows.all()
            ]
        if attributed_to == "pooler":
            works = await session.execute(
                select(Work.created_at, Work.block_index, Work.farmer_id, Work.reason)
                .where(Work.pooler_id == pooler_id, Work.status == WorkStatus.REJECTED.value)
                .order_by(Work.created_at.desc())
                .limit(limit)
            )
            found += [FailureLine(at, b, "work", f, r or "", "pooler") for at, b, f, r in works.all()]
            owed = await session.execute(
                select(
                    PoolerCompensation.created_at,
                    PoolerCompensation.block_index,
                    PoolerCompensation.farmer_id,
                    PoolerCompensation.reason,
                )
                .where(PoolerCompensation.pooler_id == pooler_id)
                .order_by(PoolerCompensation.created_at.desc())
                .limit(limit)
            )
            found += [FailureLine(at, b, "compensation", f, r, "pooler") for at, b, f, r in owed.all()]
    found.sort(key=lambda x: x.at, reverse=True)
    return found[:limit]


@dataclass(frozen=True)
class FailureCount:
    attributed_to: str
    action: str
    count: int


async def failure_counts(db: Database, *, hours: float = 24.0) -> list[FailureCount]:
    """Failed plants and harvests per attribution, and rejected works (the pooler's), over
    the last ``hours``."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    out: list[FailureCount] = []
    async with db.transaction() as session:
        for model, action in ((Planting, "plant"), (Harvest, "harvest")):
            rows = await session.execute(
                select(model.attributed_to, func.count(model.id))
                .where(model.status == EventStatus.FAILED.value, model.created_at >= since)
                .group_by(model.attributed_to)
            )
            out += [FailureCount(who or "unknown", action, int(n)) for who, n in rows.all()]
        rejected = (
            await session.execute(
                select(func.count(Work.id)).where(
                    Work.status == WorkStatus.REJECTED.value, Work.created_at >= since
                )
            )
        ).scalar_one()
        if rejected:
            out.append(FailureCount("pooler", "work", int(rejected)))
    out.sort(key=lambda c: (-c.count, c.attributed_to, c.action))
    return out


# --- payouts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutQueue:
    #: pending (intent recorded) and submitted (sent, being followed), oldest first
    open: Sequence[Payout] = field(default_factory=list)
    #: the latest failed ones, newest first
    failed: Sequence[Payout] = field(default_factory=list)


async def payout_queue(db: Database, *, limit: int = 50) -> PayoutQueue:
    async with db.transaction() as session:
        open_rows = (
            await session.scalars(
                select(Payout)
                .where(Payout.status.in_([PayoutStatus.PENDING.value, PayoutStatus.SUBMITTED.value]))
                .order_by(Payout.created_at, Payout.id)
                .limit(limit)
            )
        ).all()
        failed = (
            await session.scalars(
                select(Payout)
                .where(Payout.status == PayoutStatus.FAILED.value)
                .order_by(Payout.updated_at.desc(), Payout.id.desc())
                .limit(limit)
            )
        ).all()
    return PayoutQueue(open_rows, failed)


async def farmers_not_ready(db: Database, *, limit: int = 50) -> tuple[Sequence[Farmer], int]:
    """Active farmers whose account is not ready to plant (no XLM yet, or no trustline),
    oldest first, and how many there are."""
    where = (
        Farmer.status == FarmerStatus.ACTIVE.value,
        Farmer.funding_state != FundingState.READY.value,
    )
    async with db.transaction() as session:
        rows = (
            await session.scalars(select(Farmer).where(*where).order_by(Farmer.created_at).limit(limit))
        ).all()
        total = int((await session.execute(select(func.count(Farmer.id)).where(*where))).scalar_one())
    return rows, total
