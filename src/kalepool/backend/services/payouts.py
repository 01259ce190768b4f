"""Payouts: a farmer's earned KALE leaves the custodial account for the payout wallet.

The rule (see ``docs/backend.md``, "Payouts"), per farmer, from the KALE journal:

* ``earned`` = ``reward`` + ``pooler_fee`` + ``platform_fee`` (the fees are negative): the
  rewards the farmer keeps; ``paid`` = ``payout`` + ``payout_reversed`` (≤ 0);
  ``held`` = −(``pooler_fee`` + ``platform_fee``): KALE that sits in the custodial account
  but belongs to the pooler and the platform.
* An **active** farmer is owed ``earned + paid``: rewards only, never the principal it
  keeps for planting (deposits and stakes). A **leaving** farmer is owed its whole net
  KALE journal balance, once none of its pails is open any more.
* The amount is ``min(owed, on-chain KALE − held)``; it is paid only when it reaches
  ``backend.payout_min_amount`` (any positive amount for a leaving farmer). The stake of
  the next plant is a share of what is left, so it never needs more than that.
* A farmer with a plant or harvest in flight, with too little XLM for the fee, or with a
  failed payout younger than ``backend.payout_retry_seconds`` is skipped this run (a
  transient failure, such as a sequence number another process used, waits only
  ``backend.payout_transient_retry_seconds``).

Intent first: a ``payouts`` row (``pending``) is committed before anything is signed; the
gateway's ``on_signed`` hook records the envelope and hash (``submitted``) before sending;
a run finds ``submitted`` rows first and follows them by hash (:meth:`Chain.resume_payment`),
never signing again. The ``payout`` debit and the ``xlm_fee`` are journaled with the
transaction hash as reference, so they are written once whatever happens. A farmer's row is
locked (``FOR NO KEY UPDATE SKIP LOCKED``: the journal's foreign keys still pass) while
its payout is decided and sent, so two workers never pay one farmer at once. A payout
wallet without a KALE trustline is a failed payout (attributed to the farmer), recorded
without sending anything and without a journal line.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.accounting import held_fees, pooler_fees_held
from kalepool.backend.chain import ChainError, ChainTxInDoubt, ChainUnavailable, PaymentOutcome
from kalepool.backend.db import pails as q
from kalepool.backend.db.models import Farmer, Pail, Payout, Pooler
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
from kalepool.backend.services.common import ChainOps, failure_of
from kalepool.settings import BackendSettings

__all__ = ["FeeOwner", "Owed", "PayoutRun", "owed_to", "pay_farmers", "pay_platform", "pay_poolers"]

log = get_logger(__name__)

_OPEN = (PayoutStatus.PENDING.value, PayoutStatus.SUBMITTED.value)
_BUSY = (PailState.PLANTING.value, PailState.HARVESTING.value)
_UNSETTLED = (*_BUSY, PailState.PLANTED.value, PailState.WORKED.value)


@dataclass
class PayoutRun:
    considered: int = 0
    paid: int = 0
    amount: int = 0
    resumed: int = 0
    failed: int = 0
    skipped: int = 0
    in_doubt: int = 0
    errors: int = 0
    departed: int = 0  # leaving farmers paid everything and marked departed
    departing: list[uuid.UUID] = field(default_factory=list, repr=False)
    poolers: PayoutRun | None = None  # the same run's pooler payouts (Payouts.run_once)
    platform: PayoutRun | None = None  # and the platform's


@dataclass(frozen=True)
class Owed:
    """A farmer's payout figures from the journal (KALE stroops)."""

    earned: int
    paid: int
    held: int
    net: int

    def owed(self, leaving: bool) -> int:
        return self.net if leaving else self.earned + self.paid


async def owed_to(session: AsyncSession, farmer_id: uuid.UUID) -> Owed:
    sums = (await journal.kale_by_kind(session, [farmer_id]))[farmer_id]
    fees = sums.get(JournalKind.POOLER_FEE, 0) + sums.get(JournalKind.PLATFORM_FEE, 0)
    return Owed(
        earned=sums.get(JournalKind.REWARD, 0) + fees,
        paid=sums.get(JournalKind.PAYOUT, 0) + sums.get(JournalKind.PAYOUT_REVERSED, 0),
        held=held_fees(sums),
        net=sum(sums.values()),
    )


