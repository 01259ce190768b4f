"""Harvests: ``harvest-request`` and the auto-harvester's core, and closing blocks.

A harvest is sent by the farmer's custodial account (it is the transaction's source and
pays the XLM fee, journaled as ``xlm_fee``): no shared fee account to keep funded or to
serialise on. Pails are claimed (``worked`` → ``harvesting``, SKIP LOCKED, a lease) before
anything is signed; the signed envelope is recorded on the pail before it is sent and a
pail claimed again with one is resumed by hash.

The reward is the transaction's return value, never an estimate. Recording a harvest is
one transaction: the ``harvests`` row (one success per farmer and block, a partial unique
index), the journal lines of the split (:func:`kalepool.backend.accounting.split_reward`)
and the pail's state. ``PailMissing`` for a pail whose success is recorded is answered as
``already_harvested``; a second request never journals twice (unique journal keys).

``close_blocks`` turns the ``planted`` pails of closed blocks into ``worked`` (the chain
shows a work: harvest it) or ``unworked`` (the stake is forfeited; a ``not_worked``
compensation is owed by the pooler unless one exists already).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.accounting import Split, split_reward
from kalepool.backend.chain import ChainError, ChainTxExpired, ChainTxInDoubt, HarvestOutcome, PailInfo
from kalepool.backend.db import pails as q
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import BalanceChange, Farmer, Harvest, Pail, PoolerCompensation, Work
from kalepool.backend.enums import (
    AccountType,
    Attribution,
    CompensationReason,
    EventStatus,
    JournalKind,
    PailState,
    WorkStatus,
)
from kalepool.backend.logs import get_logger
from kalepool.backend.services.common import (
    ChainOps,
    Failure,
    bounded,
    claimant_id,
    failure_of,
    holding_claims,
    wait_released,
)
from kalepool.backend.services.working import assess_compensation, record_compensation

__all__ = [
    "HarvestFailed",
    "HarvestReport",
    "Harvested",
    "close_blocks",
    "harvest_claimed",
    "harvest_request",
]

log = get_logger(__name__)


@dataclass(frozen=True)
class Harvested:
    farmer_id: uuid.UUID
    block_index: int
    reward: int
    stake_returned: int
    tx_hash: str
    pooler_share: int
    platform_fee: int
    farmer_reward: int
    already_harvested: bool


@dataclass(frozen=True)
class HarvestFailed:
    farmer_id: uuid.UUID
    block_index: int
    error: str
    message: str
    attributed_to: Attribution


@dataclass
class HarvestReport:
    results: list[Harvested] = field(default_factory=list)
    failed: list[HarvestFailed] = field(default_factory=list)

    @property
    def total_rewards(self) -> int:
        return sum(r.reward for r in self.results)


@dataclass
class _Outcome:
    pail: Pail
    harvested: Harvested | None = None
    failure: Failure | None = None
    fee: int = 0


# --- harvest-request ----------------------------------------------------------------------


async def harvest_request(
    ops: ChainOps, *, pooler_id: uuid.UUID, items: Sequence[tuple[int, uuid.UUID]]
) -> HarvestReport:
    """Harvest the listed (block, farmer) pails of the pooler's farmers."""
    report = HarvestReport()
    pairs = list(dict.fromkeys((farmer_id, block) for block, farmer_id in items))
    farm = await ops.chain.farm()
    async with ops.db.transaction() as session:
        farmers = await repo.farmers_by_ids(session, {f for f, _ in pairs})
        pails = await q.pails_of(session, pairs)
        done = await q.successful_harvests(session, pairs)

    def fail(farmer_id: uuid.UUID, block: int, code: str, message: str, blame: Attribution) -> None:
        report.failed.append(HarvestFailed(farmer_id, block, code, message, blame))

    to_claim: list[Pail] = []
    to_check: list[Pail] = []
    for farmer_id, block in pairs:
        farmer = farmers.get(farmer_id)
        pail = pails.get((farmer_id, block))
        if farmer is None or farmer.pooler_id != pooler_id:
            fail(farmer_id, block, "unknown_farmer", "not a farmer of this pooler", Attribution.POOLER)
        elif (farmer_id, block) in done:
            continue  # answered below, from the record
        elif pail is None or pail.state not in q.PLANTED_STATES:
            fail(
                farmer_id,
                block,
                "not_planted",
                f"no successful planting in block {block}",
                Attribution.POOLER,
            )
        elif block >= farm.index:
            fail(
                farmer_id,
                block,
                "harvest_not_ready",
                f"block {block} is still open (farm at {farm.index})",
                Attribution.POOLER,
            )
        elif pail.state == PailState.LOST.value:
            fail(
                farmer_id,
                block,
                pail.last_error or "pail_expired",
                "the pail expired before it was harvested",
                Attribution.BACKEND,
            )
        elif pail.state == PailState.UNWORKED.value:
            fail(
                farmer_id,
                block,
                "not_worked",
                "the pail was never worked: its stake is forfeited",
                Attribution.POOLER,
            )
        elif pail.state == PailState.PLANTED.value:
            to_check.append(pail)
        else:
            to_claim.append(pail)

    if to_check:  # planted, but no work recorded: the chain decides
        onchain = await ops.chain.pails([(farmers[p.farmer_id].public_key, p.block_index) for p in to_check])
        async with ops.db.transaction() as session:
            for pail in to_check:
                info = onchain.get((farmers[pail.farmer_id].public_key, pail.block_index))
                if info is not None and info.worked:
                    await q.set_pail(
                        session,
                        pail.id,
                        state=PailState.WORKED.value,
                        live_until_ledger=info.live_until_ledger,
                    )
                    to_claim.append(pail)
                else:
                    fail(
                        pail.farmer_id,
                        pail.block_index,
                        "not_worked",
                        "the pail on chain has no work: its stake is forfeited",
                        Attribution.POOLER,
                    )

    claimed: Sequence[Pail] = []
    claimant = claimant_id("harvest")
    if to_claim:
        async with ops.db.transaction() as session:
            claimed = await q.claim_for_harvest(
                session,
                claimant=claimant,
                seconds=ops.settings.claim_seconds,
                below_block=farm.index,
                limit=len(to_claim),
                pail_ids=[p.id for p in to_claim],
            )
    async with holding_claims(ops.db, claimant, ops.settings.claim_seconds):
        outcomes = await harvest_claimed(ops, claimed, latest_ledger=farm.latest_ledger)
    held = [p for p in to_claim if p.id not in {c.id for c in claimed}]
    if held:
        await wait_released(
            ops.db,
            [p.id for p in held],
            timeout=ops.settings.in_progress_wait,
            busy=lambda state: state == PailState.HARVESTING.value,
        )
    async with ops.db.transaction() as session:
        done = await q.successful_harvests(session, pairs)
        fresh = {
            (o.harvested.farmer_id, o.harvested.block_index)
            for o in outcomes
            if o.harvested and not o.harvested.already_harvested
        }
        for farmer_id, block in pairs:
            row = done.get((farmer_id, block))
            farmer = farmers.get(farmer_id)
            if row is not None and farmer is not None and farmer.pooler_id == pooler_id:
                report.results.append(
                    await _from_record(session, row, already=(farmer_id, block) not in fresh)
                )
    for outcome in outcomes:
        if outcome.failure is not None:
            f = outcome.failure
            fail(outcome.pail.farmer_id, outcome.pail.block_index, f.code, f.message, f.attributed_to)
    for pail in held:
        if (pail.farmer_id, pail.block_index) not in done:
            fail(
                pail.farmer_id,
                pail.block_index,
                "harvest_in_progress",
                "another worker is harvesting this pail; ask again shortly",
                Attribution.BACKEND,
            )
    log.info(
        "harvest request",
        pooler_id=str(pooler_id),
        harvested=len(report.results),
        failed=len(report.failed),
        total_rewards=report.total_rewards,
    )
    return report


