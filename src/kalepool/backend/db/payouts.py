"""Queries of the payout worker: whom to pay, the locks it pays under, the ``payouts`` rows.

A payout row goes ``pending`` (the intent, committed before signing) → ``submitted`` (the
signed envelope and its hash, before sending) → ``confirmed`` or ``failed``. Fee payouts
belong to a pooler (``pooler_id``; a compensation also names ``recipient_farmer_id``) or
to the platform (``account_type = 'platform'``, ``pooler_id`` None here). A failure is
``(when, error)``, the error starting with its code. Functions take the caller's session
and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend.db.models import Farmer, Pail, Payout, Pooler
from kalepool.backend.enums import AccountType, FarmerStatus, FundingState, PailState, PayoutStatus

__all__ = [
    "BUSY",
    "OPEN",
    "add",
    "busy",
    "compensation_failures",
    "farmers_to_pay",
    "fee_payouts_open",
    "forget",
    "last_farmer_failure",
    "last_fee_failure",
    "lock_farmer",
    "mark_confirmed",
    "mark_departed",
    "mark_failed",
    "mark_submitted",
    "open_payout_of",
    "pail_states",
    "payout",
    "pooler_accounts",
    "try_lock",
]

#: Payout states still to be finished (sent, or followed by hash).
OPEN = (PayoutStatus.PENDING.value, PayoutStatus.SUBMITTED.value)
#: Pail states with a transaction of the account in flight.
BUSY = (PailState.PLANTING.value, PailState.HARVESTING.value)


# --- whom to pay, and the locks ---------------------------------------------------------------


async def farmers_to_pay(session: AsyncSession, *, limit: int) -> list[uuid.UUID]:
    """The farmers with an open payout first, then up to ``limit`` funded, not departed
    farmers, oldest first (each once)."""
    query = (
        select(Farmer.id)
        .where(
            Farmer.funding_state.in_([FundingState.FUNDED.value, FundingState.READY.value]),
            Farmer.status != FarmerStatus.DEPARTED.value,
        )
        .order_by(Farmer.created_at, Farmer.id)
        .limit(limit)
    )
    open_first = select(Payout.farmer_id).where(Payout.status.in_(OPEN), Payout.farmer_id.is_not(None))
    opened = list((await session.scalars(open_first)).all())
    ids = dict.fromkeys([*opened, *(await session.scalars(query)).all()])
    return [i for i in ids if i is not None]


async def pooler_accounts(session: AsyncSession) -> Sequence[tuple[uuid.UUID, str | None]]:
    """``(pooler id, its account or None)`` of every pooler, oldest first."""
    query = select(Pooler.id, Pooler.public_key).order_by(Pooler.created_at)
    return [(pid, key) for pid, key in (await session.execute(query)).all()]


async def lock_farmer(session: AsyncSession, farmer_id: uuid.UUID) -> Farmer | None:
    """The farmer's row, locked until the session's transaction ends (``FOR NO KEY UPDATE
    SKIP LOCKED``: the journal's foreign keys still pass); None when another holds it."""
    query = select(Farmer).where(Farmer.id == farmer_id).with_for_update(skip_locked=True, key_share=True)
    return (await session.scalars(query)).one_or_none()


async def try_lock(session: AsyncSession, namespace: str, key: str) -> bool:
    """A transaction-scoped advisory lock on (namespace, key), or False when another holds it."""
    locked = func.pg_try_advisory_xact_lock(func.hashtext(namespace), func.hashtext(key))
    return bool((await session.execute(select(locked))).scalar_one())


async def mark_departed(session: AsyncSession, farmer_id: uuid.UUID) -> None:
    await session.execute(
        update(Farmer)
        .where(Farmer.id == farmer_id)
        .values(status=FarmerStatus.DEPARTED.value, updated_at=func.now())
    )


# --- what the decision reads ------------------------------------------------------------------


async def pail_states(session: AsyncSession, farmer_id: uuid.UUID) -> frozenset[str]:
    """The states the farmer's pails are in."""
    query = select(Pail.state).where(Pail.farmer_id == farmer_id).distinct()
    return frozenset((await session.scalars(query)).all())


async def busy(session: AsyncSession, farmer_id: uuid.UUID) -> bool:
    """Whether a plant or harvest of the farmer's account is in flight."""
    query = select(Pail.id).where(Pail.farmer_id == farmer_id, Pail.state.in_(BUSY)).limit(1)
    return (await session.scalars(query)).first() is not None


async def _last_failure(session: AsyncSession, *where: Any) -> tuple[datetime, str | None] | None:
    query = (
        select(Payout.updated_at, Payout.error)
        .where(Payout.status == PayoutStatus.FAILED.value, *where)
        .order_by(Payout.updated_at.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else None


async def last_farmer_failure(
    session: AsyncSession, farmer_id: uuid.UUID
) -> tuple[datetime, str | None] | None:
    """When the farmer's newest failed payout failed, and its error."""
    return await _last_failure(session, Payout.farmer_id == farmer_id)


async def last_fee_failure(
    session: AsyncSession, pooler_id: uuid.UUID | None
) -> tuple[datetime, str | None] | None:
    """The newest failed fee payout of the pooler (None: the platform), compensations aside
    (they have their own backoff)."""
    return await _last_failure(session, _owned_by(pooler_id), Payout.recipient_farmer_id.is_(None))


async def compensation_failures(
    session: AsyncSession, pooler_id: uuid.UUID, recipients: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[datetime, str | None]]:
    """The newest failed compensation payment of the pooler to each of these farmers."""
    query = (
        select(Payout.recipient_farmer_id, Payout.updated_at, Payout.error)
        .where(
            Payout.pooler_id == pooler_id,
            Payout.recipient_farmer_id.in_(list(recipients)),
            Payout.status == PayoutStatus.FAILED.value,
        )
        .order_by(Payout.updated_at.desc())
    )
    newest: dict[uuid.UUID, tuple[datetime, str | None]] = {}
    for recipient, at, error in (await session.execute(query)).all():
        if recipient is not None:
            newest.setdefault(recipient, (at, error))
    return newest


# --- payouts rows -----------------------------------------------------------------------------


def _owned_by(pooler_id: uuid.UUID | None) -> Any:
    """A ``payouts`` row is the pooler's (None: the platform's)."""
    if pooler_id is not None:
        return Payout.pooler_id == pooler_id
    return Payout.account_type == AccountType.PLATFORM.value


async def open_payout_of(session: AsyncSession, farmer_id: uuid.UUID) -> Payout | None:
    """The farmer's oldest open payout of its own KALE."""
    query = select(Payout).where(Payout.farmer_id == farmer_id, Payout.status.in_(OPEN)).order_by(Payout.id)
    return (await session.scalars(query.limit(1))).one_or_none()


async def fee_payouts_open(session: AsyncSession, pooler_id: uuid.UUID | None) -> list[Payout]:
    """The open fee payouts (compensations included) of the pooler (None: the platform)."""
    query = select(Payout).where(_owned_by(pooler_id), Payout.status.in_(OPEN)).order_by(Payout.id)
    return list((await session.scalars(query)).all())


async def add(session: AsyncSession, payout: Payout) -> Payout:
    """Insert a payout row (its id assigned)."""
    session.add(payout)
    await session.flush()
    return payout


async def payout(session: AsyncSession, payout_id: int) -> Payout | None:
    return await session.get(Payout, payout_id)


async def mark_submitted(session: AsyncSession, payout_id: int, *, tx_hash: str, envelope_xdr: str) -> None:
    """The signed transaction of a pending payout, recorded before it is sent."""
    await session.execute(
        update(Payout)
        .where(Payout.id == payout_id, Payout.status == PayoutStatus.PENDING.value)
        .values(
            status=PayoutStatus.SUBMITTED.value,
            tx_hash=tx_hash,
            envelope_xdr=envelope_xdr,
            updated_at=func.now(),
        )
    )


async def mark_confirmed(session: AsyncSession, payout_id: int, *, tx_hash: str) -> None:
    await session.execute(
        update(Payout)
        .where(Payout.id == payout_id)
        .values(status=PayoutStatus.CONFIRMED.value, tx_hash=tx_hash, error=None, updated_at=func.now())
    )


async def mark_failed(session: AsyncSession, row: Payout, error: str) -> None:
    """``row`` failed now (by the database's clock, which the backoff compares with)."""
    row.status = PayoutStatus.FAILED.value
    row.error = error[:500]
    row.updated_at = (await session.execute(select(func.clock_timestamp()))).scalar_one()


async def forget(session: AsyncSession, row: Payout) -> None:
    """Delete a payout nothing was signed for (it is decided anew next run)."""
    await session.delete(row)