async def pay_farmers(ops: ChainOps, *, limit: int | None = None) -> PayoutRun:
    """One payout run over the funded, not departed farmers (open payouts first)."""
    run = PayoutRun()
    async with ops.db.transaction() as session:
        query = (
            select(Farmer.id)
            .where(
                Farmer.funding_state.in_([FundingState.FUNDED.value, FundingState.READY.value]),
                Farmer.status != FarmerStatus.DEPARTED.value,
            )
            .order_by(Farmer.created_at, Farmer.id)
            .limit(limit or ops.settings.payout_batch)
        )
        open_first = select(Payout.farmer_id).where(Payout.status.in_(_OPEN), Payout.farmer_id.is_not(None))
        opened = list((await session.scalars(open_first)).all())
        ids = list(dict.fromkeys([*opened, *(await session.scalars(query)).all()]))
    return await _each(ops, [i for i in ids if i is not None], _one_farmer, run, "farmer")


async def _each(
    ops: ChainOps,
    ids: list[uuid.UUID],
    one: Callable[[ChainOps, uuid.UUID, PayoutRun], Awaitable[None]],
    run: PayoutRun,
    who: str,
) -> PayoutRun:
    """``one`` for every id; an unexpected error is counted and logged, and the run goes on."""
    for account_id in ids:
        run.considered += 1
        try:
            await one(ops, account_id, run)
        except Exception:
            run.errors += 1
            log.exception("payout failed unexpectedly", account_type=who, account_id=str(account_id))
    if run.paid or run.failed or run.resumed or run.errors:
        figures = {k: v for k, v in vars(run).items() if v and k not in ("poolers", "platform", "departing")}
        log.info(f"{who} payout run", **figures)
    return run


async def _lock_farmer(lock: AsyncSession, farmer_id: uuid.UUID) -> Farmer | None:
    """The farmer's row, locked until ``lock`` ends (``FOR NO KEY UPDATE SKIP LOCKED``: the
    journal's foreign keys still pass); None when another payout holds it."""
    query = select(Farmer).where(Farmer.id == farmer_id).with_for_update(skip_locked=True, key_share=True)
    return (await lock.scalars(query)).one_or_none()


async def _one_farmer(ops: ChainOps, farmer_id: uuid.UUID, run: PayoutRun) -> None:
    # the lock is held (in its own transaction) while this farmer's payout is decided and sent
    async with ops.db.transaction() as lock:
        farmer = await _lock_farmer(lock, farmer_id)
        if farmer is None:
            run.skipped += 1
            return
        async with ops.db.transaction() as session:
            open_payout = (
                await session.scalars(
                    select(Payout)
                    .where(Payout.farmer_id == farmer_id, Payout.status.in_(_OPEN))
                    .order_by(Payout.id)
                    .limit(1)
                )
            ).one_or_none()
        if open_payout is not None:
            run.resumed += 1
            await _drive(ops, farmer, open_payout, run)
            return
        payout = await _decide(ops, farmer, run)
        if payout is not None:
            await _drive(ops, farmer, payout, run)
        elif farmer.id in run.departing:
            await lock.execute(
                update(Farmer)
                .where(Farmer.id == farmer.id)
                .values(status=FarmerStatus.DEPARTED.value, updated_at=func.now())
            )
            run.departed += 1
            log.info("farmer departed: everything it owns was paid out", farmer_id=str(farmer.id))


