"""Operator and pooler use cases: create and list poolers, heartbeats, a pooler's farmers,
its earnings, the per-block report."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kalepool.backend import journal
from kalepool.backend.chain import Chain, ChainError
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import BlockOperation, Farmer, Payout, Pooler
from kalepool.backend.db.session import Database
from kalepool.backend.enums import ApiKeyKind, Asset, FarmerStatus, FundingState, JournalKind
from kalepool.backend.errors import Conflict, NotFound
from kalepool.backend.security import IssuedKey, issue_key
from kalepool.errors import NetworkMismatch

__all__ = [
    "BlockReport",
    "PoolerEarnings",
    "PoolerSummary",
    "block_report",
    "check_network",
    "create_pooler",
    "earnings",
    "heartbeat",
    "list_poolers",
    "pooler_farmers",
]


@dataclass(frozen=True)
class PoolerSummary:
    pooler: Pooler
    farmers: int
    plantable_farmers: int


async def create_pooler(
    db: Database,
    *,
    name: str,
    public_key: str | None = None,
    reward_share_bps: int = 0,
    max_farmers: int | None = None,
) -> tuple[Pooler, IssuedKey]:
    """A new pooler and its API key (the clear key exists only in the return value)."""
    key = issue_key(ApiKeyKind.POOLER)
    try:
        async with db.transaction() as session:
            pooler = await repo.add_pooler(
                session,
                name=name,
                public_key=public_key,
                reward_share_bps=reward_share_bps,
                max_farmers=max_farmers,
            )
            await repo.add_api_key(session, key=key, kind=ApiKeyKind.POOLER, pooler_id=pooler.id)
    except IntegrityError as exc:
        if "uq_poolers_name" in str(exc.orig):
            raise Conflict(f"a pooler named {name!r} exists", code="pooler_exists", field="name") from None
        raise
    return pooler, key


async def list_poolers(db: Database) -> list[PoolerSummary]:
    async with db.transaction() as session:
        return [PoolerSummary(p, t, r) for p, t, r in await repo.list_poolers(session)]


async def check_network(chain: Chain, theirs: dict[str, Any] | None, *, required: bool = False) -> None:
    """Refuse a pooler whose network facts differ from the backend's own: 409
    ``network_mismatch`` naming the fact and both values. ``required``: the chain must be
    read for the check (a plant-request); otherwise a chain that cannot be read skips it."""
    if theirs is None:
        return
    try:
        ours = await chain.network()
    except ChainError:
        if required:
            raise
        return
    try:
        ours.check(theirs, here="the backend", there="the pooler")
    except NetworkMismatch as exc:
        raise Conflict(str(exc), code="network_mismatch", field=f"network.{exc.fact}") from None


async def heartbeat(db: Database, *, pooler_id: uuid.UUID, payload: dict[str, Any]) -> tuple[datetime, int]:
    """Record that the pooler is alive; returns (server time, its plantable farmers)."""
    now = datetime.now(UTC)
    async with db.transaction() as session:
        await repo.record_heartbeat(session, pooler_id=pooler_id, at=now, payload=payload)
        plantable = await repo.plantable_farmers(session, pooler_id=pooler_id)
    return now, len(plantable)


async def pooler_farmers(
    db: Database,
    *,
    pooler_id: uuid.UUID,
    status: FarmerStatus | None,
    funding_state: FundingState | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Farmer], int]:
    async with db.transaction() as session:
        return await repo.list_farmers(
            session,
            pooler_id=pooler_id,
            status=status,
            funding_state=funding_state,
            limit=limit,
            offset=offset,
        )


@dataclass(frozen=True)
class BlockReport:
    block_index: int
    operations: Sequence[BlockOperation]
    counts: dict[str, dict[str, int]]


async def block_report(db: Database, *, block_index: int) -> BlockReport:
    async with db.transaction() as session:
        operations = await repo.block_operations(session, block_index=block_index)
        counts = await repo.block_event_counts(session, block_index=block_index)
    if not operations and not any(counts.values()):
        raise NotFound(f"nothing is recorded for block {block_index}", code="block_not_found")
    return BlockReport(block_index, operations, counts)


@dataclass(frozen=True)
class PoolerEarnings:
    """A pooler's KALE: its journal per kind, what it is owed now, what still sits in its
    farmers' custodial accounts, and its latest payouts (newest first)."""

    pooler: Pooler
    kale_by_kind: dict[JournalKind, int]
    claim: int
    held_in_custody: int
    payouts: list[Payout]


async def earnings(db: Database, *, pooler_id: uuid.UUID, limit: int = 20) -> PoolerEarnings:
    async with db.transaction() as session:
        pooler = await session.get(Pooler, pooler_id)
        if pooler is None:
            raise NotFound("no such pooler", code="pooler_not_found")
        balances = await journal.pooler_balances(session, pooler_id)
        held = sum((await journal.pooler_fees_in_custody(session, pooler_id)).values())
        payouts = (
            await session.scalars(
                select(Payout)
                .where(Payout.pooler_id == pooler_id)
                .order_by(Payout.created_at.desc(), Payout.id.desc())
                .limit(limit)
            )
        ).all()
    return PoolerEarnings(
        pooler=pooler,
        kale_by_kind=dict(balances.by_kind.get(Asset.KALE, {})),
        claim=balances[Asset.KALE],
        held_in_custody=held,
        payouts=list(payouts),
    )
