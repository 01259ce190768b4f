"""The read-only services behind the dashboard: per-block statistics, a farmer's statement,
failures blamed on a pooler, alerts. Real PostgreSQL (a database of the test's own: they
read whole tables), rows written as the chain-facing services write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from kalepool.backend import journal
from kalepool.backend.chain import ChainUnavailable
from kalepool.backend.db.models import Farmer, Pail, Pooler, PoolerCompensation
from kalepool.backend.db.session import Database
from kalepool.backend.enums import EventStatus, JournalKind, WorkStatus
from kalepool.backend.services import stats
from kalepool.backend.services.alerts import alerts
from kalepool.backend.services.reconcile import Mismatch, ReconcileReport, ReconcileStatus
from tests.backend import factories
from tests.backend.fakes import FakeChain

KALE = 10_000_000


def split(farmer: Farmer, block: int, reward: int, pooler_fee: int, platform_fee: int) -> list[journal.Entry]:
    return [
        journal.Entry.farmer(farmer.id, JournalKind.REWARD, reward, "reward", block_index=block),
        journal.Entry.farmer(farmer.id, JournalKind.POOLER_FEE, -pooler_fee, "pooler fee", block_index=block),
        journal.Entry.farmer(farmer.id, JournalKind.PLATFORM_FEE, -platform_fee, "fee", block_index=block),
    ]


async def test_block_statistics_of_a_pooler_and_a_farmers_statement(fresh_db: Database) -> None:
    async with fresh_db.transaction() as s:
        mine, theirs = await factories.pooler(s), await factories.pooler(s)
        a, b = await factories.farmer(s, mine.id), await factories.farmer(s, mine.id)
        other = await factories.farmer(s, theirs.id)
        for f, state in ((a, "harvested"), (b, "harvested"), (other, "harvested")):
            s.add(
                Pail(farmer_id=f.id, pooler_id=f.pooler_id, block_index=10, state=state, stake_amount=1_000)
            )
        s.add(Pail(farmer_id=a.id, pooler_id=mine.id, block_index=11, state="planted", stake_amount=1_000))
        s.add(Pail(farmer_id=b.id, pooler_id=mine.id, block_index=11, state="plant_failed"))
        s.add_all([factories.planting(f, 10) for f in (a, b, other)])
        s.add_all([factories.planting(a, 11), factories.planting(b, 11, EventStatus.FAILED)])
        works = [factories.work(f, 10) for f in (a, b, other)]
        works[0].zeros, works[1].zeros, works[2].zeros = 6, 9, 20
        s.add_all(works)
        s.add_all([factories.harvest(f, 10) for f in (a, b, other)])
        await journal.record(s, split(a, 10, 100 * KALE, 10 * KALE, KALE))
        await journal.record(s, split(b, 10, 50 * KALE, 5 * KALE, KALE // 2))
        await journal.record(s, split(other, 10, 999 * KALE, 0 + 1, 1))
    blocks = await stats.recent_blocks(fresh_db, pooler_id=mine.id)
    assert [b.index for b in blocks] == [11, 10]
    newest, done = blocks
    assert (newest.planted, newest.plant_failed, newest.worked, newest.harvested) == (1, 1, 0, 0)
    assert (done.planted, done.worked, done.harvested, done.zeros_min, done.zeros_max) == (2, 2, 2, 6, 9)
    assert (done.staked, done.reward, done.pooler_fees, done.platform_fees) == (
        2_000,
        150 * KALE,
        15 * KALE,
        KALE + KALE // 2,
    )
    whole = {b.index: b for b in await stats.recent_blocks(fresh_db)}
    assert (whole[10].planted, whole[10].reward, whole[10].zeros_max) == (3, 1149 * KALE, 20)

    statement = await stats.farmer_blocks(fresh_db, farmer_id=a.id)
    assert [(x.index, x.state) for x in statement] == [(11, "planted"), (10, "harvested")]
    line = statement[1]
    assert (line.stake, line.zeros, line.gap, line.reward, line.pooler_fee, line.platform_fee) == (
        1_000,
        6,
        20,
        100 * KALE,
        10 * KALE,
        KALE,
    )
    assert line.net == 89 * KALE and statement[0].net == 0


async def test_failures_blamed_on_a_pooler(fresh_db: Database) -> None:
    async with fresh_db.transaction() as s:
        pooler = await factories.pooler(s)
        f = await factories.farmer(s, pooler.id)
        chain_fault = factories.planting(f, 5, EventStatus.FAILED)  # attributed to the chain
        late = factories.planting(f, 6, EventStatus.FAILED)
        late.error_code, late.attributed_to = "stale_block", "pooler"
        s.add_all([chain_fault, late, factories.work(f, 7, WorkStatus.REJECTED)])
        s.add(
            PoolerCompensation(
                pooler_id=pooler.id, farmer_id=f.id, block_index=8, reason="not_worked", amount=5
            )
        )
    found = await stats.failures(fresh_db, pooler_id=pooler.id)
    assert sorted((x.block_index, x.action, x.code) for x in found) == [
        (6, "plant", "stale_block"),
        (7, "work", "hash_mismatch"),
        (8, "compensation", "not_worked"),
    ]
    counts = {(c.attributed_to, c.action): c.count for c in await stats.failure_counts(fresh_db)}
    assert counts == {("chain", "plant"): 1, ("pooler", "plant"): 1, ("pooler", "work"): 1}


async def test_alerts_name_what_needs_the_operator(fresh_db: Database) -> None:
    chain = FakeChain(latest_ledger=5_000)
    async with fresh_db.transaction() as s:
        quiet = await factories.pooler(s, name="quiet")
        alive = await factories.pooler(s, name="alive")
        await s.execute(
            update(Pooler).where(Pooler.id == alive.id).values(last_heartbeat_at=datetime.now(UTC))
        )
        await s.execute(
            update(Pooler)
            .where(Pooler.id == quiet.id)
            .values(last_heartbeat_at=datetime.now(UTC) - timedelta(minutes=10))
        )
        poor, rich, waiting = [await factories.farmer(s, alive.id) for _ in range(3)]
        for f in (poor, rich):
            await s.execute(update(Farmer).where(Farmer.id == f.id).values(funding_state="ready"))
        s.add(
            Pail(
                farmer_id=rich.id, pooler_id=alive.id, block_index=3, state="worked", live_until_ledger=5_100
            )
        )
        s.add(
            Pail(
                farmer_id=poor.id, pooler_id=alive.id, block_index=3, state="worked", live_until_ledger=90_000
            )
        )
    chain.fund(poor.public_key, xlm=10_500_000)  # 0.05 XLM spendable over its 1 XLM reserve
    chain.fund(rich.public_key, xlm=500_000_000)
    status = ReconcileStatus(ReconcileReport(mismatches=[Mismatch(uuid.uuid4(), "GDIFF", 10, 25)]))
    found = await alerts(fresh_db, chain, status, min_fee_xlm=1_000_000, offline_after=180)
    kinds = {(a.kind, a.subject) for a in found}
    assert ("pail_expiring", "block 3") in kinds and "expires in 100 ledgers" in str(found)
    assert [a.farmer_id for a in found if a.kind == "pail_expiring"] == [rich.id]
    assert [a.subject for a in found if a.kind == "low_xlm"] == [poor.public_key]
    assert [a.subject for a in found if a.kind == "not_ready"] == [waiting.public_key]
    assert [a.subject for a in found if a.kind == "pooler_offline"] == ["quiet"]
    assert [a.detail for a in found if a.kind == "reconciliation"] == [
        "on chain 10, journal 25 (difference -15 stroops)"
    ]
    chain.fail_next = ChainUnavailable("down")
    degraded = await alerts(fresh_db, chain, ReconcileStatus(), min_fee_xlm=1_000_000, offline_after=180)
    assert degraded[0].kind == "chain" and not [a for a in degraded if a.kind == "low_xlm"]
