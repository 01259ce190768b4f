"""Background workers: the auto-harvester and the reconciler.

Each has ``run_once()`` (what tests call: no sleeping, no timers) and runs in a loop under
:class:`WorkerRunner`, which ``kalepool backend serve`` starts in the API process when
``backend.workers`` is true (the default). Several processes may run them at once: every
pail is claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and a lease before anything is
signed, and every record is protected by a unique key, so two harvesters never harvest or
journal one pail twice.

* :class:`AutoHarvester`: settles lapsed plantings (resumes their recorded transactions),
  closes finished blocks (``planted`` pails become ``worked`` or ``unworked`` +
  compensation), then harvests the worked pails of closed blocks, the pail expiring first
  first; an expired one is recorded as lost (``pail_expired``, blamed on the backend).
* :class:`Reconciler`: :func:`kalepool.backend.services.reconcile.reconcile` over every
  funded farmer; its findings feed ``/health`` and the metrics.
* :class:`Payouts`: :func:`kalepool.backend.services.payouts.pay_farmers`: pays each
  farmer's earned KALE to its payout wallet (intent first, resumed by hash).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from kalepool.backend.chain import ChainError
from kalepool.backend.db import pails as q
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps, claimant_id, holding_claims
from kalepool.backend.services.harvesting import close_blocks, harvest_claimed
from kalepool.backend.services.payouts import PayoutRun, pay_farmers, pay_platform, pay_poolers
from kalepool.backend.services.planting import recover_plantings
from kalepool.backend.services.reconcile import ReconcileReport, ReconcileStatus, reconcile

__all__ = ["AutoHarvester", "HarvestRun", "PayoutRun", "Payouts", "Reconciler", "WorkerRunner"]

log = get_logger(__name__)


@dataclass
class HarvestRun:
    farm_index: int | None = None
    recovered: int = 0
    closed: int = 0
    claimed: int = 0
    harvested: int = 0
    reconciled: int = 0
    lost: int = 0
    failed: int = 0
    error: str | None = None


class AutoHarvester:
    """Harvests every worked pail of a closed block; safe to run in several processes."""

    name = "harvester"

    def __init__(self, ops: ChainOps, *, batch: int | None = None) -> None:
        self.ops = ops
        self.batch = batch or ops.settings.harvest_batch

    async def run_once(self) -> HarvestRun:
        run = HarvestRun()
        try:
            farm = await self.ops.chain.farm()
        except ChainError as exc:
            run.error = f"{exc.code}: {exc.message}"
            log.warning("auto-harvester: the farm cannot be read", error=run.error)
            return run
        run.farm_index = farm.index
        try:
            run.recovered = await recover_plantings(self.ops, limit=self.batch)
            run.closed = await close_blocks(self.ops, farm_index=farm.index, limit=self.batch)
        except ChainError as exc:
            run.error = f"{exc.code}: {exc.message}"
            log.warning("auto-harvester: closing blocks failed", error=run.error)
        claimant = claimant_id(self.name)
        async with self.ops.db.transaction() as session:
            claimed = await q.claim_for_harvest(
                session,
                claimant=claimant,
                seconds=self.ops.settings.claim_seconds,
                below_block=farm.index - self.ops.settings.auto_harvest_lag_blocks,
                limit=self.batch,
            )
        run.claimed = len(claimed)
        async with holding_claims(self.ops.db, claimant, self.ops.settings.claim_seconds):
            outcomes = await harvest_claimed(self.ops, claimed, latest_ledger=farm.latest_ledger)
        for outcome in outcomes:
            if outcome.harvested is not None:
                if outcome.harvested.already_harvested:
                    run.reconciled += 1
                else:
                    run.harvested += 1
            elif outcome.failure is not None and outcome.failure.code in ("pail_expired", "block_missing"):
                run.lost += 1
            else:
                run.failed += 1
        if run.claimed or run.closed or run.recovered:
            log.info("auto-harvester run", **{k: v for k, v in vars(run).items() if v})
        return run


class Reconciler:
    """Compares every custodial account with the journal; keeps the last findings."""

    name = "reconciler"

    def __init__(self, ops: ChainOps, status: ReconcileStatus | None = None) -> None:
        self.ops = ops
        self.status = status if status is not None else ReconcileStatus()

    async def run_once(self) -> ReconcileReport:
        report = await reconcile(self.ops)
        self.status.last = report
        return report


class Payouts:
    """Pays farmers' earned KALE to their payout wallets, then poolers' fees to their
    accounts and the platform's to ``backend.platform_wallet``; safe to run in several
    processes."""

    name = "payouts"

    def __init__(self, ops: ChainOps, *, batch: int | None = None) -> None:
        self.ops = ops
        self.batch = batch or ops.settings.payout_batch

    async def run_once(self) -> PayoutRun:
        """Farmers first, then the poolers' fees (``run.poolers``), then the platform's."""
        run = await pay_farmers(self.ops, limit=self.batch)
        run.poolers = await pay_poolers(self.ops)
        run.platform = await pay_platform(self.ops)
        return run


Worker = AutoHarvester | Reconciler | Payouts


class WorkerRunner:
    """Runs the workers' ``run_once`` in loops until stopped (the API process's lifespan)."""

    def __init__(self, ops: ChainOps, status: ReconcileStatus) -> None:
        settings = ops.settings
        self.ops = ops
        self.loops: list[tuple[Worker, float]] = [
            (AutoHarvester(ops), settings.harvest_interval),
            (Reconciler(ops, status), settings.reconcile_interval),
            (Payouts(ops), settings.payout_interval),
        ]
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for worker, interval in self.loops:
            self.tasks.append(
                asyncio.create_task(self._loop(worker, interval), name=f"kalepool-{worker.name}")
            )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    async def _loop(self, worker: Worker, interval: float) -> None:
        while True:
            try:
                await worker.run_once()
                self.ops.metrics.worker_runs.labels(worker=worker.name, outcome="ok").inc()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.ops.metrics.worker_runs.labels(worker=worker.name, outcome="error").inc()
                log.exception("worker run failed", worker=worker.name)
            await asyncio.sleep(interval)
