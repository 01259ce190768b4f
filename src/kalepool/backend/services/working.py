"""``work-complete``: check a pooler's reported works, record them, assess compensation.

For each reported result: the farmer must be the pooler's and planted in the block; the
hash is recomputed (:func:`kalepool.kale.pow.work_hash`) from the nonce, the block index,
the entropy recorded at planting and the farmer's address, and must equal the claimed hash
with exactly the claimed leading zeros; then ``Pail(farmer, index)`` is read from the
chain: it must be worked, with the claimed zeros (and gap, when given). Accepted results
become ``works`` rows (one per farmer and block, enforced by a partial unique index: a
repeated call records nothing twice). A rejected result of a planted farmer is recorded
once per farmer, block and reason: a repeat writes nothing new and is only counted
(``block_operations.works_rejected``, ``kalepool_works_total``). A result for a farmer of
another pooler, or one not planted in the block (a block that never was, say), writes
nothing at all. The farmers are read in one query, whatever the request lists (at most
10,000 results).

Compensation: every farmer of the pooler planted in the block that still has no accepted
work after the call gets one ``pooler_compensations`` row (unique per farmer and block):
reason ``invalid_work`` if a result for it was rejected, ``not_worked`` if none was sent.
Its amount is the stake at risk: the pail's stake when the chain shows it unworked (the
stake is forfeited at harvest), 0 when the chain shows it worked (the farmer loses
nothing; the row records the misreport). A farmer absent from the report whose pail the
chain shows worked gets no row. Amounts above 0 are journaled: ``compensation`` (+farmer)
and ``compensation_owed`` (−pooler); a later successful harvest of that pail reverses
both with ``adjustment`` lines (:mod:`kalepool.backend.services.harvesting`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.chain import PailInfo
from kalepool.backend.db import pails as q
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import Farmer, Pail, PoolerCompensation, Work
from kalepool.backend.enums import CompensationReason, JournalKind, PailState, WorkStatus
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import ChainOps
from kalepool.kale.pow import leading_zeros, work_hash

__all__ = [
    "Compensation",
    "Rejection",
    "WorkClaim",
    "WorkReport",
    "assess_compensation",
    "work_complete",
]

log = get_logger(__name__)


@dataclass(frozen=True)
class WorkClaim:
    farmer_id: uuid.UUID
    nonce: int
    hash: bytes
    zeros: int
    gap: int | None = None
    tx_hash: str | None = None


@dataclass(frozen=True)
class Rejection:
    farmer_id: uuid.UUID
    reason: str
    message: str


@dataclass(frozen=True)
class Compensation:
    farmer_id: uuid.UUID
    reason: str
    amount: int


@dataclass
class WorkReport:
    block_index: int
    work_recorded: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    compensations: list[Compensation] = field(default_factory=list)
    ready_for_harvest: list[uuid.UUID] = field(default_factory=list)

    @property
    def compensation_amount(self) -> int:
        return sum(c.amount for c in self.compensations)


async def work_complete(
    ops: ChainOps, *, pooler_id: uuid.UUID, block_index: int, claims: Sequence[WorkClaim]
) -> WorkReport:
    report = WorkReport(block_index)
    async with ops.db.transaction() as session:
        pails = {
            p.farmer_id: p
            for p in await q.pails_in_block(session, pooler_id=pooler_id, block_index=block_index)
            if p.state in q.PLANTED_STATES
        }
        plantings = await q.successful_plantings(session, [(f, block_index) for f in pails])
        farmers = await repo.farmers_by_ids(session, set(pails) | {c.farmer_id for c in claims})
        accepted_before = await q.accepted_works(session, block_index=block_index, farmer_ids=list(pails))

    rejected_rows: list[Work] = []
    to_check: list[tuple[WorkClaim, Farmer]] = []
    seen: set[uuid.UUID] = set()
    rejected_farmers: set[uuid.UUID] = set()

    def reject(claim: WorkClaim, reason: str, message: str, *, record: bool = True) -> None:
        report.rejected.append(Rejection(claim.farmer_id, reason, message))
        if record:
            rejected_farmers.add(claim.farmer_id)
            rejected_rows.append(_work_row(claim, pooler_id, block_index, WorkStatus.REJECTED, reason))

    for claim in claims:
        if claim.farmer_id in seen:
            reject(
                claim,
                "duplicate_result",
                "this farmer appears more than once; the first result counts",
                record=False,
            )
            continue
        seen.add(claim.farmer_id)
        farmer = farmers.get(claim.farmer_id)
        planting = plantings.get((claim.farmer_id, block_index))
        if farmer is None or planting is None or planting.entropy is None:
            if farmer is None or farmer.pooler_id != pooler_id:
                reject(claim, "unknown_farmer", "not a farmer of this pooler", record=False)
            else:
                message = f"this farmer has no successful planting in block {block_index}"
                reject(claim, "not_planted", message, record=False)
            continue
        if claim.farmer_id in accepted_before:
            report.work_recorded += 1  # already accepted: nothing to check or record again
            continue
        expected = work_hash(block_index, claim.nonce, planting.entropy, farmer.public_key)
        if expected != claim.hash:
            reject(
                claim, "hash_mismatch", f"keccak256 of the preimage is {expected.hex()}, not the hash sent"
            )
            continue
        if leading_zeros(claim.hash) != claim.zeros:
            reject(
                claim,
                "zeros_mismatch",
                f"the hash has {leading_zeros(claim.hash)} leading zeros, not {claim.zeros}",
            )
            continue
        to_check.append((claim, farmer))

    # the chain's view of every planted pail of the pooler in this block
    keys = [(farmers[f].public_key, block_index) for f in pails if f in farmers]
    onchain = await ops.chain.pails(keys) if keys else {}
    info_of = {f: onchain.get((farmers[f].public_key, block_index)) for f in pails if f in farmers}

    accepted_rows: list[Work] = []
    for claim, farmer in to_check:
        info = info_of.get(farmer.id)
        problem = _chain_problem(claim, info)
        if problem is not None:
            reject(claim, *problem)
            continue
        assert info is not None and info.gap is not None
        accepted_rows.append(
            _work_row(claim, pooler_id, block_index, WorkStatus.ACCEPTED, None, gap=info.gap)
        )

    if not pails:  # nothing of this pooler's in the block: nothing to record
        _count(ops, report, pooler_id, accepted=0)
        return report
    async with ops.db.transaction() as session:
        # one writer per pooler and block at a time, so a repeat sees what the first wrote
        await q.lock_pooler_block(session, pooler_id=pooler_id, block_index=block_index)
        recorded = await q.rejected_works(session, block_index=block_index, farmer_ids=list(pails))
        session.add_all(r for r in rejected_rows if (r.farmer_id, r.reason) not in recorded)
        newly = 0
        for row in accepted_rows:
            newly += await _insert_accepted(session, row)
        report.work_recorded += len(accepted_rows)
        accepted = await q.accepted_works(session, block_index=block_index, farmer_ids=list(pails))
        compensated = await assess_compensation(
            session,
            pooler_id=pooler_id,
            block_index=block_index,
            pails=[pails[f] for f in pails],
            chain=info_of,
            accepted=accepted,
            rejected=rejected_farmers,
            absent_ok=True,
        )
        await q.bump_block_operation(
            session,
            block_index=block_index,
            pooler_id=pooler_id,
            stamps=["work_reported_at"],
            works_accepted=newly,
            works_rejected=len(rejected_rows),
            total_compensation=compensated,
        )
        rows = await q.compensations(session, pooler_id=pooler_id, block_index=block_index)
        report.compensations = [Compensation(c.farmer_id, c.reason, c.amount) for c in rows]
        for pail in await q.pails_by_ids(session, [p.id for p in pails.values()]):
            if pail.state == PailState.WORKED.value:
                report.ready_for_harvest.append(pail.farmer_id)
    _count(ops, report, pooler_id, accepted=len(accepted_rows))
    return report


def _count(ops: ChainOps, report: WorkReport, pooler_id: uuid.UUID, *, accepted: int) -> None:
    for status, count in (("accepted", accepted), ("rejected", len(report.rejected))):
        if count:
            ops.metrics.works.labels(status=status).inc(count)
    log.info(
        "work complete",
        pooler_id=str(pooler_id),
        block_index=report.block_index,
        accepted=accepted,
        rejected=len(report.rejected),
        compensation=report.compensation_amount,
    )


def _chain_problem(claim: WorkClaim, info: PailInfo | None) -> tuple[str, str] | None:
    if info is None:
        return "pail_missing", "Pail(farmer, index) is not on chain (harvested, expired or never planted)"
    if not info.worked:
        return "not_worked_on_chain", "the pail on chain has no work"
    if info.zeros != claim.zeros:
        return "chain_mismatch", f"the pail on chain holds {info.zeros} zeros, not {claim.zeros}"
    if claim.gap is not None and info.gap != claim.gap:
        return "gap_mismatch", f"the pail on chain holds gap {info.gap}, not {claim.gap}"
    return None


def _work_row(
    claim: WorkClaim,
    pooler_id: uuid.UUID,
    block_index: int,
    status: WorkStatus,
    reason: str | None,
    *,
    gap: int | None = None,
) -> Work:
    return Work(
        farmer_id=claim.farmer_id,
        pooler_id=pooler_id,
        block_index=block_index,
        status=status.value,
        nonce=claim.nonce,
        hash=claim.hash,
        zeros=claim.zeros,
        gap=gap if gap is not None else claim.gap,
        tx_hash=claim.tx_hash,
        reason=reason,
    )


async def _insert_accepted(session: AsyncSession, row: Work) -> int:
    statement = (
        insert(Work)
        .values(
            farmer_id=row.farmer_id,
            pooler_id=row.pooler_id,
            block_index=row.block_index,
            status=row.status,
            nonce=row.nonce,
            hash=row.hash,
            zeros=row.zeros,
            gap=row.gap,
            tx_hash=row.tx_hash,
        )
        .on_conflict_do_nothing(
            index_elements=["farmer_id", "block_index"], index_where=text("status = 'accepted'")
        )
        .returning(Work.id)
    )
    return 1 if (await session.execute(statement)).first() is not None else 0


async def assess_compensation(
    session: AsyncSession,
    *,
    pooler_id: uuid.UUID,
    block_index: int,
    pails: Sequence[Pail],
    chain: dict[uuid.UUID, PailInfo | None],
    accepted: set[uuid.UUID],
    rejected: set[uuid.UUID],
    absent_ok: bool,
) -> int:
    """Bring pail states in line with the chain and record the compensations owed.

    ``chain`` maps farmer ids to their pail as read; a farmer missing from it was not read
    (its pail is left alone). With ``absent_ok``, a farmer with no result whose pail the
    chain shows worked gets no row. Returns the total newly owed.
    """
    total = 0
    for pail in pails:
        if pail.farmer_id not in chain or pail.state not in (PailState.PLANTED.value, PailState.WORKED.value):
            continue
        info = chain[pail.farmer_id]
        if info is not None and info.live_until_ledger is not None:
            await q.set_pail(session, pail.id, live_until_ledger=info.live_until_ledger)
        worked_on_chain = info is not None and info.worked
        if pail.farmer_id in accepted or worked_on_chain:
            if pail.state == PailState.PLANTED.value:
                await q.set_pail(session, pail.id, state=PailState.WORKED.value)
            if pail.farmer_id in accepted or (absent_ok and pail.farmer_id not in rejected):
                continue
        reason = (
            CompensationReason.INVALID_WORK if pail.farmer_id in rejected else CompensationReason.NOT_WORKED
        )
        amount = 0 if worked_on_chain else pail.stake_amount
        detail = (
            "the pail on chain is worked: the farmer loses nothing"
            if worked_on_chain
            else "the pail on chain is not worked: its stake is forfeited"
        )
        total += await record_compensation(
            session,
            pooler_id=pooler_id,
            farmer_id=pail.farmer_id,
            block_index=block_index,
            reason=reason,
            amount=amount,
            detail=detail,
        )
    return total


async def record_compensation(
    session: AsyncSession,
    *,
    pooler_id: uuid.UUID,
    farmer_id: uuid.UUID,
    block_index: int,
    reason: CompensationReason,
    amount: int,
    detail: str,
) -> int:
    """One compensation row (unique per farmer and block) and its journal lines; returns
    the amount if it is new, else 0."""
    statement = (
        insert(PoolerCompensation)
        .values(
            pooler_id=pooler_id,
            farmer_id=farmer_id,
            block_index=block_index,
            reason=reason.value,
            amount=amount,
            detail=detail,
        )
        .on_conflict_do_nothing(index_elements=["farmer_id", "block_index"])
        .returning(PoolerCompensation.id)
    )
    if (await session.execute(statement)).first() is None:
        return 0
    if amount > 0:
        usage = f"compensation for block {block_index} ({reason.value})"
        await journal.record(
            session,
            [
                journal.Entry.farmer(
                    farmer_id, JournalKind.COMPENSATION, amount, usage, block_index=block_index
                ),
                journal.Entry.pooler(
                    pooler_id,
                    JournalKind.COMPENSATION_OWED,
                    -amount,
                    usage,
                    block_index=block_index,
                    reference=f"farmer:{farmer_id}",
                ),
            ],
        )
    return amount