async def _decide(ops: ChainOps, farmer: Farmer, run: PayoutRun) -> Payout | None:
    """Record a payout intent (or a failed one) for the farmer, or ``None`` (skipped).

    A leaving farmer with nothing more to be paid from its account (its pails settled) is
    marked departed by the caller: ``run.departing`` names it."""
    settings = ops.settings
    leaving = farmer.status == FarmerStatus.LEAVING.value
    async with ops.db.transaction() as session:
        now = await q.db_now(session)
        last_failure = await _last_failure(session, Payout.farmer_id == farmer.id)
        states = set(
            (await session.scalars(select(Pail.state).where(Pail.farmer_id == farmer.id).distinct())).all()
        )
        figures = await owed_to(session, farmer.id)
    if _backing_off(last_failure, now, settings):
        run.skipped += 1
        return None
    if states & set(_UNSETTLED if leaving else _BUSY):
        run.skipped += 1
        return None
    owed = figures.owed(leaving)
    if owed < (1 if leaving else settings.payout_min_amount):
        if leaving:
            run.departing.append(farmer.id)  # nothing owed any more
        return None
    found = await ops.chain.accounts([farmer.public_key, farmer.payout_wallet])
    source, destination = found[farmer.public_key], found[farmer.payout_wallet]
    amount = min(owed, (source.kale_balance or 0) - figures.held)
    if amount < (1 if leaving else settings.payout_min_amount):
        if leaving:  # what it is still owed is not in its account
            async with ops.db.transaction() as session:
                waiting = farmer.id in await journal.compensations_due(session, farmer.pooler_id)
            if not waiting:  # (a compensation due is paid into its account first: it waits)
                run.departing.append(farmer.id)
                return None
        run.skipped += 1
        return None
    if source.spendable_xlm < settings.min_fee_xlm:
        run.skipped += 1
        log.warning("payout skipped: too little XLM for the fee", farmer_id=str(farmer.id))
        return None
    error = None
    if not destination.exists:
        error = "destination_missing: the payout wallet does not exist on chain"
    elif not destination.has_kale_trustline:
        error = "no_trustline: the payout wallet has no KALE trustline"
    async with ops.db.transaction() as session:
        payout = Payout(
            account_type=AccountType.FARMER.value,
            farmer_id=farmer.id,
            asset=Asset.KALE.value,
            amount=amount,
            destination=farmer.payout_wallet,
            status=PayoutStatus.FAILED.value if error else PayoutStatus.PENDING.value,
            error=error,
        )
        session.add(payout)
        await session.flush()
    if error is not None:
        run.failed += 1
        log.warning("payout failed (farmer)", farmer_id=str(farmer.id), error=error, attributed_to="farmer")
        return None
    return payout


# --- fees: the poolers' and the platform's, from the custodial accounts that hold them -----


@dataclass(frozen=True)
class FeeOwner:
    """Whose fees a fee payout sends: a pooler (to its own account) or the platform (to
    ``backend.platform_wallet``); ``destination`` None: nowhere to send them."""

    account_type: AccountType
    pooler_id: uuid.UUID | None
    destination: str | None

    @property
    def name(self) -> str:
        return f"pooler {self.pooler_id}" if self.pooler_id else "the platform"

    @property
    def sent_kinds(self) -> tuple[JournalKind, JournalKind]:
        if self.account_type == AccountType.POOLER:
            return JournalKind.POOLER_FEE_SENT, JournalKind.POOLER_FEE_SETTLED
        return JournalKind.PLATFORM_FEE_SENT, JournalKind.PLATFORM_FEE_SETTLED

    def owns(self) -> Any:
        """SQL: a ``payouts`` row is one of this owner's."""
        if self.pooler_id is not None:
            return Payout.pooler_id == self.pooler_id
        return Payout.account_type == AccountType.PLATFORM.value

    async def claim(self, session: AsyncSession) -> int:
        if self.pooler_id is not None:
            return (await journal.pooler_balances(session, self.pooler_id))[Asset.KALE]
        return (await journal.platform_balances(session))[Asset.KALE]

    async def held(self, session: AsyncSession) -> dict[uuid.UUID, int]:
        if self.pooler_id is not None:
            return await journal.pooler_fees_in_custody(session, self.pooler_id)
        return await journal.platform_fees_in_custody(session)


async def pay_poolers(ops: ChainOps) -> PayoutRun:
    """One run over the poolers: pay the compensations each owes out of its fees, then send
    its claim (its shares, less compensations owed and what it was paid) to its account
    when it has one, from the custodial accounts holding its fees, largest first, one
    payment per account."""
    run = PayoutRun()
    async with ops.db.transaction() as session:
        query = select(Pooler.id, Pooler.public_key).order_by(Pooler.created_at)
        found = (await session.execute(query)).all()
    owners = {pid: FeeOwner(AccountType.POOLER, pid, key) for pid, key in found}

    async def one(ops: ChainOps, pooler_id: uuid.UUID, run: PayoutRun) -> None:
        await _pay_fee_owner(ops, owners[pooler_id], run)

    return await _each(ops, list(owners), one, run, "pooler")


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