async def _from_record(session: AsyncSession, row: Harvest, *, already: bool) -> Harvested:
    """A recorded harvest and its split, read back from the journal."""
    query = select(BalanceChange.kind, BalanceChange.amount).where(
        BalanceChange.account_type == AccountType.FARMER.value,
        BalanceChange.farmer_id == row.farmer_id,
        BalanceChange.block_index == row.block_index,
        BalanceChange.kind.in_([JournalKind.POOLER_FEE.value, JournalKind.PLATFORM_FEE.value]),
    )
    fees = {kind: -int(amount) for kind, amount in (await session.execute(query)).all()}
    reward = row.reward or 0
    pooler = fees.get(JournalKind.POOLER_FEE.value, 0)
    platform = fees.get(JournalKind.PLATFORM_FEE.value, 0)
    return Harvested(
        row.farmer_id,
        row.block_index,
        reward,
        row.stake_returned or 0,
        row.tx_hash or "",
        pooler,
        platform,
        reward - pooler - platform,
        already,
    )


# --- the core, shared with the auto-harvester ---------------------------------------------


async def harvest_claimed(ops: ChainOps, pails: Sequence[Pail], *, latest_ledger: int) -> list[_Outcome]:
    """Harvest pails this caller has claimed, ``plant_concurrency`` at a time."""
    if not pails:
        return []
    async with ops.db.transaction() as session:
        farmers = await repo.farmers_by_ids(session, {p.farmer_id for p in pails})
        shares = {}
        for pooler_id in {p.pooler_id for p in pails}:
            pooler = await repo.get_pooler(session, pooler_id)
            shares[pooler_id] = pooler.reward_share_bps if pooler is not None else 0

    async def one(pail: Pail) -> _Outcome:
        return await _harvest_one(ops, pail, farmers[pail.farmer_id], shares[pail.pooler_id], latest_ledger)

    outcomes = await bounded(ops.settings.plant_concurrency, pails, one)
    totals: dict[tuple[int, uuid.UUID], dict[str, int]] = {}
    for o in outcomes:
        bucket = totals.setdefault(
            (o.pail.block_index, o.pail.pooler_id),
            {"harvests_succeeded": 0, "harvests_failed": 0, "total_rewards": 0, "xlm_fees": 0},
        )
        bucket["xlm_fees"] += o.fee
        if o.harvested is not None and not o.harvested.already_harvested:
            bucket["harvests_succeeded"] += 1
            bucket["total_rewards"] += o.harvested.reward
        elif o.failure is not None:
            bucket["harvests_failed"] += 1
    async with ops.db.transaction() as session:
        for (block, pooler_id), counts in sorted(totals.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            await q.bump_block_operation(
                session,
                block_index=block,
                pooler_id=pooler_id,
                stamps=["harvest_completed_at"],
                harvests_succeeded=counts["harvests_succeeded"],
                harvests_failed=counts["harvests_failed"],
                total_rewards=counts["total_rewards"],
                xlm_fees=counts["xlm_fees"],
            )
    return outcomes


async def _harvest_one(
    ops: ChainOps, pail: Pail, farmer: Farmer, pooler_bps: int, latest_ledger: int
) -> _Outcome:
    try:
        if pail.harvest_tx_hash and pail.harvest_envelope_xdr:
            try:
                resumed = await ops.chain.resume(pail.harvest_tx_hash, pail.harvest_envelope_xdr)
            except ChainTxExpired:
                resumed = None  # never applied: sign a new one
            if isinstance(resumed, HarvestOutcome):
                return await _record_harvested(ops, pail, farmer, pooler_bps, resumed)
        if pail.live_until_ledger is not None and pail.live_until_ledger < latest_ledger:
            return await _record_lost(
                ops,
                pail,
                Failure(
                    "pail_expired",
                    f"the pail expired at ledger {pail.live_until_ledger}",
                    Attribution.BACKEND,
                ),
            )

        async def intent(tx_hash: str, envelope_xdr: str) -> None:
            async with ops.db.transaction() as session:
                await q.record_intent(
                    session, pail, harvest_tx_hash=tx_hash, harvest_envelope_xdr=envelope_xdr
                )

        with ops.signer.keypair(farmer) as keypair:
            outcome = await ops.chain.harvest(keypair, pail.block_index, on_signed=intent)
        return await _record_harvested(ops, pail, farmer, pooler_bps, outcome)
    except ChainError as exc:
        failure = failure_of(exc)
        if exc.code == "pail_missing":
            return await _reconcile_missing(ops, pail, failure)
        if exc.code == "block_missing":
            return await _record_lost(
                ops,
                pail,
                Failure(
                    "block_missing",
                    "the block expired before the pail was harvested",
                    Attribution.BACKEND,
                    failure.tx_hash,
                    failure.fee_charged,
                ),
            )
        if exc.code == "work_missing":
            return await _record_unworked(ops, pail, failure)
        return await _record_attempt(ops, pail, failure, in_doubt=isinstance(exc, ChainTxInDoubt))
    except q.ClaimLost:  # nothing was sent; the pail is the new holder's to record
        log.warning("harvest dropped: the claim was taken over", pail_id=pail.id)
        taken = "this worker's claim lapsed and another is harvesting this pail"
        return _Outcome(pail, failure=Failure("harvest_in_progress", taken, Attribution.BACKEND))
    except Exception as exc:
        return await _record_attempt(ops, pail, failure_of(exc), in_doubt=False)


async def _record_harvested(
    ops: ChainOps, pail: Pail, farmer: Farmer, pooler_bps: int, outcome: HarvestOutcome
) -> _Outcome:
    block = pail.block_index
    split = split_reward(outcome.reward, pooler_bps, ops.settings.platform_fee_bps)
    stake = pail.stake_amount
    async with ops.db.transaction() as session:
        statement = (
            insert(Harvest)
            .values(
                farmer_id=farmer.id,
                pooler_id=pail.pooler_id,
                block_index=block,
                status=EventStatus.SUCCEEDED.value,
                reward=outcome.reward,
                stake_returned=stake,
                tx_hash=outcome.tx_hash,
                fee_charged=outcome.fee_charged,
            )
            .on_conflict_do_nothing(
                index_elements=["farmer_id", "block_index"], index_where=text("status = 'succeeded'")
            )
            .returning(Harvest.id)
        )
        inserted = (await session.execute(statement)).first() is not None
        entries = journal.xlm_fee(
            farmer.id,
            outcome.fee_charged,
            outcome.tx_hash,
            f"fee of the harvest of block {block}",
            block_index=block,
        )
        if inserted:
            entries += _split_entries(farmer.id, pail.pooler_id, block, stake, split, outcome.tx_hash)
            entries += await _reverse_compensation(session, farmer.id, pail.pooler_id, block)
        await journal.record(session, entries)
        await q.release(
            session,
            pail.id,
            state=PailState.HARVESTED.value,
            harvest_tx_hash=outcome.tx_hash,
            last_error=None,
        )
        if not inserted:
            row = (await q.successful_harvests(session, [(farmer.id, block)]))[(farmer.id, block)]
            harvested = await _from_record(session, row, already=True)
    if inserted:
        harvested = Harvested(
            farmer.id,
            block,
            outcome.reward,
            stake,
            outcome.tx_hash,
            split.pooler_share,
            split.platform_fee,
            split.farmer_reward,
            already_harvested=False,
        )
        ops.metrics.harvests.labels(result="harvested").inc()
    else:
        ops.metrics.harvests.labels(result="reconciled").inc()
    return _Outcome(pail, harvested=harvested, fee=outcome.fee_charged)


def _split_entries(
    farmer_id: uuid.UUID, pooler_id: uuid.UUID, block: int, stake: int, split: Split, tx_hash: str
) -> list[journal.Entry]:
    usage = f"harvest of block {block} (tx {tx_hash})"
    mine = f"farmer:{farmer_id}"
    lines: list[tuple[AccountType, JournalKind, int, str]] = [
        (AccountType.FARMER, JournalKind.STAKE_RETURNED, stake, ""),
        (AccountType.FARMER, JournalKind.REWARD, split.reward, ""),
        (AccountType.FARMER, JournalKind.POOLER_FEE, -split.pooler_share, ""),
        (AccountType.POOLER, JournalKind.POOLER_SHARE, split.pooler_share, mine),
        (AccountType.FARMER, JournalKind.PLATFORM_FEE, -split.platform_fee, ""),
        (AccountType.PLATFORM, JournalKind.FEE_INCOME, split.platform_fee, mine),
    ]
    entries = []
    for account, kind, amount, reference in lines:
        if amount == 0:
            continue
        owner = {"farmer_id": farmer_id} if account is AccountType.FARMER else {}
        if account is AccountType.POOLER:
            owner = {"pooler_id": pooler_id}
        entries.append(
            journal.Entry(account, kind, amount, usage, block_index=block, reference=reference, **owner)  # type: ignore[arg-type]
        )
    return entries


async def _reverse_compensation(
    session: AsyncSession, farmer_id: uuid.UUID, pooler_id: uuid.UUID, block: int
) -> list[journal.Entry]:
    """A harvested pail was worked after all: a compensation paid for it is taken back."""
    row = (
        await session.scalars(
            select(PoolerCompensation).where(
                PoolerCompensation.farmer_id == farmer_id, PoolerCompensation.block_index == block
            )
        )
    ).one_or_none()
    if row is None or row.amount <= 0:
        return []
    usage = f"compensation for block {block} reversed: the pail was harvested"
    return [
        journal.Entry.farmer(
            farmer_id,
            JournalKind.ADJUSTMENT,
            -row.amount,
            usage,
            block_index=block,
            reference="compensation_reversed",
        ),
        journal.Entry.pooler(
            row.pooler_id,
            JournalKind.ADJUSTMENT,
            row.amount,
            usage,
            block_index=block,
            reference=f"compensation_reversed:farmer:{farmer_id}",
        ),
    ]


async def _reconcile_missing(ops: ChainOps, pail: Pail, failure: Failure) -> _Outcome:
    """``PailMissing``: harvested before (recorded, or by a resumed transaction), or gone."""
    async with ops.db.transaction() as session:
        row = (await q.successful_harvests(session, [(pail.farmer_id, pail.block_index)])).get(
            (pail.farmer_id, pail.block_index)
        )
        if row is not None:
            await q.release(session, pail.id, state=PailState.HARVESTED.value, last_error=None)
            harvested = await _from_record(session, row, already=True)
    if row is not None:
        ops.metrics.harvests.labels(result="reconciled").inc()
        return _Outcome(pail, harvested=harvested)
    try:
        block_alive = await ops.chain.block_entropy(pail.block_index) is not None
    except ChainError as exc:
        return await _record_attempt(ops, pail, failure_of(exc), in_doubt=False)
    if not block_alive:
        lost = Failure("pail_expired", "the block expired before the pail was harvested", Attribution.BACKEND)
    else:
        lost = Failure(
            "pail_missing",
            "the pail is gone from the chain (expired, or harvested by someone else)",
            Attribution.CHAIN,
        )
    log.warning("pail missing on chain", farmer_id=str(pail.farmer_id), block_index=pail.block_index)
    return await _record_lost(ops, pail, lost)


async def _record_lost(ops: ChainOps, pail: Pail, failure: Failure) -> _Outcome:
    async with ops.db.transaction() as session:
        await _record_failed(session, pail, failure)
        await q.release(session, pail.id, state=PailState.LOST.value, last_error=failure.code)
    log.warning("pail lost", farmer_id=str(pail.farmer_id), block_index=pail.block_index, reason=failure.code)
    ops.metrics.harvests.labels(result="lost").inc()
    return _Outcome(pail, failure=failure, fee=failure.fee_charged)


async def _record_unworked(ops: ChainOps, pail: Pail, failure: Failure) -> _Outcome:
    blame = Failure(
        "not_worked",
        "the pail was never worked: its stake is forfeited",
        Attribution.POOLER,
        failure.tx_hash,
        failure.fee_charged,
    )
    async with ops.db.transaction() as session:
        await _record_failed(session, pail, blame)
        await q.release(session, pail.id, state=PailState.UNWORKED.value, last_error="not_worked")
        await record_compensation(
            session,
            pooler_id=pail.pooler_id,
            farmer_id=pail.farmer_id,
            block_index=pail.block_index,
            reason=CompensationReason.NOT_WORKED,
            amount=pail.stake_amount,
            detail="the pail on chain is not worked: its stake is forfeited",
        )
    ops.metrics.harvests.labels(result="unworked").inc()
    return _Outcome(pail, failure=blame, fee=failure.fee_charged)


async def _record_attempt(ops: ChainOps, pail: Pail, failure: Failure, *, in_doubt: bool) -> _Outcome:
    """A failed attempt that may be retried: the pail goes back to ``worked``."""
    async with ops.db.transaction() as session:
        if in_doubt:  # keep the envelope: the next claim resumes it by hash
            await q.release(session, pail.id, last_error=failure.code)
        else:
            await _record_failed(session, pail, failure)
            await q.release(
                session,
                pail.id,
                state=PailState.WORKED.value,
                harvest_tx_hash=None,
                harvest_envelope_xdr=None,
                last_error=failure.code,
            )
    ops.metrics.harvests.labels(result="failed").inc()
    ops.metrics.chain_errors.labels(code=failure.code).inc()
    return _Outcome(pail, failure=failure, fee=failure.fee_charged)


async def _record_failed(session: AsyncSession, pail: Pail, failure: Failure) -> None:
    """A failed ``harvests`` row, and the XLM fee the transaction cost (if it was applied)."""
    session.add(
        Harvest(
            farmer_id=pail.farmer_id,
            pooler_id=pail.pooler_id,
            block_index=pail.block_index,
            status=EventStatus.FAILED.value,
            tx_hash=failure.tx_hash,
            fee_charged=failure.fee_charged or None,
            error_code=failure.code,
            error_message=failure.message[:1000],
            attributed_to=failure.attributed_to.value,
        )
    )
    usage = f"fee of a failed harvest ({failure.code})"
    fee = journal.xlm_fee(
        pail.farmer_id, failure.fee_charged, failure.tx_hash, usage, block_index=pail.block_index
    )
    await journal.record(session, fee)


# --- closing blocks -----------------------------------------------------------------------


async def close_blocks(ops: ChainOps, *, farm_index: int, limit: int) -> int:
    """Settle the ``planted`` pails of blocks before ``farm_index`` from the chain: worked
    ones become harvestable, the others ``unworked`` with a ``not_worked`` (or
    ``invalid_work``, when a rejected report exists) compensation. Returns how many."""
    async with ops.db.transaction() as session:
        rows = (
            await session.execute(
                select(Pail, Farmer.public_key)
                .join(Farmer, Farmer.id == Pail.farmer_id)
                .where(Pail.state == PailState.PLANTED.value, Pail.block_index < farm_index)
                .order_by(Pail.block_index, Pail.id)
                .limit(limit)
            )
        ).all()
    if not rows:
        return 0
    onchain = await ops.chain.pails([(key, pail.block_index) for pail, key in rows])
    groups: dict[tuple[uuid.UUID, int], list[tuple[Pail, PailInfo | None]]] = {}
    for pail, key in rows:
        groups.setdefault((pail.pooler_id, pail.block_index), []).append(
            (pail, onchain.get((key, pail.block_index)))
        )
    async with ops.db.transaction() as session:
        for (pooler_id, block), members in groups.items():
            ids = [p.farmer_id for p, _ in members]
            accepted = await q.accepted_works(session, block_index=block, farmer_ids=ids)
            rejected = set(
                (
                    await session.scalars(
                        select(Work.farmer_id).where(
                            Work.block_index == block,
                            Work.status == WorkStatus.REJECTED.value,
                            Work.farmer_id.in_(ids),
                        )
                    )
                ).all()
            )
            await assess_compensation(
                session,
                pooler_id=pooler_id,
                block_index=block,
                pails=[p for p, _ in members],
                chain={p.farmer_id: info for p, info in members},
                accepted=accepted,
                rejected=rejected,
                absent_ok=True,
            )
            for pail, info in members:
                if not (info is not None and info.worked) and pail.farmer_id not in accepted:
                    await q.set_pail(
                        session, pail.id, state=PailState.UNWORKED.value, last_error="not_worked"
                    )
    return len(rows)
