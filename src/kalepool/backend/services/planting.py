"""``plant-request``: plant every active, ready farmer of one pooler in one block.

One request, step by step:

1. Read the farm (index, ripeness, pause). The block a plant sent now lands in is the
   farm's index, or ``index + 1`` when the block is ripe.
2. Find the pooler's pails an earlier request for the same block made: farmers planted
   there are answered as ``already_planted`` and never planted again.
3. Check the requested block: below the farm's index is ``stale_block``, above the block a
   plant would open is ``future_block`` (both the pooler's fault); a paused farm is
   ``farm_paused``. Then nobody is planted, and nothing is written: a refusal changes
   nothing (it is counted in ``kalepool_plants_total{result="refused"}``), so a pooler
   asking again and again leaves no rows behind. Only the farmers planted in the
   requested block itself are answered ``already_planted`` then.
4. Claim one pail per farmer (``INSERT ... ON CONFLICT DO NOTHING`` on the unique
   (farmer, block), then ``SELECT ... FOR UPDATE SKIP LOCKED`` of the unclaimed or lapsed
   ones), in one short transaction. Farmers another request holds are waited for.
5. Plant the claimed farmers in parallel (all of them, up to ``backend.plant_concurrency``
   in flight: hundreds for a large pooler, so the fan-out takes a ledger or two):
   read the account (exists, XLM above ``backend.min_fee_xlm``, KALE trustline), stake =
   ⌊own KALE × stake_bps / 10,000⌋, where own KALE is the balance less the pooler's and
   the platform's fees it still holds (never staked), sign with the custodial key. The signed envelope and its
   hash are written to the pail **before** it is sent (``on_signed``); a pail that still
   holds one when claimed again (a crash, a lapsed claim, a transaction in doubt) is
   resumed by hash, and only signed anew once the chain says it expired unapplied. A
   transient failure (an RPC stall, a sequence another process used) is planted again
   while ``backend.plant_retry_seconds`` last; what still fails is answered with its code
   and who it is attributed to, so the pooler can ask again for those farmers.
6. Record each outcome in its own transaction: a ``plantings`` row (the block it really
   landed in, its entropy), the journal (``stake_burned``, ``xlm_fee``) and the pail's
   state. A ``PailExists`` answer is reconciled from the chain (the farmer *is* planted:
   its pail is read and recorded), never reported as a blind failure.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend import journal
from kalepool.backend.accounting import held_fees, stake_for
from kalepool.backend.chain import (
    AccountInfo,
    ChainError,
    ChainTxExpired,
    ChainTxInDoubt,
    FarmView,
    PlantOutcome,
)
from kalepool.backend.db import pails as q
from kalepool.backend.db import repositories as repo
from kalepool.backend.db.models import Farmer, Pail, Planting
from kalepool.backend.enums import Attribution, EventStatus, JournalKind, PailState
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
from kalepool.wire import ErrorCode

__all__ = ["PlantFailed", "PlantReport", "Planted", "plant_request", "recover_plantings"]

log = get_logger(__name__)

#: ``last_error`` of a pail whose planting request died before signing (recover_plantings).
ABANDONED = ErrorCode.ABANDONED
#: Failures after which nothing was applied and nothing is in flight: planted again, with a
#: new transaction, while the request's retry time lasts (an RPC stall, a sequence number
#: another process used, a lock held elsewhere, a full queue, an expired envelope).
TRANSIENT = frozenset(
    {
        ErrorCode.RPC_TIMEOUT,
        ErrorCode.NETWORK_ERROR,
        ErrorCode.CHAIN_UNAVAILABLE,
        ErrorCode.BAD_SEQUENCE,
        ErrorCode.ACCOUNT_BUSY,
        ErrorCode.TX_THROTTLED,
        ErrorCode.TX_EXPIRED,
    }
)
#: Seconds before the first retry of a transient failure (doubling, at most 4 s).
RETRY_DELAY = 0.25
TAKEN_OVER = "this request's claim lapsed and another request is planting this farmer"


@dataclass(frozen=True)
class Planted:
    farmer_id: uuid.UUID
    custodial_wallet: str
    stake_amount: int
    plant_tx_hash: str
    block_index: int
    entropy: bytes
    already_planted: bool


@dataclass(frozen=True)
class PlantFailed:
    farmer_id: uuid.UUID
    error: str
    message: str
    attributed_to: Attribution


@dataclass
class PlantReport:
    requested_block_index: int
    farm_index: int
    eligible: int
    planted: list[Planted] = field(default_factory=list)
    failed: list[PlantFailed] = field(default_factory=list)
    skipped_capacity: int = 0
    total_staked: int = 0
    xlm_fees: int = 0
    duration_ms: int = 0

    @property
    def newly_planted(self) -> int:
        return sum(1 for p in self.planted if not p.already_planted)

    @property
    def already_planted(self) -> int:
        return sum(1 for p in self.planted if p.already_planted)


@dataclass
class _Result:
    """One claimed farmer's outcome."""

    farmer: Farmer
    planted: Planted | None = None
    failure: Failure | None = None
    fee: int = 0
    block_index: int | None = None


