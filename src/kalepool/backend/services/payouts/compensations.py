"""Compensations: what a pooler owes the farmers whose pails it left unworked, paid out of
its fees still in custody, before the pooler itself is paid.

:func:`compensation_plan` reads the figures and :func:`~.plan.plan_compensations` plans
the two passes; :func:`settle_compensations` carries them out: a settlement in place is
two journal lines under the farmer's row lock (re-checked there), a payment is a fee
payout of the pooler to the farmer's custodial account (``recipient_farmer_id``).
"""

from __future__ import annotations

import uuid

from kalepool.backend import journal
from kalepool.backend.accounting import pooler_fees_held
from kalepool.backend.db import payouts as q
from kalepool.backend.db import repositories
from kalepool.backend.db.pails import db_now
from kalepool.backend.db.session import Database
from kalepool.backend.enums import JournalKind
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps
from kalepool.backend.services.payouts.plan import (
    Action,
    CompensationFigures,
    FeeOwner,
    Plan,
    Sent,
    advance,
    backoff,
    plan_compensations,
)
from kalepool.backend.services.payouts.sending import PayoutRun, from_source, open_fee_payouts
from kalepool.settings import BackendSettings

__all__ = ["compensation_plan", "settle_compensations"]

log = get_logger(__name__)


async def compensation_plan(db: Database, owner: FeeOwner, settings: BackendSettings) -> Plan:
    """The pooler's compensation steps, from what is due per farmer, its fees held per
    account, and each recipient's newest failed compensation."""
    assert owner.pooler_id is not None
    async with db.transaction() as session:
        due = await journal.compensations_due(session, owner.pooler_id)
        held = await journal.pooler_fees_in_custody(session, owner.pooler_id) if due else {}
        recipients = await repositories.farmers_by_ids(session, due)
        now = await db_now(session)
        failures = await q.compensation_failures(session, owner.pooler_id, due)
    accounts = {fid: farmer.public_key for fid, farmer in recipients.items()}
    return plan_compensations(CompensationFigures(owner, due, held, accounts, failures, now), settings)


async def settle_compensations(ops: ChainOps, owner: FeeOwner, run: PayoutRun) -> bool:
    """Pay the compensations the pooler owes (for pails that ended unworked) out of its fees
    still in custody, before the pooler itself is paid. A recipient whose payment fails on
    chain waits the backoff. False when a payment is left open (in doubt or skipped)."""
    plan = await compensation_plan(ops.db, owner, ops.settings)
    sent: Sent | None = None
    while (step := advance(plan, sent)) is not None:
        sent = None
        assert step.farmer_id is not None
        if step.action == Action.SETTLE:
            settled = await _settle_in_place(ops, owner, step.farmer_id, step.amount)
            if settled:
                run.amount += step.amount
            sent = Sent(step.amount if settled else 0)
        elif step.action == Action.PAY:
            assert step.source_id is not None
            amount = await from_source(ops, step.source_id, run, step)
            if await open_fee_payouts(ops, owner):
                return False
            sent = Sent(amount, backing_off=amount == 0 and await _failed_lately(ops, owner, step.farmer_id))
    return True


async def _failed_lately(ops: ChainOps, owner: FeeOwner, recipient_id: uuid.UUID) -> bool:
    assert owner.pooler_id is not None
    async with ops.db.transaction() as session:
        last = (await q.compensation_failures(session, owner.pooler_id, [recipient_id])).get(recipient_id)
        now = await db_now(session)
    return backoff(last, now, ops.settings) is not None


async def _settle_in_place(ops: ChainOps, owner: FeeOwner, farmer_id: uuid.UUID, amount: int) -> bool:
    """The pooler's fees in the compensated farmer's own account become its own: no
    transaction, two journal lines under the farmer's row lock (re-checked there)."""
    assert owner.pooler_id is not None
    async with ops.db.transaction() as session:
        if await q.lock_farmer(session, farmer_id) is None:
            return False
        due = (await journal.compensations_due(session, owner.pooler_id)).get(farmer_id, 0)
        sums = (await journal.kale_by_kind(session, [farmer_id]))[farmer_id]
        amount = min(amount, due, pooler_fees_held(sums))
        if amount <= 0:
            return False
        reference = f"compensation:{uuid.uuid4().hex}"
        usage = f"compensation from {owner.name}, out of its fees held in this account"
        await journal.record(
            session,
            [
                journal.Entry.farmer(
                    farmer_id, JournalKind.POOLER_FEE_SETTLED, amount, usage, reference=reference
                ),
                journal.Entry.farmer(
                    farmer_id, JournalKind.COMPENSATION_SETTLED, -amount, usage, reference=reference
                ),
            ],
        )
    log.info(
        "compensation settled in place",
        pooler_id=str(owner.pooler_id),
        farmer_id=str(farmer_id),
        amount=amount,
    )
    return True
