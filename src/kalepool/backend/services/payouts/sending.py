"""Sending a planned payout, once: the intent row, signing, following by hash, the journal.

:func:`from_source` records a fee payment's intent from one custodial account (under the
farmer's row lock, which farmer payouts take too: one transaction per account at a time)
and :func:`drive` sends it, or follows a ``submitted`` one by its hash, never signing
again; :func:`record_paid` journals it keyed by the transaction hash (written once
whatever happens) and :func:`record_failure` tells in doubt (left ``submitted``), not
signed (forgotten, decided anew) and failed (its fee journaled) apart.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from kalepool.backend import journal
from kalepool.backend.chain import ChainError, ChainTxInDoubt, ChainUnavailable, PaymentOutcome
from kalepool.backend.db import payouts as q
from kalepool.backend.db.models import Farmer, Payout
from kalepool.backend.enums import AccountType, Asset, JournalKind, PayoutStatus
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps, bounded, failure_of
from kalepool.backend.services.payouts.plan import Action, FeeOwner, Payee, Planned, source_problem

__all__ = ["PayoutRun", "drive", "each", "from_source", "open_fee_payouts", "payout_row"]

log = get_logger(__name__)

_ACCOUNT_TYPES = {
    Payee.FARMER: AccountType.FARMER,
    Payee.POOLER: AccountType.POOLER,
    Payee.COMPENSATION: AccountType.POOLER,
    Payee.PLATFORM: AccountType.PLATFORM,
}


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


async def each(
    ops: ChainOps,
    ids: list[uuid.UUID],
    one: Callable[[ChainOps, uuid.UUID, PayoutRun], Awaitable[None]],
    run: PayoutRun,
    who: str,
    *,
    concurrency: int = 1,
) -> PayoutRun:
    """``one`` for every id, ``concurrency`` at a time; an unexpected error is counted and
    logged, and the run goes on."""

    async def guarded(account_id: uuid.UUID) -> None:
        run.considered += 1
        try:
            await one(ops, account_id, run)
        except Exception:
            run.errors += 1
            log.exception("payout failed unexpectedly", account_type=who, account_id=str(account_id))

    await bounded(concurrency, ids, guarded)
    if run.paid or run.failed or run.resumed or run.errors:
        figures = {k: v for k, v in vars(run).items() if v and k not in ("poolers", "platform", "departing")}
        log.info(f"{who} payout run", **figures)
    return run


def payout_row(step: Planned) -> Payout:
    """The ``payouts`` row of a ``PAY`` step (``pending``) or a ``FAIL`` one (``failed``,
    with its error): a farmer's own KALE, fees to their owner, or a compensation the
    pooler owes, paid to that farmer's custodial account."""
    assert step.action in (Action.PAY, Action.FAIL) and step.destination is not None
    own = step.payee == Payee.FARMER
    return Payout(
        account_type=_ACCOUNT_TYPES[step.payee].value,
        farmer_id=step.farmer_id if own else None,
        pooler_id=step.pooler_id,
        source_farmer_id=None if own else step.source_id,
        recipient_farmer_id=step.farmer_id if step.payee == Payee.COMPENSATION else None,
        asset=Asset.KALE.value,
        amount=step.amount,
        destination=step.destination,
        status=PayoutStatus.FAILED.value if step.action == Action.FAIL else PayoutStatus.PENDING.value,
        error=step.error if step.action == Action.FAIL else None,
    )


async def from_source(ops: ChainOps, farmer_id: uuid.UUID, run: PayoutRun, payout: Payout | Planned) -> int:
    """Send (or resume) one fee payout from this farmer's custodial account, holding the
    farmer's row lock (farmer payouts take it too: one transaction per account at a time).
    A payout still to be signed waits while the account has a plant or harvest in flight;
    a planned one is only recorded when the account holds its KALE and has XLM for the
    fee. Returns the KALE sent."""
    async with ops.db.transaction() as lock:
        farmer = await q.lock_farmer(lock, farmer_id)
        if farmer is None:
            run.skipped += 1
            return 0
        if isinstance(payout, Payout) and payout.status != PayoutStatus.PENDING.value:
            busy = False  # signed already: followed by hash whatever the account does
        else:
            async with ops.db.transaction() as session:
                busy = await q.busy(session, farmer_id)
        if busy:
            run.skipped += 1
            return 0
        if isinstance(payout, Planned):
            account = (await ops.chain.accounts([farmer.public_key]))[farmer.public_key]
            if source_problem(False, account, payout.amount, ops.settings) is not None:
                run.skipped += 1
                return 0
            async with ops.db.transaction() as session:
                payout = await q.add(session, payout_row(payout))
        before = run.amount
        await drive(ops, farmer, payout, run)
        return run.amount - before


async def drive(ops: ChainOps, source: Farmer, payout: Payout, run: PayoutRun) -> None:
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
                    await q.mark_submitted(session, payout_id, tx_hash=tx_hash, envelope_xdr=envelope_xdr)

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
        await q.mark_confirmed(session, payout.id, tx_hash=outcome.tx_hash)
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
        row = await q.payout(session, payout_id)
        assert row is not None
        signed = row.tx_hash is not None
        if signed and isinstance(exc, ChainTxInDoubt | ChainUnavailable):
            run.in_doubt += 1  # maybe sent: followed by hash next run, never signed again
            log.warning("payout in doubt", farmer_id=str(farmer.id), tx_hash=row.tx_hash, error=exc.code)
            return
        if not signed and isinstance(exc, ChainUnavailable):  # nothing was signed: try again next run
            await q.forget(session, row)
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
        await q.mark_failed(session, row, f"{failure.code}: {failure.message}")
    run.failed += 1
    log.warning(
        "payout failed",
        farmer_id=str(farmer.id),
        error=failure.code,
        attributed_to=failure.attributed_to.value,
    )


async def open_fee_payouts(ops: ChainOps, owner: FeeOwner) -> list[Payout]:
    """The owner's payouts still open (compensations included)."""
    async with ops.db.transaction() as session:
        return await q.fee_payouts_open(session, owner.pooler_id)