async def plant_request(
    ops: ChainOps, *, pooler_id: uuid.UUID, block_index: int, capacity: int | None = None
) -> PlantReport:
    """Plant the pooler's farmers in ``block_index``; see the module docstring."""
    started = time.perf_counter()
    farm = await ops.chain.farm()  # nothing is attempted when the farm cannot be read
    landing = farm.index + 1 if farm.ripe else farm.index
    problem = _block_problem(block_index, farm)
    async with ops.db.transaction() as session:
        farmers = list(await repo.plantable_farmers(session, pooler_id=pooler_id))
        existing = await q.pails_for_plant_request(
            session, pooler_id=pooler_id, requested=block_index, landing=landing
        )
        if problem is not None:  # the open block's plants are not this request's answer
            existing = [
                p for p in existing if block_index in (p.requested_block_index, p.block_index)
            ]
        already_ids = {p.farmer_id for p in existing if p.state in q.PLANTED_STATES}
        known = {f.id for f in farmers}
        farmers += [
            f for fid in already_ids - known if (f := await repo.get_farmer(session, fid)) is not None
        ]
    by_id = {f.id: f for f in farmers}
    report = PlantReport(block_index, farm.index, eligible=len(known))
    already = _pick_planted(existing)

    candidates = [f for f in farmers if f.id in known and f.id not in already]
    if capacity is not None:
        room = max(0, capacity - len(already))
        for farmer in candidates[room:]:
            report.failed.append(
                PlantFailed(
                    farmer.id,
                    ErrorCode.OVER_CAPACITY,
                    f"beyond max_farmers_capacity={capacity}",
                    Attribution.POOLER,
                )
            )
        report.skipped_capacity = max(0, len(candidates) - room)
        candidates = candidates[:room]

    results: list[_Result] = []
    waiting: list[Pail] = []
    if problem is not None:
        results = [_Result(f, failure=problem) for f in candidates]
        if candidates:
            ops.metrics.plants.labels(result="refused").inc(len(candidates))
    elif candidates:
        claimant = claimant_id("plant")
        async with holding_claims(ops.db, claimant, ops.settings.claim_seconds):
            async with ops.db.transaction() as session:
                have_row = {p.farmer_id for p in existing}
                await q.insert_planting_pails(
                    session,
                    pooler_id=pooler_id,
                    farmer_ids=[f.id for f in candidates if f.id not in have_row],
                    block_index=landing,
                    requested=block_index,
                )
                claimed = await _claim(
                    ops, session, pooler_id, [f.id for f in candidates], block_index, landing, claimant
                )
                await q.bump_block_operation(
                    session, block_index=landing, pooler_id=pooler_id, stamps=["plant_requested_at"]
                )
            results = await _plant_claimed(ops, claimed, by_id)
            mine = {p.farmer_id for p in claimed}
            held = [f.id for f in candidates if f.id not in mine]
            if held:
                waiting = await _wait_for_holders(ops, pooler_id, held, block_index, landing)
                # What the other holder left behind (it died: its claim lapsed, or the
                # recovery worker marked the pail abandoned) is this request's to plant.
                now = await _db_now(ops)
                orphans = [p.farmer_id for p in waiting if _orphaned(p, now)]
                if orphans:
                    async with ops.db.transaction() as session:
                        again = await _claim(ops, session, pooler_id, orphans, block_index, landing, claimant)
                    log.info("plant request: took over orphaned pails", farmers=len(again))
                    results += await _plant_claimed(ops, again, by_id)
                    retaken = {p.farmer_id for p in again}
                    waiting = [p for p in waiting if p.farmer_id not in retaken]

    # farmers an earlier request planted, or another request planted meanwhile
    async with ops.db.transaction() as session:
        if waiting:
            for pail in await q.pails_by_ids(session, [p.id for p in waiting]):
                if pail.state in q.PLANTED_STATES:
                    already[pail.farmer_id] = pail
                else:
                    results.append(
                        _Result(
                            by_id[pail.farmer_id],
                            failure=Failure(
                                ErrorCode.PLANT_IN_PROGRESS,
                                "another request is planting this farmer; ask again shortly",
                                Attribution.BACKEND,
                            ),
                        )
                    )
        plantings = await q.successful_plantings(
            session, [(p.farmer_id, p.block_index) for p in already.values()]
        )
    for farmer_id, pail in already.items():
        known_farmer = by_id.get(farmer_id)
        row = plantings.get((farmer_id, pail.block_index))
        if known_farmer is None or row is None or row.entropy is None or row.tx_hash is None:
            continue
        report.planted.append(
            Planted(
                known_farmer.id,
                known_farmer.public_key,
                row.stake_amount,
                row.tx_hash,
                row.block_index,
                row.entropy,
                True,
            )
        )

    await _account(ops, pooler_id, report, results, landing, record=problem is None)
    answered = {p.farmer_id for p in report.planted} | {f.farmer_id for f in report.failed}
    for farmer in candidates:  # a claim that could not be taken nor waited for (never silent)
        if farmer.id not in answered:
            report.failed.append(
                PlantFailed(
                    farmer.id,
                    ErrorCode.PLANT_IN_PROGRESS,
                    "this farmer is being planted elsewhere",
                    Attribution.BACKEND,
                )
            )
    report.duration_ms = int((time.perf_counter() - started) * 1000)
    log.info(
        "plant request",
        pooler_id=str(pooler_id),
        block_index=block_index,
        farm_index=farm.index,
        planted=report.newly_planted,
        already_planted=report.already_planted,
        failed=len(report.failed),
        duration_ms=report.duration_ms,
    )
    return report


