"""Farmers' payouts: each farmer's own KALE, from its custodial account to its payout wallet.

:func:`pay_farmers` is one run: for every farmer (open payouts first), under its row lock,
an open payout is finished, else :func:`farmer_plan` reads the figures and
:func:`~.plan.plan_farmer` decides; the step is carried out here.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.chain import Chain
from kalepool.backend.db import payouts as q
from kalepool.backend.db.models import Farmer
from kalepool.backend.db.pails import db_now
from kalepool.backend.db.session import Database
from kalepool.backend.enums import FarmerStatus
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps
from kalepool.backend.services.payouts.plan import (
    Action,
    FarmerFigures,
    Owed,
    Planned,
    owed_from,
    plan_farmer,
)
from kalepool.backend.services.payouts.sending import PayoutRun, drive, each, payout_row
from kalepool.settings import BackendSettings

__all__ = ["farmer_plan", "owed_to", "pay_farmers"]

log = get_logger(__name__)


async def owed_to(session: AsyncSession, farmer_id: uuid.UUID) -> Owed:
    """The farmer's payout figures from its KALE journal."""
    return owed_from((await journal.kale_by_kind(session, [farmer_id]))[farmer_id])


async def farmer_plan(db: Database, chain: Chain, farmer: Farmer, settings: BackendSettings) -> Planned:
    """The farmer's payout step, from the journal, its pails and its last failure, and its
    two accounts on chain when it has something to be paid."""
    leaving = farmer.status == FarmerStatus.LEAVING.value
    async with db.transaction() as session:
        figures = FarmerFigures(
            farmer_id=farmer.id,
            payout_wallet=farmer.payout_wallet,
            leaving=leaving,
            now=await db_now(session),
            last_failure=await q.last_farmer_failure(session, farmer.id),
            pail_states=await q.pail_states(session, farmer.id),
            owed=await owed_to(session, farmer.id),
            compensation_due=(
                (await journal.compensations_due(session, farmer.pooler_id)).get(farmer.id, 0)
                if leaving
                else 0
            ),
        )
    step = plan_farmer(figures, settings)
    if step is None:
        found = await chain.accounts([farmer.public_key, farmer.payout_wallet])
        figures = replace(figures, source=found[farmer.public_key], destination=found[farmer.payout_wallet])
        step = plan_farmer(figures, settings)
        assert step is not None
    return step


async def pay_farmers(ops: ChainOps, *, limit: int | None = None) -> PayoutRun:
    """One payout run over the funded, not departed farmers (open payouts first),
    ``backend.payout_concurrency`` at a time."""
    async with ops.db.transaction() as session:
        ids = await q.farmers_to_pay(session, limit=limit or ops.settings.payout_batch)
    # each farmer pays from its own account, under its own row lock: several at once
    return await each(
        ops, ids, _one_farmer, PayoutRun(), "farmer", concurrency=ops.settings.payout_concurrency
    )


async def _one_farmer(ops: ChainOps, farmer_id: uuid.UUID, run: PayoutRun) -> None:
    # the lock is held (in its own transaction) while this farmer's payout is decided and sent
    async with ops.db.transaction() as lock:
        farmer = await q.lock_farmer(lock, farmer_id)
        if farmer is None:
            run.skipped += 1
            return
        async with ops.db.transaction() as session:
            open_payout = await q.open_payout_of(session, farmer_id)
        if open_payout is not None:
            run.resumed += 1
            await drive(ops, farmer, open_payout, run)
            return
        step = await farmer_plan(ops.db, ops.chain, farmer, ops.settings)
        if step.action == Action.SKIP:
            run.skipped += 1
            if step.code == "low_xlm":
                log.warning("payout skipped: too little XLM for the fee", farmer_id=str(farmer.id))
        elif step.action == Action.DEPART:
            run.departing.append(farmer.id)
            await q.mark_departed(lock, farmer.id)
            run.departed += 1
            log.info("farmer departed: everything it owns was paid out", farmer_id=str(farmer.id))
        elif step.action == Action.FAIL:
            async with ops.db.transaction() as session:
                await q.add(session, payout_row(step))
            run.failed += 1
            log.warning(
                "payout failed (farmer)", farmer_id=str(farmer.id), error=step.error, attributed_to="farmer"
            )
        elif step.action == Action.PAY:
            async with ops.db.transaction() as session:
                payout = await q.add(session, payout_row(step))
            await drive(ops, farmer, payout, run)