async def _pay_fee_owner(ops: ChainOps, owner: FeeOwner, run: PayoutRun) -> None:
    """Finish the owner's open payouts; then, when none is left open, pay its claim.

    One worker per owner at a time: a transaction-scoped advisory lock (not the pooler's
    row, which heartbeats and registrations update meanwhile), taken without waiting.
    """
    settings = ops.settings
    async with ops.db.transaction() as lock:
        if not await _try_lock(lock, "fee payouts", str(owner.pooler_id or "platform")):
            run.skipped += 1
            return
        for payout in await _open_payouts(ops, owner):  # earlier intents: finished first
            run.resumed += 1
            assert payout.source_farmer_id is not None
            await _from_source(ops, payout.source_farmer_id, run, _same(payout))
        if await _open_payouts(ops, owner):
            return  # in doubt, or its account busy: its fate first, or the claim could be paid twice
        if owner.pooler_id is not None and not await _settle_compensations(ops, owner, run):
            return  # a compensation payment in doubt: nothing more for this pooler this run
        if owner.destination is None:
            return
        async with ops.db.transaction() as session:
            now = await q.db_now(session)
            claim = await owner.claim(session)
            last_failure = await _last_failure(
                session, owner.owns(), Payout.recipient_farmer_id.is_(None)
            )  # compensations have their own backoff
            held = await owner.held(session)
        if claim < settings.payout_min_amount:
            return
        if _backing_off(last_failure, now, settings):
            run.skipped += 1
            return
        smallest = settings.fee_payout_min_source  # dust waits: one transaction per account
        sources = sorted(
            ((h, fid) for fid, h in held.items() if h >= smallest), key=lambda t: (-t[0], str(t[1]))
        )[: settings.payout_batch]
        if not sources:
            return
        wallet = (await ops.chain.accounts([owner.destination]))[owner.destination]
        error = None
        if not wallet.exists:
            error = f"destination_missing: the account of {owner.name} does not exist on chain"
        elif not wallet.has_kale_trustline:
            error = f"no_trustline: the account of {owner.name} has no KALE trustline"
        if error is not None:
            async with ops.db.transaction() as session:
                session.add(_fee_payout(owner, sources[0][1], min(claim, sources[0][0]), error=error))
            run.failed += 1
            log.warning("fee payout failed", owner=owner.name, error=error)
            return
        left = claim
        for amount_held, farmer_id in sources:
            if left <= 0:
                break
            amount = min(amount_held, left)

            def decide(farmer: Farmer, amount: int = amount) -> Payout:
                return _fee_payout(owner, farmer.id, amount)

            left -= await _from_source(ops, farmer_id, run, decide, check_balance=amount)
            if await _open_payouts(ops, owner):
                return  # that one ended in doubt: nothing more until its fate is known