async def _claim(
    ops: ChainOps,
    session: AsyncSession,
    pooler_id: uuid.UUID,
    farmer_ids: list[uuid.UUID],
    requested: int,
    landing: int,
    claimant: str,
) -> list[Pail]:
    """Claim these farmers' plantable pails for ``claimant``, one per farmer."""
    claimed = await q.claim_for_planting(
        session,
        pooler_id=pooler_id,
        farmer_ids=farmer_ids,
        requested=requested,
        landing=landing,
        claimant=claimant,
        seconds=ops.settings.claim_seconds,
    )
    return await _one_per_farmer(session, claimed, landing)


async def _plant_claimed(
    ops: ChainOps, claimed: Sequence[Pail], by_id: dict[uuid.UUID, Farmer]
) -> list[_Result]:
    """Plant every claimed pail, ``backend.plant_concurrency`` at a time."""
    if not claimed:
        return []
    # the journal first: a pooler payout recorded between the two reads then lowers the
    # balance read after it too, and fee KALE is never counted as the farmer's own
    async with ops.db.transaction() as session:
        sums = await journal.kale_by_kind(session, [p.farmer_id for p in claimed])
    try:  # every account in a few batched reads (a failure: each plant reads its own)
        infos = await ops.chain.accounts([by_id[p.farmer_id].public_key for p in claimed])
    except ChainError:
        infos = {}
    return await bounded(
        ops.settings.plant_concurrency,
        claimed,
        lambda pail: _plant_one(
            ops,
            pail,
            by_id[pail.farmer_id],
            infos.get(by_id[pail.farmer_id].public_key),
            held=held_fees(sums[pail.farmer_id]),
        ),
    )


