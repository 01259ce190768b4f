"""The dry run: what one payout run would pay now, and why, without signing or writing.

:func:`plan_payouts` reads what the worker reads (the same functions: :func:`.farmer_plan`,
:func:`.compensation_plan`, :func:`.fee_plan`), in the worker's order (farmers, then each
pooler's compensations and fees, then the platform's fees), and follows the same plans,
checking each fee payment's account as the worker would (a plant or harvest in flight,
its KALE less what the run sends from it before, its XLM). It takes no lock, records no
intent and sends nothing. An owner with an open payout gets that payout's line and no
more: the worker finishes it first and plans anew only once none is open.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from kalepool.backend.chain import Chain
from kalepool.backend.db import payouts as q
from kalepool.backend.db import repositories
from kalepool.backend.db.models import Payout
from kalepool.backend.db.session import Database
from kalepool.backend.enums import AccountType, PayoutStatus
from kalepool.backend.services.payouts.compensations import compensation_plan
from kalepool.backend.services.payouts.farmers import farmer_plan
from kalepool.backend.services.payouts.fees import fee_owners, fee_plan
from kalepool.backend.services.payouts.plan import (
    Action,
    Payee,
    Plan,
    Planned,
    Sent,
    advance,
    kale,
    source_problem,
)
from kalepool.settings import BackendSettings

__all__ = ["PayoutPlan", "format_plan", "plan_payouts"]


@dataclass(frozen=True)
class PayoutPlan:
    """The steps of one payout run, in its order."""

    steps: tuple[Planned, ...]

    @property
    def paid(self) -> int:
        """KALE the run would send (payments, compensations included)."""
        return sum(s.amount for s in self.steps if s.action == Action.PAY)

    def as_json(self) -> dict[str, Any]:
        actions = Counter(s.action.value for s in self.steps)
        steps = [
            {
                "payee": s.payee.value,
                "action": s.action.value,
                "code": s.code,
                "reason": s.reason,
                "amount": s.amount,
                "farmer_id": _text(s.farmer_id),
                "pooler_id": _text(s.pooler_id),
                "source_farmer_id": _text(s.source_id),
                "destination": s.destination,
                "payout_id": s.payout_id,
            }
            for s in self.steps
        ]
        return {"steps": steps, "actions": dict(sorted(actions.items())), "paid": self.paid}


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


async def plan_payouts(db: Database, chain: Chain, settings: BackendSettings) -> PayoutPlan:
    """What a payout run would do now (reads only)."""
    steps: list[Planned] = []
    spent: Counter[uuid.UUID] = Counter()  # KALE the run sends from (−: into) each custodial account
    async with db.transaction() as session:
        ids = await q.farmers_to_pay(session, limit=settings.payout_batch)
        farmers = await repositories.farmers_by_ids(session, ids)
    for farmer_id in ids:
        async with db.transaction() as session:
            open_payout = await q.open_payout_of(session, farmer_id)
        if open_payout is not None:
            steps.append(_resume(open_payout))
            continue
        step = await farmer_plan(db, chain, farmers[farmer_id], settings)
        steps.append(step)
        if step.action == Action.PAY:
            spent[farmer_id] += step.amount
    for owner in await fee_owners(db, settings):
        async with db.transaction() as session:
            still_open = await q.fee_payouts_open(session, owner.pooler_id)
        if still_open:
            steps += [_resume(p) for p in still_open]
            continue
        settled: Counter[uuid.UUID] = Counter()  # the owner's fees the compensations take, per account
        if owner.pooler_id is not None:
            compensations = await compensation_plan(db, owner, settings)
            steps += await _follow(db, chain, compensations, settings, spent, settled)
        steps += await _follow(
            db, chain, await fee_plan(db, chain, owner, settings, less=settled), settings, spent
        )
    return PayoutPlan(tuple(steps))


async def _follow(
    db: Database,
    chain: Chain,
    plan: Plan,
    settings: BackendSettings,
    spent: Counter[uuid.UUID],
    settled: Counter[uuid.UUID] | None = None,
) -> list[Planned]:
    """The plan's steps as the worker would meet them: a payment whose account cannot send
    it now becomes a skip (and the plan is told nothing was sent)."""
    out: list[Planned] = []
    sent: Sent | None = None
    while (step := advance(plan, sent)) is not None:
        sent = None
        if step.action == Action.PAY and (source := step.source_id) is not None:
            problem = await _source_problem(db, chain, step, spent[source], settings)
            if problem is not None:
                code, why = problem
                step = replace(
                    step, action=Action.SKIP, code=code, reason=f"{why}; {kale(step.amount)} waits"
                )
                sent = Sent(0)
            else:
                spent[source] += step.amount
                if step.payee == Payee.COMPENSATION and step.farmer_id is not None:
                    spent[step.farmer_id] -= step.amount
                if settled is not None:
                    settled[source] += step.amount
        elif step.action == Action.SETTLE and settled is not None and step.farmer_id is not None:
            settled[step.farmer_id] += step.amount
        out.append(step)
    return out


async def _source_problem(
    db: Database, chain: Chain, step: Planned, spent: int, settings: BackendSettings
) -> tuple[str, str] | None:
    """Why the step's account could not send it now, as the worker checks it (its KALE
    less ``spent``, what the run sends from it before)."""
    assert step.source_id is not None
    async with db.transaction() as session:
        busy = await q.busy(session, step.source_id)
        farmer = await repositories.get_farmer(session, step.source_id)
    if busy or farmer is None:
        return source_problem(True, None, step.amount, settings)
    account = (await chain.accounts([farmer.public_key]))[farmer.public_key]
    if account.kale_balance is not None:
        account = replace(account, kale_balance=account.kale_balance - spent)
    return source_problem(False, account, step.amount, settings)


def _resume(payout: Payout) -> Planned:
    """The step of an open payout: finished before anything new for its payee."""
    if payout.account_type == AccountType.FARMER.value:
        payee = Payee.FARMER
    elif payout.recipient_farmer_id is not None:
        payee = Payee.COMPENSATION
    else:
        payee = Payee.POOLER if payout.account_type == AccountType.POOLER.value else Payee.PLATFORM
    if payout.status == PayoutStatus.SUBMITTED.value:
        code, why = "submitted", f"payout {payout.id} was signed (tx {payout.tx_hash}): followed by its hash"
    else:
        code, why = "pending", f"payout {payout.id} was recorded, not signed yet: sent first"
    return Planned(
        payee,
        Action.RESUME,
        code,
        why + "; nothing new until it is settled",
        payout.amount,
        payout.farmer_id or payout.recipient_farmer_id,
        payout.pooler_id,
        payout.source_farmer_id,
        payout.destination,
        payout.id,
    )


def format_plan(plan: PayoutPlan) -> str:
    """One line per step (who, what, how much, why, to where), then the totals."""
    lines = []
    for s in plan.steps:
        if s.payee == Payee.PLATFORM:
            who = "platform"
        elif s.payee == Payee.POOLER:
            who = f"pooler {s.pooler_id}"
        else:
            who = f"{s.payee.value} {s.farmer_id}"
        amount = kale(s.amount) if s.amount else ""
        to = f" (to {s.destination})" if s.destination and s.action in (Action.PAY, Action.RESUME) else ""
        lines.append(f"{who:<49} {s.action.value:<6} {amount:>22}  {s.code}: {s.reason}{to}")
    counts = Counter(s.action.value for s in plan.steps)
    summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "nothing to do"
    lines.append(f"would pay {kale(plan.paid)} ({summary}); nothing was signed or written")
    return "\n".join(lines)
