"""Fee owners' payouts: the poolers' fees to their accounts, the platform's to its wallet.

A pooler's or the platform's fees stay in the farmers' custodial accounts until sent.
:func:`pay_poolers` and :func:`pay_platform` run one owner at a time (a transaction-scoped
advisory lock): its open payouts are finished first and, while one stays open, nothing
new is sent (or its claim could be paid twice); a pooler's compensations
(:mod:`.compensations`) come before the pooler; then :func:`fee_plan` reads the figures,
:func:`~.plan.plan_fee_owner` plans the payments and they are sent one account at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace

from kalepool.backend import journal
from kalepool.backend.chain import Chain
from kalepool.backend.db import payouts as q
from kalepool.backend.db.pails import db_now
from kalepool.backend.db.session import Database
from kalepool.backend.enums import AccountType, Asset
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps
from kalepool.backend.services.payouts.compensations import settle_compensations
from kalepool.backend.services.payouts.plan import (
    Action,
    FeeFigures,
    FeeOwner,
    Plan,
    Sent,
    advance,
    nowhere,
    plan_fee_owner,
)
from kalepool.backend.services.payouts.sending import (
    PayoutRun,
    each,
    from_source,
    open_fee_payouts,
    payout_row,
)
from kalepool.settings import BackendSettings

__all__ = ["fee_owners", "fee_plan", "pay_platform", "pay_poolers"]

log = get_logger(__name__)


async def fee_owners(db: Database, settings: BackendSettings) -> list[FeeOwner]:
    """Every pooler (to its own account, if it has one), then the platform."""
    async with db.transaction() as session:
        found = await q.pooler_accounts(session)
    poolers = [FeeOwner(AccountType.POOLER, pid, key) for pid, key in found]
    return [*poolers, FeeOwner(AccountType.PLATFORM, None, settings.platform_wallet)]


async def pay_poolers(ops: ChainOps) -> PayoutRun:
    """One run over the poolers: pay the compensations each owes out of its fees, then send
    its claim (its shares, less compensations owed and what it was paid) to its account
    when it has one, from the custodial accounts holding its fees, largest first, one
    payment per account."""
    owners = {o.pooler_id: o for o in await fee_owners(ops.db, ops.settings) if o.pooler_id is not None}

    async def one(ops: ChainOps, pooler_id: uuid.UUID, run: PayoutRun) -> None:
        await _pay_fee_owner(ops, owners[pooler_id], run)

    return await each(ops, list(owners), one, PayoutRun(), "pooler")


async def pay_platform(ops: ChainOps) -> PayoutRun:
    """Send the platform's fees to ``backend.platform_wallet`` the same way (unset: they stay)."""
    run = PayoutRun()
    owner = FeeOwner(AccountType.PLATFORM, None, ops.settings.platform_wallet)
    try:
        run.considered += 1
        await _pay_fee_owner(ops, owner, run)
    except Exception:
        run.errors += 1
        log.exception("payout failed unexpectedly", account_type="platform")
    return run


async def fee_plan(
    db: Database,
    chain: Chain,
    owner: FeeOwner,
    settings: BackendSettings,
    *,
    less: Mapping[uuid.UUID, int] = {},
) -> Plan:
    """The owner's fee payments, from its claim, its fees held per account (``less`` what
    the run sends of them before: the dry run's compensations), its newest failure, and
    its wallet on chain when there is something to send."""
    if owner.destination is None:
        return nowhere(owner)
    async with db.transaction() as session:
        now = await db_now(session)
        if owner.pooler_id is not None:
            claim = (await journal.pooler_balances(session, owner.pooler_id))[Asset.KALE]
        else:
            claim = (await journal.platform_balances(session))[Asset.KALE]
        last_failure = await q.last_fee_failure(session, owner.pooler_id)
        if owner.pooler_id is not None:
            held = await journal.pooler_fees_in_custody(session, owner.pooler_id)
        else:
            held = await journal.platform_fees_in_custody(session)
    held = {fid: h - less.get(fid, 0) for fid, h in held.items()}
    figures = FeeFigures(owner, claim, held, last_failure, now)
    plan = plan_fee_owner(figures, settings)
    if plan is None:
        assert owner.destination is not None
        wallet = (await chain.accounts([owner.destination]))[owner.destination]
        plan = plan_fee_owner(replace(figures, wallet=wallet), settings)
        assert plan is not None
    return plan


async def _pay_fee_owner(ops: ChainOps, owner: FeeOwner, run: PayoutRun) -> None:
    """Finish the owner's open payouts; then, when none is left open, pay its claim.

    One worker per owner at a time: a transaction-scoped advisory lock (not the pooler's
    row, which heartbeats and registrations update meanwhile), taken without waiting.
    """
    async with ops.db.transaction() as lock:
        if not await q.try_lock(lock, "fee payouts", str(owner.pooler_id or "platform")):
            run.skipped += 1
            return
        for payout in await open_fee_payouts(ops, owner):  # earlier intents: finished first
            run.resumed += 1
            assert payout.source_farmer_id is not None
            await from_source(ops, payout.source_farmer_id, run, payout)
        if await open_fee_payouts(ops, owner):
            return  # in doubt, or its account busy: its fate first, or the claim could be paid twice
        if owner.pooler_id is not None and not await settle_compensations(ops, owner, run):
            return  # a compensation payment in doubt: nothing more for this pooler this run
        plan = await fee_plan(ops.db, ops.chain, owner, ops.settings)
        sent: Sent | None = None
        while (step := advance(plan, sent)) is not None:
            sent = None
            if step.action == Action.SKIP:
                run.skipped += 1
            elif step.action == Action.FAIL:
                async with ops.db.transaction() as session:
                    await q.add(session, payout_row(step))
                run.failed += 1
                log.warning("fee payout failed", owner=owner.name, error=step.error)
            elif step.action == Action.PAY:
                assert step.source_id is not None
                sent = Sent(await from_source(ops, step.source_id, run, step))
                if await open_fee_payouts(ops, owner):
                    return  # that one ended in doubt: nothing more until its fate is known