async def _wait_for_holders(
    ops: ChainOps, pooler_id: uuid.UUID, held: list[uuid.UUID], requested: int, landing: int
) -> list[Pail]:
    """Wait (``backend.in_progress_wait`` at most) for the pails of ``held`` farmers that
    another request or worker holds; return them as they are then."""
    async with ops.db.transaction() as session:
        rows = await q.pails_for_plant_request(
            session, pooler_id=pooler_id, requested=requested, landing=landing
        )
    waiting = [p for p in rows if p.farmer_id in held]
    await wait_released(
        ops.db,
        [p.id for p in waiting],
        timeout=ops.settings.in_progress_wait,
        busy=lambda state: state == PailState.PLANTING.value,
    )
    async with ops.db.transaction() as session:
        return list(await q.pails_by_ids(session, [p.id for p in waiting]))


async def _db_now(ops: ChainOps) -> datetime:
    async with ops.db.transaction() as session:
        return await q.db_now(session)


def _orphaned(pail: Pail, now: datetime) -> bool:
    """Left by a holder that died: still ``planting`` with a lapsed claim, or marked
    abandoned (never signed) by the recovery worker."""
    if pail.state == PailState.PLANTING.value:
        return pail.claimed_until is None or pail.claimed_until <= now
    return pail.state == PailState.PLANT_FAILED.value and pail.last_error == ABANDONED


def _pick_planted(pails: Sequence[Pail]) -> dict[uuid.UUID, Pail]:
    """One planted pail per farmer among an earlier request's (the newest block wins)."""
    out: dict[uuid.UUID, Pail] = {}
    for pail in sorted(pails, key=lambda p: p.block_index):
        if pail.state in q.PLANTED_STATES:
            out[pail.farmer_id] = pail
    return out


def _block_problem(requested: int, farm: FarmView) -> Failure | None:
    """Why ``requested`` cannot be planted now, saying what the farm's timing is: the
    ledger time, when the farm's block started and the interval after which it is ripe."""
    index = farm.index
    if farm.block_start is not None and farm.block_interval is not None:
        ripe_at = farm.block_start + farm.block_interval
        timing = (
            f"ledger time {farm.close_time}, block {index} started at {farm.block_start}, "
            f"interval {farm.block_interval} s: "
            + ("ripe since" if farm.ripe else f"ripe in {ripe_at - farm.close_time} s, at")
            + f" {ripe_at}"
        )
    else:
        timing = f"ledger time {farm.close_time}, block {index} " + ("ripe" if farm.ripe else "not ripe")
    if requested < index:
        return Failure(
            ErrorCode.STALE_BLOCK,
            f"block {requested} is over: the farm is at block {index} ({timing})",
            Attribution.POOLER,
        )
    if requested > index + 1 or (requested == index + 1 and not farm.ripe):
        opening = index + 1 if farm.ripe else index
        return Failure(
            ErrorCode.FUTURE_BLOCK,
            f"block {requested} is not open: a plant now lands in block {opening} ({timing})",
            Attribution.POOLER,
        )
    if farm.paused:
        return Failure(ErrorCode.FARM_PAUSED, "the farm is paused: nobody can plant", Attribution.CHAIN)
    return None


async def _one_per_farmer(session: AsyncSession, claimed: Sequence[Pail], landing: int) -> list[Pail]:
    """At most one claimed pail per farmer (the one in the landing block preferred)."""
    best: dict[uuid.UUID, Pail] = {}
    for pail in claimed:
        kept = best.get(pail.farmer_id)
        if kept is None or (pail.block_index == landing and kept.block_index != landing):
            best[pail.farmer_id] = pail
    keep = {p.id for p in best.values()}
    for pail in claimed:
        if pail.id not in keep:
            await q.release(session, pail.id)
    return list(best.values())


