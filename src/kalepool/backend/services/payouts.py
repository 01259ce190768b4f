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
  failed payout younger than ``backend.payout_retry_seconds`` is skipped this run.

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
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.chain import ChainError, ChainUnavailable, PaymentOutcome, TxInDoubt
from kalepool.backend.db import pails as q
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
from kalepool.backend.services.common import ChainOps, failure_of

__all__ = ["Owed", "PayoutRun", "owed_to", "pay_farmers"]

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
    query = (
        select(BalanceChange.kind, func.sum(BalanceChange.amount))
        .where(
            BalanceChange.account_type == AccountType.FARMER.value,
            BalanceChange.farmer_id == farmer_id,
            BalanceChange.asset == Asset.KALE.value,
        )
        .group_by(BalanceChange.kind)
    )
    sums = {JournalKind(k): int(v) for k, v in (await session.execute(query)).all()}
    fees = sums.get(JournalKind.POOLER_FEE, 0) + sums.get(JournalKind.PLATFORM_FEE, 0)
    return Owed(
        earned=sums.get(JournalKind.REWARD, 0) + fees,
        paid=sums.get(JournalKind.PAYOUT, 0) + sums.get(JournalKind.PAYOUT_REVERSED, 0),
        held=-fees,
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
    for farmer_id in ids:
        if farmer_id is None:
            continue
        run.considered += 1
        try:
            await _one_farmer(ops, farmer_id, run)
        except Exception:
            run.errors += 1
            log.exception("payout failed unexpectedly", farmer_id=str(farmer_id))
    if run.paid or run.failed or run.resumed or run.errors:
        log.info("payout run", **{k: v for k, v in vars(run).items() if v})
    return run


async def _one_farmer(ops: ChainOps, farmer_id: uuid.UUID, run: PayoutRun) -> None:
    # the lock is held (in its own transaction) while this farmer's payout is decided and sent
    async with ops.db.transaction() as lock:
        farmer = (
            await lock.scalars(
                select(Farmer).where(Farmer.id == farmer_id).with_for_update(skip_locked=True, key_share=True)
            )
        ).one_or_none()
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


async def _decide(ops: ChainOps, farmer: Farmer, run: PayoutRun) -> Payout | None:
    """Record a payout intent (or a failed one) for the farmer, or ``None`` (skipped)."""
    settings = ops.settings
    leaving = farmer.status == FarmerStatus.LEAVING.value
    async with ops.db.transaction() as session:
        now = await q.db_now(session)
        last_failure = (
            await session.execute(
                select(func.max(Payout.updated_at)).where(
                    Payout.farmer_id == farmer.id, Payout.status == PayoutStatus.FAILED.value
                )
            )
        ).scalar_one()
        states = set(
            (await session.scalars(select(Pail.state).where(Pail.farmer_id == farmer.id).distinct())).all()
        )
        figures = await owed_to(session, farmer.id)
    if last_failure is not None and now - last_failure < timedelta(seconds=settings.payout_retry_seconds):
        run.skipped += 1
        return None
    if states & set(_UNSETTLED if leaving else _BUSY):
        run.skipped += 1
        return None
    owed = figures.owed(leaving)
    if owed < (1 if leaving else settings.payout_min_amount):
        return None
    found = await ops.chain.accounts([farmer.public_key, farmer.payout_wallet])
    source, destination = found[farmer.public_key], found[farmer.payout_wallet]
    amount = min(owed, (source.kale_balance or 0) - figures.held)
    if amount < (1 if leaving else settings.payout_min_amount):
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


async def _drive(ops: ChainOps, farmer: Farmer, payout: Payout, run: PayoutRun) -> None:
    """Send a pending payout, or follow a submitted one by hash; record how it ended."""
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

            with ops.signer.keypair(farmer) as keypair:
                outcome = await ops.chain.pay(keypair, payout.destination, payout.amount, on_signed=on_signed)
    except ChainError as exc:
        await _record_failure(ops, farmer, payout_id, exc, run)
        return
    await _record_paid(ops, farmer.id, payout_id, outcome)
    run.paid += 1
    run.amount += outcome.amount


async def _record_paid(ops: ChainOps, farmer_id: uuid.UUID, payout_id: int, outcome: PaymentOutcome) -> None:
    entries = [
        journal.Entry.farmer(
            farmer_id,
            JournalKind.PAYOUT,
            -outcome.amount,
            f"payout {payout_id} to the payout wallet (tx {outcome.tx_hash})",
            reference=outcome.tx_hash,
        )
    ]
    entries += journal.xlm_fee(farmer_id, outcome.fee_charged, outcome.tx_hash, f"fee of payout {payout_id}")
    async with ops.db.transaction() as session:
        await journal.record(session, entries)
        await session.execute(
            update(Payout)
            .where(Payout.id == payout_id)
            .values(
                status=PayoutStatus.CONFIRMED.value,
                tx_hash=outcome.tx_hash,
                error=None,
                updated_at=func.now(),
            )
        )
    log.info("payout confirmed", farmer_id=str(farmer_id), amount=outcome.amount, tx_hash=outcome.tx_hash)


async def _record_failure(
    ops: ChainOps, farmer: Farmer, payout_id: int, exc: ChainError, run: PayoutRun
) -> None:
    async with ops.db.transaction() as session:
        row = await session.get(Payout, payout_id)
        assert row is not None
        signed = row.tx_hash is not None
        if signed and isinstance(exc, TxInDoubt | ChainUnavailable):
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