async def _settle_compensations(ops: ChainOps, owner: FeeOwner, run: PayoutRun) -> bool:
    """Pay the compensations the pooler owes (for pails that ended unworked) out of its fees
    still in custody, before the pooler itself is paid. First, for every farmer due one,
    the pooler's fees in its own account become its own (journal only); then what is still
    due is sent from the other accounts holding the pooler's fees (after the first pass no
    farmer still due holds any). A recipient whose payment failed lately waits for the
    backoff. False when a payment is left open (in doubt or skipped)."""
    assert owner.pooler_id is not None
    settings = ops.settings
    async with ops.db.transaction() as session:
        due = await journal.compensations_due(session, owner.pooler_id)
        held = await journal.pooler_fees_in_custody(session, owner.pooler_id) if due else {}
        recipients = {
            f.id: f for f in (await session.scalars(select(Farmer).where(Farmer.id.in_(due)))).all()
        }
        now = await q.db_now(session)
        failed_at: dict[uuid.UUID, tuple[datetime, str | None]] = {}
        for recipient, at, error in (
            await session.execute(
                select(Payout.recipient_farmer_id, Payout.updated_at, Payout.error)
                .where(
                    Payout.pooler_id == owner.pooler_id,
                    Payout.recipient_farmer_id.in_(due),
                    Payout.status == PayoutStatus.FAILED.value,
                )
                .order_by(Payout.updated_at.desc())
            )
        ).all():
            if recipient is not None:
                failed_at.setdefault(recipient, (at, error))  # the newest failure of each
    order = sorted(due, key=str)
    for farmer_id in order:  # pass 1: in place, no transaction
        own = min(due[farmer_id], held.get(farmer_id, 0))
        if own > 0 and await _settle_in_place(ops, owner, farmer_id, own):
            held[farmer_id] -= own
            due[farmer_id] -= own
            run.amount += own
    for farmer_id in order:  # pass 2: payments from the other accounts
        amount = due[farmer_id]
        if amount <= 0 or _backing_off(failed_at.get(farmer_id), now, settings):
            continue
        sources = sorted(
            (
                (h, fid)
                for fid, h in held.items()
                if due.get(fid, 0) <= 0 and h >= min(settings.fee_payout_min_source, amount)
            ),
            key=lambda t: (-t[0], str(t[1])),
        )
        for amount_held, source_id in sources:
            if amount <= 0:
                break
            part = min(amount_held, amount)

            def decide(source: Farmer, part: int = part, to: Farmer = recipients[farmer_id]) -> Payout:
                return _fee_payout(owner, source.id, part, recipient=to)

            sent = await _from_source(ops, source_id, run, decide, check_balance=part)
            held[source_id] -= sent
            amount -= sent
            if await _open_payouts(ops, owner):
                return False
            if sent == 0 and await _failed_lately(ops, owner, farmer_id):
                break  # it failed on chain: the backoff, not the next source
    return True


async def _failed_lately(ops: ChainOps, owner: FeeOwner, recipient_id: uuid.UUID) -> bool:
    async with ops.db.transaction() as session:
        last = await _last_failure(
            session, Payout.pooler_id == owner.pooler_id, Payout.recipient_farmer_id == recipient_id
        )
        now = await q.db_now(session)
    return _backing_off(last, now, ops.settings)


#: Failures that say nothing about the payout or its wallet (another process used the
#: account, the network stalled, a lost race): tried again after
#: ``backend.payout_transient_retry_seconds``, not ``payout_retry_seconds``.
TRANSIENT_CODES = frozenset(
    {
        "bad_sequence",
        "account_busy",
        "rpc_timeout",
        "network_error",
        "chain_unavailable",
        "tx_throttled",
        "tx_expired",
        "race_lost",
    }
)


