"""The reconciler: each custodial account's KALE on chain against the journal.

For every funded farmer it compares the account's on-chain KALE balance with the sum of
the journal's *custodial* kinds for that farmer (:data:`~kalepool.backend.accounting.CUSTODIAL_KINDS`:
deposits, stakes burned and returned, rewards, payouts, fees sent on, compensations
received). The other fee and compensation lines are claims between accounts and are left
out: the KALE they name sits in the custodial account until the payout worker moves it.

* **More on chain than journaled**: KALE arrived that the pool did not send: a farmer's
  deposit. It is journaled as a ``deposit`` (this is how the journal learns of deposits).
* **Less on chain than journaled**: KALE left the account without the pool knowing, or
  the journal is wrong. Nothing is written; the difference is reported: a log line, the
  ``kalepool_reconcile_mismatches`` / ``kalepool_reconcile_difference_stroops`` gauges,
  and ``/health`` answers ``degraded`` until a run finds no difference.

A balance is only compared when the farmer is *quiet*: no pail in ``planting`` or
``harvesting``, no payout from its account open, and none of them changed while the
balance was read (a snapshot of its pails and payouts is taken before and after, and again
under the farmer's row lock: a payout that ran in between journals before it lets go of
that lock; a compensation paid *into* the account is not serialized with it, and can at
worst be reported as a passing mismatch, never recorded as a deposit). A plant, harvest
or payment in flight would otherwise be counted half-done.
The deposit is written under a lock on the farmer's row with the journal sum recomputed
inside that transaction, so two reconcilers (two processes) cannot record the same
deposit twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.accounting import CUSTODIAL_KINDS
from kalepool.backend.chain import AccountInfo, ChainError
from kalepool.backend.db import pails as q
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import BalanceChange, Farmer, Pail, Payout
from kalepool.backend.enums import (
    AccountType,
    Asset,
    FarmerStatus,
    FundingState,
    JournalKind,
    PailState,
    PayoutStatus,
)
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps

__all__ = ["Mismatch", "ReconcileReport", "ReconcileStatus", "custodial_balance", "reconcile"]

log = get_logger(__name__)

_BUSY = (PailState.PLANTING.value, PailState.HARVESTING.value)
_OPEN_PAYOUTS = (PayoutStatus.PENDING.value, PayoutStatus.SUBMITTED.value)


@dataclass(frozen=True)
class Mismatch:
    farmer_id: uuid.UUID
    account: str
    onchain: int
    journal: int

    @property
    def difference(self) -> int:
        return self.onchain - self.journal


@dataclass
class ReconcileReport:
    checked: int = 0
    skipped: int = 0
    deposits: int = 0
    deposited: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    error: str | None = None
    finished_at: datetime | None = None


@dataclass
class ReconcileStatus:
    """The last run's findings, for ``/health`` (one per process)."""

    last: ReconcileReport | None = None

    @property
    def state(self) -> str:
        if self.last is None:
            return "not_run"
        if self.last.mismatches:
            return "mismatch"
        if self.last.error is not None:
            return "error"
        return "ok"


async def custodial_balance(session: AsyncSession, farmer_id: uuid.UUID) -> int:
    """The KALE the journal says the farmer's custodial account holds on chain."""
    query = select(func.coalesce(func.sum(BalanceChange.amount), 0)).where(
        BalanceChange.account_type == AccountType.FARMER.value,
        BalanceChange.farmer_id == farmer_id,
        BalanceChange.asset == Asset.KALE.value,
        BalanceChange.kind.in_([k.value for k in CUSTODIAL_KINDS]),
    )
    return int((await session.execute(query)).scalar_one())