async def _plant_one(
    ops: ChainOps, pail: Pail, farmer: Farmer, account: AccountInfo | None = None, *, held: int = 0
) -> _Result:
    """Plant one claimed pail. ``held``: KALE of the custodial account that belongs to the
    pooler and the platform (fees not yet sent): never staked.

    A transient failure (:data:`TRANSIENT`: nothing was applied, nothing is in flight) is
    tried again, with a fresh transaction, while ``backend.plant_retry_seconds`` last."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ops.settings.plant_retry_seconds
    delay = RETRY_DELAY
    resume = True
    while True:
        try:
            outcome = await _send_plant(ops, pail, farmer, account, held=held, resume=resume)
            return await _record_planted(ops, pail, farmer, outcome)
        except ChainError as exc:
            if exc.code == ErrorCode.PAIL_EXISTS:
                return await _reconcile_existing(ops, pail, farmer, exc)
            if exc.code in TRANSIENT and loop.time() + delay < deadline:
                log.info("plant retried", farmer_id=str(farmer.id), error=exc.code, delay=delay)
                ops.metrics.chain_errors.labels(code=exc.code).inc()
                await asyncio.sleep(delay)
                delay = min(2 * delay, 4.0)
                account, resume = None, False  # read again; the failed envelope is dead
                continue
            in_doubt = isinstance(exc, ChainTxInDoubt)
            return await _record_failure(ops, pail, farmer, failure_of(exc), in_doubt=in_doubt)
        except q.ClaimLost:  # nothing was sent; the pail is the new holder's to record
            log.warning("plant dropped: the claim was taken over", farmer_id=str(farmer.id), pail_id=pail.id)
            taken = Failure(ErrorCode.PLANT_IN_PROGRESS, TAKEN_OVER, Attribution.BACKEND)
            return _Result(farmer, failure=taken)
        except Exception as exc:
            return await _record_failure(ops, pail, farmer, failure_of(exc), in_doubt=False)


async def _send_plant(
    ops: ChainOps, pail: Pail, farmer: Farmer, account: AccountInfo | None, *, held: int, resume: bool
) -> PlantOutcome:
    """The pail's plant on chain: its recorded envelope followed by hash (``resume``), or a
    new transaction signed after checking the account (its intent recorded first)."""
    if resume and pail.plant_tx_hash and pail.plant_envelope_xdr:
        try:
            resumed = await ops.chain.resume(pail.plant_tx_hash, pail.plant_envelope_xdr)
        except ChainTxExpired:
            resumed = None  # never applied: sign a new one
        if isinstance(resumed, PlantOutcome):
            return resumed
    if account is None:
        account = await ops.chain.account(farmer.public_key)
    if not account.exists:
        raise ChainError(
            f"the custodial account {farmer.public_key} does not exist on chain",
            code=ErrorCode.ACCOUNT_NOT_FOUND,
            attributed_to=Attribution.FARMER,
        )
    if account.kale_balance is None:
        raise ChainError(
            "the custodial account has no KALE trustline",
            code=ErrorCode.NO_TRUSTLINE,
            attributed_to=Attribution.FARMER,
        )
    if account.spendable_xlm < ops.settings.min_fee_xlm:
        raise ChainError(
            f"the custodial account has {account.spendable_xlm} stroops of spendable XLM; "
            f"{ops.settings.min_fee_xlm} are needed for fees",
            code=ErrorCode.INSUFFICIENT_XLM,
            attributed_to=Attribution.FARMER,
        )
    stake = stake_for(max(0, account.kale_balance - held), farmer.stake_bps)

    async def intent(tx_hash: str, envelope_xdr: str) -> None:
        async with ops.db.transaction() as session:
            await q.record_intent(session, pail, plant_tx_hash=tx_hash, plant_envelope_xdr=envelope_xdr)

    with ops.signer.keypair(farmer) as keypair:
        return await ops.chain.plant(keypair, stake, on_signed=intent)


async def _record_planted(
    ops: ChainOps,
    pail: Pail,
    farmer: Farmer,
    outcome: PlantOutcome,
    *,
    reconciled: bool = False,
    failed_tx: tuple[str, int] | None = None,
) -> _Result:
    """A plant that landed (or was found on chain): its event, journal lines and pail."""
    landed = outcome.block_index
    async with ops.db.transaction() as session:
        other = None
        if landed != pail.block_index:  # it landed in the next block: is a row there already?
            other = (await q.pails_of(session, [(farmer.id, landed)])).get((farmer.id, landed))
        duplicate = False
        if other is not None and other.id != pail.id:
            if other.state in q.PLANTED_STATES:
                await q.delete_pail(session, pail.id)  # the other row already tells this story
                duplicate = True
            else:
                await q.delete_pail(session, other.id)
        statement = (
            insert(Planting)
            .values(
                farmer_id=farmer.id,
                pooler_id=farmer.pooler_id,
                block_index=landed,
                status=EventStatus.SUCCEEDED.value,
                stake_amount=outcome.stake,
                tx_hash=outcome.tx_hash,
                entropy=outcome.entropy,
                fee_charged=outcome.fee_charged,
            )
            .on_conflict_do_nothing(
                index_elements=["farmer_id", "block_index"], index_where=text("status = 'succeeded'")
            )
            .returning(Planting.id)
        )
        inserted = (await session.execute(statement)).first() is not None
        entries = []
        if outcome.stake > 0:
            entries.append(
                journal.Entry.farmer(
                    farmer.id,
                    JournalKind.STAKE_BURNED,
                    -outcome.stake,
                    f"stake planted in block {landed} (tx {outcome.tx_hash})",
                    block_index=landed,
                )
            )
        fees = [(outcome.tx_hash, outcome.fee_charged)] + ([failed_tx] if failed_tx else [])
        for tx_hash, fee in fees:
            entries += journal.xlm_fee(
                farmer.id, fee, tx_hash, f"fee of a plant transaction, block {landed}", block_index=landed
            )
        await journal.record(session, entries)
        if not duplicate:
            await q.release(
                session,
                pail.id,
                state=PailState.PLANTED.value,
                block_index=landed,
                stake_amount=outcome.stake,
                plant_tx_hash=outcome.tx_hash,
                last_error=None,
            )
        if not inserted:
            row = (await q.successful_plantings(session, [(farmer.id, landed)]))[(farmer.id, landed)]
            outcome = PlantOutcome(
                row.tx_hash or "", landed, row.entropy or outcome.entropy, row.stake_amount
            )
    planted = Planted(
        farmer.id,
        farmer.public_key,
        outcome.stake,
        outcome.tx_hash,
        landed,
        outcome.entropy,
        already_planted=reconciled or not inserted,
    )
    fee = sum(f for _, f in fees if f > 0)
    if reconciled or not inserted:
        ops.metrics.plants.labels(result="reconciled").inc()
        return _Result(farmer, planted=planted, fee=fee, block_index=landed)
    ops.metrics.plants.labels(result="planted").inc()
    return _Result(farmer, planted=planted, fee=fee, block_index=landed)


async def _reconcile_existing(ops: ChainOps, pail: Pail, farmer: Farmer, error: ChainError) -> _Result:
    """``PailExists``: the farmer is planted in the current block already. Read that pail
    on chain and record it (our own earlier plant, found again), instead of failing."""
    failed_tx = (error.tx_hash, error.fee_charged) if error.tx_hash and error.fee_charged else None
    try:
        farm = await ops.chain.farm()
        found = (await ops.chain.pails([(farmer.public_key, farm.index)])).get(
            (farmer.public_key, farm.index)
        )
        entropy = await ops.chain.block_entropy(farm.index) if found is not None else None
    except ChainError as exc:
        return await _record_failure(ops, pail, farmer, failure_of(exc), in_doubt=False)
    if found is None or entropy is None:
        return await _record_failure(ops, pail, farmer, failure_of(error), in_doubt=False)
    log.info("plant reconciled: already planted on chain", farmer_id=str(farmer.id), block_index=farm.index)
    outcome = PlantOutcome(
        tx_hash=pail.plant_tx_hash or "unknown",
        block_index=farm.index,
        entropy=entropy,
        stake=found.stake,
    )
    return await _record_planted(ops, pail, farmer, outcome, reconciled=True, failed_tx=failed_tx)


async def _record_failure(
    ops: ChainOps, pail: Pail, farmer: Farmer, failure: Failure, *, in_doubt: bool
) -> _Result:
    async with ops.db.transaction() as session:
        if in_doubt:
            # sent, fate unknown: keep the envelope so the next claim resumes it by hash
            await q.release(session, pail.id, last_error=failure.code)
        else:
            session.add(
                Planting(
                    farmer_id=farmer.id,
                    pooler_id=farmer.pooler_id,
                    block_index=pail.block_index,
                    status=EventStatus.FAILED.value,
                    stake_amount=0,
                    tx_hash=failure.tx_hash,
                    fee_charged=failure.fee_charged or None,
                    error_code=failure.code,
                    error_message=failure.message[:1000],
                    attributed_to=failure.attributed_to.value,
                )
            )
            await journal.record(
                session,
                journal.xlm_fee(
                    farmer.id,
                    failure.fee_charged,
                    failure.tx_hash,
                    f"fee of a failed plant transaction ({failure.code})",
                    block_index=pail.block_index,
                ),
            )
            await q.release(
                session,
                pail.id,
                state=PailState.PLANT_FAILED.value,
                plant_tx_hash=None,
                plant_envelope_xdr=None,
                last_error=failure.code,
            )
    ops.metrics.plants.labels(result="failed").inc()
    ops.metrics.chain_errors.labels(code=failure.code).inc()
    return _Result(farmer, failure=failure, fee=failure.fee_charged, block_index=pail.block_index)


async def _account(
    ops: ChainOps,
    pooler_id: uuid.UUID,
    report: PlantReport,
    results: list[_Result],
    default_block: int,
    *,
    record: bool = True,
) -> None:
    """Fill the report from the results and (``record``) add them to ``block_operations``."""
    totals: dict[int, dict[str, int]] = {}
    entropies: dict[int, bytes] = {}
    for result in results:
        block = result.block_index if result.block_index is not None else default_block
        bucket = totals.setdefault(
            block, {"farmers_planted": 0, "farmers_failed": 0, "total_staked": 0, "xlm_fees": 0}
        )
        bucket["xlm_fees"] += result.fee
        report.xlm_fees += result.fee
        if result.planted is not None:
            report.planted.append(result.planted)
            entropies[block] = result.planted.entropy
            if not result.planted.already_planted:
                bucket["farmers_planted"] += 1
                bucket["total_staked"] += result.planted.stake_amount
                report.total_staked += result.planted.stake_amount
        elif result.failure is not None:
            f = result.failure
            report.failed.append(PlantFailed(result.farmer.id, f.code, f.message, f.attributed_to))
            if f.code != ErrorCode.PLANT_IN_PROGRESS:  # another request's farmer, not a failure here
                bucket["farmers_failed"] += 1
    if not totals or not record:
        return
    async with ops.db.transaction() as session:
        for block, counts in sorted(totals.items()):
            await q.bump_block_operation(
                session,
                block_index=block,
                pooler_id=pooler_id,
                entropy=entropies.get(block),
                stamps=["plant_completed_at"],
                **counts,
            )


# --- recovery (the auto-harvester runs it) -------------------------------------------------


async def recover_plantings(ops: ChainOps, *, limit: int = 500) -> int:
    """Settle ``planting`` pails whose claim lapsed (a crashed request, a transaction in
    doubt): one with a recorded envelope is resumed by hash and recorded (or failed, when
    it expired unapplied); one without was never signed and becomes ``plant_failed``.
    Nothing is signed here: planting anew is the pooler's call. Returns how many."""
    claimant = claimant_id("recover")
    async with ops.db.transaction() as session:
        query = (
            select(Pail)
            .where(Pail.state == PailState.PLANTING.value, q.claimable())
            .order_by(Pail.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        pails = list((await session.scalars(query)).all())
        for pail in pails:
            await q.set_pail(
                session,
                pail.id,
                claimed_by=claimant,
                claimed_until=func.clock_timestamp() + timedelta(seconds=ops.settings.claim_seconds),
            )
        farmers = {p.farmer_id: await repo.get_farmer(session, p.farmer_id) for p in pails}

    async def settle(pail: Pail) -> None:
        farmer = farmers[pail.farmer_id]
        assert farmer is not None
        if not (pail.plant_tx_hash and pail.plant_envelope_xdr):
            await _record_failure(
                ops,
                pail,
                farmer,
                Failure(
                    ABANDONED, "the request planting this farmer ended before signing", Attribution.BACKEND
                ),
                in_doubt=False,
            )
            return
        try:
            outcome = await ops.chain.resume(pail.plant_tx_hash, pail.plant_envelope_xdr)
        except ChainError as exc:
            if exc.code == ErrorCode.PAIL_EXISTS:
                await _reconcile_existing(ops, pail, farmer, exc)
            else:
                await _record_failure(
                    ops, pail, farmer, failure_of(exc), in_doubt=isinstance(exc, ChainTxInDoubt)
                )
            return
        if isinstance(outcome, PlantOutcome):
            await _record_planted(ops, pail, farmer, outcome)

    async with holding_claims(ops.db, claimant, ops.settings.claim_seconds):
        await bounded(ops.settings.plant_concurrency, pails, settle)
    return len(pails)