async def _last_failure(session: AsyncSession, *where: Any) -> tuple[datetime, str | None] | None:
    """When the newest failed payout matching ``where`` failed, and its error."""
    query = (
        select(Payout.updated_at, Payout.error)
        .where(Payout.status == PayoutStatus.FAILED.value, *where)
        .order_by(Payout.updated_at.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else None


def _backing_off(last: tuple[datetime, str | None] | None, now: datetime, settings: BackendSettings) -> bool:
    """Whether a failure at ``last`` (time, error) is too recent to try again."""
    if last is None:
        return False
    at, error = last
    code = (error or "").split(":", 1)[0]
    transient = code in TRANSIENT_CODES
    seconds = settings.payout_transient_retry_seconds if transient else settings.payout_retry_seconds
    return now - at < timedelta(seconds=seconds)


async def _settle_in_place(ops: ChainOps, owner: FeeOwner, farmer_id: uuid.UUID, amount: int) -> bool:
    """The pooler's fees in the compensated farmer's own account become its own: no
    transaction, two journal lines under the farmer's row lock (re-checked there)."""
    assert owner.pooler_id is not None
    async with ops.db.transaction() as session:
        if await _lock_farmer(session, farmer_id) is None:
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


async def _try_lock(session: AsyncSession, namespace: str, key: str) -> bool:
    """A transaction-scoped advisory lock on (namespace, key), or False when another holds it."""
    locked = func.pg_try_advisory_xact_lock(func.hashtext(namespace), func.hashtext(key))
    got = await session.execute(select(locked))
    return bool(got.scalar_one())


async def _open_payouts(ops: ChainOps, owner: FeeOwner) -> list[Payout]:
    async with ops.db.transaction() as session:
        query = select(Payout).where(owner.owns(), Payout.status.in_(_OPEN)).order_by(Payout.id)
        return list((await session.scalars(query)).all())


def _same(payout: Payout) -> Callable[[Farmer], Payout]:
    return lambda _farmer: payout


def _fee_payout(
    owner: FeeOwner,
    source_id: uuid.UUID,
    amount: int,
    *,
    error: str | None = None,
    recipient: Farmer | None = None,
) -> Payout:
    """A fee payout to the owner's account, or (``recipient``) a compensation the pooler
    owes, paid to that farmer's custodial account."""
    destination = recipient.public_key if recipient is not None else owner.destination
    assert destination is not None
    return Payout(
        account_type=owner.account_type.value,
        pooler_id=owner.pooler_id,
        source_farmer_id=source_id,
        recipient_farmer_id=recipient.id if recipient is not None else None,
        asset=Asset.KALE.value,
        amount=amount,
        destination=destination,
        status=PayoutStatus.FAILED.value if error else PayoutStatus.PENDING.value,
        error=error,
    )


async def _from_source(
    ops: ChainOps,
    farmer_id: uuid.UUID,
    run: PayoutRun,
    payout_for: Callable[[Farmer], Payout],
    *,
    check_balance: int | None = None,
) -> int:
    """Send (or resume) one pooler payout from this farmer's custodial account, holding the
    farmer's row lock (farmer payouts take it too: one transaction per account at a time).
    A payout still to be signed waits while the account has a plant or harvest in flight;
    with ``check_balance``, a new one is only recorded when the account holds that much
    KALE and has XLM for the fee. Returns the KALE sent."""
    async with ops.db.transaction() as lock:
        farmer = await _lock_farmer(lock, farmer_id)
        if farmer is None:
            run.skipped += 1
            return 0
        payout = payout_for(farmer)
        if payout.status == PayoutStatus.PENDING.value:  # to be signed now: the account must be idle
            async with ops.db.transaction() as session:
                busy = (
                    await session.scalars(
                        select(Pail.id).where(Pail.farmer_id == farmer_id, Pail.state.in_(_BUSY)).limit(1)
                    )
                ).first()
            if busy is not None:
                run.skipped += 1
                return 0
        if check_balance is not None:
            account = (await ops.chain.accounts([farmer.public_key]))[farmer.public_key]
            too_little_xlm = account.spendable_xlm < ops.settings.min_fee_xlm
            if (account.kale_balance or 0) < check_balance or too_little_xlm:
                run.skipped += 1
                return 0
            async with ops.db.transaction() as session:
                session.add(payout)
                await session.flush()
        before = run.amount
        await _drive(ops, farmer, payout, run)
        return run.amount - before


async def _drive(ops: ChainOps, source: Farmer, payout: Payout, run: PayoutRun) -> None:
    """Send a pending payout from ``source``'s custodial account, or follow a submitted one
    by hash; record how it ended."""
    payout_id = payout.id
    try:
        if payout.status == PayoutStatus.SUBMITTED.value:
            assert payout.tx_hash is not None and payout.envelope_xdr is not None
            outcome = await ops.chain.resume_payment(payout.tx_hash, payout.envelope_xdr)
        else:

            async def on_signed(tx_hash: str, envelope_xdr: str) -> None:
                async with ops.db.transaction() as session:
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

            with ops.signer.keypair(source) as keypair:
                outcome = await ops.chain.pay(keypair, payout.destination, payout.amount, on_signed=on_signed)
    except ChainError as exc:
        await _record_failure(ops, source, payout_id, exc, run)
        return
    await _record_paid(ops, source.id, payout, outcome)
    run.paid += 1
    run.amount += outcome.amount


def _paid_lines(source_id: uuid.UUID, payout: Payout, outcome: PaymentOutcome) -> list[journal.Entry]:
    tx = outcome.tx_hash
    if payout.account_type == AccountType.FARMER.value:
        return [
            journal.Entry.farmer(
                source_id,
                JournalKind.PAYOUT,
                -outcome.amount,
                f"payout {payout.id} to the payout wallet (tx {tx})",
                reference=tx,
            )
        ]
    owner = FeeOwner(AccountType(payout.account_type), payout.pooler_id, payout.destination)
    sent, settled = owner.sent_kinds
    if payout.recipient_farmer_id is not None:  # a compensation paid out of the pooler's fees
        usage = f"compensation from {owner.name} out of its fees, payout {payout.id} (tx {tx})"
        return [
            journal.Entry.farmer(source_id, sent, -outcome.amount, usage, reference=tx),
            journal.Entry.farmer(source_id, settled, outcome.amount, usage, reference=tx),
            journal.Entry.farmer(
                payout.recipient_farmer_id,
                JournalKind.COMPENSATION_RECEIVED,
                outcome.amount,
                usage,
                reference=tx,
            ),
            journal.Entry.farmer(
                payout.recipient_farmer_id,
                JournalKind.COMPENSATION_SETTLED,
                -outcome.amount,
                usage,
                reference=tx,
            ),
        ]
    usage = f"fees sent to {owner.name}, payout {payout.id} (tx {tx})"
    paid = (
        journal.Entry.pooler(payout.pooler_id, JournalKind.PAYOUT, -outcome.amount, usage, reference=tx)
        if payout.pooler_id is not None
        else journal.Entry.platform(JournalKind.PAYOUT, -outcome.amount, usage, reference=tx)
    )
    return [
        journal.Entry.farmer(source_id, sent, -outcome.amount, usage, reference=tx),
        journal.Entry.farmer(source_id, settled, outcome.amount, usage, reference=tx),
        paid,
    ]


async def _record_paid(ops: ChainOps, source_id: uuid.UUID, payout: Payout, outcome: PaymentOutcome) -> None:
    entries = _paid_lines(source_id, payout, outcome)
    entries += journal.xlm_fee(source_id, outcome.fee_charged, outcome.tx_hash, f"fee of payout {payout.id}")
    async with ops.db.transaction() as session:
        await journal.record(session, entries)
        await session.execute(
            update(Payout)
            .where(Payout.id == payout.id)
            .values(
                status=PayoutStatus.CONFIRMED.value,
                tx_hash=outcome.tx_hash,
                error=None,
                updated_at=func.now(),
            )
        )
    log.info(
        "payout confirmed",
        account_type=payout.account_type,
        farmer_id=str(source_id),
        pooler_id=str(payout.pooler_id) if payout.pooler_id else None,
        amount=outcome.amount,
        tx_hash=outcome.tx_hash,
    )


async def _record_failure(
    ops: ChainOps, farmer: Farmer, payout_id: int, exc: ChainError, run: PayoutRun
) -> None:
    async with ops.db.transaction() as session:
        row = await session.get(Payout, payout_id)
        assert row is not None
        signed = row.tx_hash is not None
        if signed and isinstance(exc, ChainTxInDoubt | ChainUnavailable):
            run.in_doubt += 1  # maybe sent: followed by hash next run, never signed again
            log.warning("payout in doubt", farmer_id=str(farmer.id), tx_hash=row.tx_hash, error=exc.code)
            return
        if not signed and isinstance(exc, ChainUnavailable):  # nothing was signed: try again next run
            await session.delete(row)
            run.skipped += 1
            return
        failure = failure_of(exc)
        # applied and failed: the fee is spent
        await journal.record(
            session,
            journal.xlm_fee(
                farmer.id, failure.fee_charged, failure.tx_hash, f"fee of failed payout {payout_id}"
            ),
        )
        row.status = PayoutStatus.FAILED.value
        row.error = f"{failure.code}: {failure.message}"[:500]
        row.updated_at = await q.db_now(session)
    run.failed += 1
    log.warning(
        "payout failed",
        farmer_id=str(farmer.id),
        error=failure.code,
        attributed_to=failure.attributed_to.value,
    )