async def _snapshots(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, tuple[object, ...]]:
    """Per farmer: (pails in flight, pails, last pail change, open payouts, last payout
    change), counting payouts to it, from its account and into it: equal before and after
    = quiet."""
    if not ids:
        return {}
    pails = (
        select(
            Pail.farmer_id,
            func.count(Pail.id).filter(Pail.state.in_(_BUSY)),
            func.count(Pail.id),
            func.max(Pail.updated_at),
        )
        .where(Pail.farmer_id.in_(ids))
        .group_by(Pail.farmer_id)
    )
    pail_part: dict[uuid.UUID, tuple[int, int, datetime | None]] = {fid: (0, 0, None) for fid in ids}
    for farmer_id, busy, count, last in (await session.execute(pails)).all():
        pail_part[farmer_id] = (int(busy), int(count), last)
    opened: dict[uuid.UUID, int] = dict.fromkeys(ids, 0)
    changed: dict[uuid.UUID, datetime | None] = dict.fromkeys(ids)
    for column in (Payout.farmer_id, Payout.source_farmer_id, Payout.recipient_farmer_id):
        payouts = (
            select(
                column,
                func.count(Payout.id).filter(Payout.status.in_(_OPEN_PAYOUTS)),
                func.max(Payout.updated_at),
            )
            .where(column.in_(ids))
            .group_by(column)
        )
        for account, count, last in (await session.execute(payouts)).all():
            if account is None:
                continue
            opened[account] += int(count)
            before = changed[account]
            changed[account] = last if before is None or (last is not None and last > before) else before
    return {fid: (*pail_part[fid], opened[fid], changed[fid]) for fid in ids}


def _quiet(snap: tuple[object, ...]) -> bool:
    return snap[0] == 0 and snap[3] == 0


async def reconcile(
    ops: ChainOps, *, farmer_ids: Sequence[uuid.UUID] | None = None, record_deposits: bool = True
) -> ReconcileReport:
    """Compare (and record deposits for) the funded farmers, or only ``farmer_ids``."""
    report = ReconcileReport()
    async with ops.db.transaction() as session:
        query = select(Farmer).where(
            Farmer.funding_state.in_([FundingState.FUNDED.value, FundingState.READY.value]),
            Farmer.status != FarmerStatus.DEPARTED.value,
        )
        if farmer_ids is not None:
            query = query.where(Farmer.id.in_(list(farmer_ids)))
        farmers = list((await session.scalars(query.order_by(Farmer.created_at, Farmer.id))).all())
        before = await _snapshots(session, [f.id for f in farmers])

    try:
        found = await ops.chain.accounts([f.public_key for f in farmers])
        accounts: list[AccountInfo | ChainError] = [found[f.public_key] for f in farmers]
    except ChainError as exc:
        accounts = [exc] * len(farmers)
    async with ops.db.transaction() as session:
        after = await _snapshots(session, [f.id for f in farmers])
        now = await q.db_now(session)

    for farmer, account in zip(farmers, accounts, strict=True):
        if isinstance(account, ChainError):
            report.skipped += 1
            report.error = f"{account.code}: {account.message}"
            continue
        snap = before[farmer.id]
        if not _quiet(snap) or snap != after[farmer.id]:
            report.skipped += 1
            continue
        onchain = account.kale_balance or 0
        async with ops.db.transaction() as session:
            await repo.get_farmer(session, farmer.id, for_update=True)  # one reconciler at a time
            if (await _snapshots(session, [farmer.id]))[farmer.id] != snap:
                # a plant, harvest or payout moved the account since its balance was read
                report.skipped += 1
                continue
            journaled = await custodial_balance(session, farmer.id)
            difference = onchain - journaled
            if difference > 0 and record_deposits:
                await journal.record(
                    session,
                    [
                        journal.Entry.farmer(
                            farmer.id,
                            JournalKind.DEPOSIT,
                            difference,
                            "KALE received by the custodial account",
                            reference=f"reconcile:{now.isoformat()}",
                        )
                    ],
                )
                report.deposits += 1
                report.deposited += difference
                log.info("deposit recorded", farmer_id=str(farmer.id), amount=difference)
            elif difference != 0:
                report.mismatches.append(Mismatch(farmer.id, farmer.public_key, onchain, journaled))
                log.warning(
                    "custodial balance differs from the journal",
                    farmer_id=str(farmer.id),
                    account=farmer.public_key,
                    onchain=onchain,
                    journal=journaled,
                )
        report.checked += 1
    report.finished_at = now
    if farmer_ids is None:  # a full run: the gauges describe the whole pool
        ops.metrics.reconcile_mismatches.set(len(report.mismatches))
        ops.metrics.reconcile_difference.set(sum(abs(m.difference) for m in report.mismatches))
    if report.deposits:
        ops.metrics.deposits.inc(report.deposits)
    return report
