"""The pool end to end: real PostgreSQL, the devnet, the backend and poolers as processes.

One cluster serves the whole module (12 s blocks, 1 s ledgers); each test registers its
own pooler and farmers through the HTTP API, so the tests follow one another on the
same chain. Faults are injected at the devnet (RPC errors, stalls, rewritten entries)
or by killing processes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from kalepool.demo import Cluster
from kalepool.demo.runner import build_report, roll_over_when_ripe

from .conftest import INTERVAL, Faults
from .helpers import (
    close_and_harvest,
    drain_xlm,
    expire_pail,
    fresh_pool,
    friendbot_closer,
    rows,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def no_double_work(faults: Faults, farmers: set[str], since: float) -> None:
    """Never two transactions for the same (farmer, hash): a restart re-sends an envelope
    at most, it never signs a work again."""
    works = faults.calls("work", farmers, since)
    signed = Counter((s.farmer, s.hash) for s in {s.tx_hash: s for s in works}.values())
    assert signed and max(signed.values()) == 1, signed


async def test_a_farmer_without_xlm_fails_alone(cluster: Cluster, faults: Faults) -> None:
    """Its plant fails, attributed to the farmer; the others plant, work and harvest.
    (Three blocks in a row: ``tests/demo/test_demo_cli.py`` runs the demo over three.)"""
    since = time.monotonic()
    pool = await fresh_pool(cluster, 4, deposits=(100, 0, 250, 500), stakes=(100, 0, 50, 25))
    broke = pool.farmers[3]
    drain_xlm(cluster, broke.custodial_wallet)
    cluster.start_pooler(pool.poolers[0], blocks=1, threads=1)
    try:
        await close_and_harvest(pool, 1)
        report = await build_report(pool, blocks_wanted=1, problems=[], started=since)
    finally:
        await pool.close()
    assert len(report.blocks) == 1
    for block in report.blocks:
        assert (block.planted, block.worked, block.harvested) == (3, 3, 3), block
        assert block.plant_failed >= 1 and block.reward_total > 0
    assert report.reconciled, report.differences
    failed = rows(
        cluster,
        "select distinct error_code, attributed_to from plantings where farmer_id = %s and status = 'failed'",
        broke.farmer_id,
    )
    assert failed == [("insufficient_xlm", "farmer")]
    assert not rows(
        cluster, "select 1 from plantings where farmer_id = %s and status = 'succeeded'", broke.farmer_id
    )
    no_double_work(faults, {f.custodial_wallet for f in pool.farmers}, since)


async def test_pooler_killed_mid_block_resumes_without_double_work(cluster: Cluster, faults: Faults) -> None:
    since = time.monotonic()
    pool = await fresh_pool(cluster, 3, deposits=(100, 200, 0), stakes=(50, 100, 0))
    pooler = pool.poolers[0]
    try:
        # a whole block to mine in (no late plant), room for an early work before the final
        room = {"min_mine_seconds": 6, "work_margin_ledgers": 2}
        cluster.start_pooler(pooler, blocks=1, threads=1, **room)
        early = await wait_for(pooler, "pooler.work_applied", lambda e: e.get("early") is True)
        cluster.stop_pooler(pooler, kill=True)  # SIGKILL: only the state file survives
        index = early["block_index"]
        cluster.start_pooler(pooler, blocks=1, threads=1, **room)
        started = await wait_for(pooler, "pooler.started", lambda e: e.get("resumed_blocks") == [index])
        assert started
        await close_and_harvest(pool, 1)
        report = await build_report(pool, blocks_wanted=1, problems=[], started=since)
    finally:
        await pool.close()
    assert [b.index for b in report.blocks] == [index]
    assert (report.blocks[0].planted, report.blocks[0].worked, report.blocks[0].harvested) == (3, 3, 3)
    assert pooler.count("pooler.plant_request") == 1  # the restart did not ask again
    no_double_work(faults, {f.custodial_wallet for f in pool.farmers}, since)
    assert report.reconciled, report.differences


async def test_a_work_that_misses_the_block_is_compensated(cluster: Cluster, faults: Faults) -> None:
    pool = await fresh_pool(cluster, 2, deposits=(100, 300), stakes=(100, 50))
    pooler = pool.poolers[0]
    try:
        cluster.start_pooler(pooler, blocks=1, threads=1)
        mining = await wait_for(pooler, "pooler.mining")
        cluster.stop_pooler(pooler, kill=True)  # before any work
        index = mining["block_index"]
        # the block closes without our works: someone else rolls the farm over
        closer = await friendbot_closer(cluster)
        await roll_over_when_ripe(pool.gateway, INTERVAL, closer, timeout=3 * INTERVAL)
        cluster.start_pooler(pooler, blocks=1, threads=1)
        code = await asyncio.to_thread(cluster.wait_pooler, pooler, 4 * INTERVAL)
        assert code == 0
    finally:
        await pool.close()
    owed = rows(
        cluster,
        "select farmer_id::text, reason, amount from pooler_compensations "
        "where pooler_id = %s and block_index = %s",
        pooler.pooler_id,
        index,
    )
    stakes = {f.farmer_id: f.deposit * int(f.stake_percentage) // 100 for f in pool.farmers}
    assert sorted(owed) == sorted((f, "not_worked", stake) for f, stake in stakes.items())
    journal = rows(
        cluster,
        "select sum(amount) from balance_changes where pooler_id = %s and kind = 'compensation_owed'",
        pooler.pooler_id,
    )
    assert journal == [(-sum(stakes.values()),)]


async def test_an_expired_pail_is_recorded_as_lost(cluster: Cluster, faults: Faults) -> None:
    since = time.monotonic()
    pool = await fresh_pool(cluster, 2, deposits=(100, 100), stakes=(100, 100))
    pooler = pool.poolers[0]
    lost = pool.farmers[0]
    try:
        cluster.start_pooler(pooler, blocks=1, threads=1, harvest_attempts=1)
        reported = await wait_for(pooler, "pooler.reported")
        index = reported["block_index"]
        expire_pail(cluster, lost.custodial_wallet, index)
        await close_and_harvest(pool, 1)
        report = await build_report(pool, blocks_wanted=1, problems=[], started=since)
    finally:
        await pool.close()
    states = dict(
        rows(cluster, "select farmer_id::text, state from pails where block_index = %s and pooler_id = %s",
             index, pooler.pooler_id)
    )
    assert states[lost.farmer_id] == "lost"
    assert states[pool.farmers[1].farmer_id] == "harvested"
    errors = rows(cluster, "select error_code from harvests where farmer_id = %s and block_index = %s",
                  lost.farmer_id, index)
    assert errors and all(e in ("pail_expired", "pail_missing", "block_missing") for (e,) in errors)
    assert report.reconciled, report.differences  # the burnt stake is gone on both sides


async def test_rpc_errors_and_timeouts_for_a_while(cluster: Cluster, faults: Faults) -> None:
    since = time.monotonic()
    pool = await fresh_pool(cluster, 2, deposits=(100, 0), stakes=(50, 0))
    pooler = pool.poolers[0]
    try:
        cluster.start_pooler(pooler, blocks=1, threads=1)
        await wait_for(pooler, "pooler.new_block")  # watching the farm
        faults.errors_for(4.0)  # every RPC call fails...
        await asyncio.sleep(4.0)
        faults.stall_for(1.0, stall=6.0)  # ...then the RPC hangs past the clients' 5 s timeouts
        await close_and_harvest(pool, 1, timeout=8 * INTERVAL)
        report = await build_report(pool, blocks_wanted=1, problems=[], started=since)
    finally:
        faults.mode = None
        await pool.close()
    assert faults.injected > 0
    assert pooler.count("pooler.farm_read_failed") >= 1
    assert len(report.blocks) == 1 and report.blocks[0].complete, report.blocks
    new_blocks = [e["block_index"] for e in pooler.events if e.get("event") == "pooler.new_block"]
    assert new_blocks == sorted(set(new_blocks))  # no block reported twice or going back
    assert not rows(
        cluster,
        "select 1 from plantings p join farmers f on f.id = p.farmer_id "
        "where f.pooler_id = %s and p.error_code = 'future_block'",
        pooler.pooler_id,
    )
    assert report.reconciled, report.differences


async def test_backend_restarted_during_a_plant_fan_out(cluster: Cluster, faults: Faults) -> None:
    since = time.monotonic()
    slow = {
        "KALEPOOL_BACKEND__PLANT_CONCURRENCY": "1",  # a slow fan-out, to be cut in the middle
        "KALEPOOL_BACKEND__CLAIM_SECONDS": "6",  # a dead process's claims lapse soon
    }
    cluster.stop_backend()
    cluster.extra_backend_env.update(slow)
    cluster.start_backend()
    pool = await fresh_pool(cluster, 5, deposits=(100, 100, 100, 100, 100), stakes=(10, 20, 30, 40, 50))
    farmers = {f.custodial_wallet for f in pool.farmers}
    pooler = pool.poolers[0]
    try:
        cluster.start_pooler(pooler, blocks=1, threads=1)
        deadline = time.monotonic() + 3 * INTERVAL
        while len(faults.calls("plant", farmers, since)) < 2:
            assert time.monotonic() < deadline, "the fan-out did not start"
            await asyncio.sleep(0.05)
        cluster.stop_backend(kill=True)  # mid fan-out: SIGKILL
        del cluster.extra_backend_env["KALEPOOL_BACKEND__PLANT_CONCURRENCY"]
        cluster.start_backend()
        await close_and_harvest(pool, 1, timeout=8 * INTERVAL)
        report = await build_report(pool, blocks_wanted=1, problems=[], started=since)
    finally:
        await pool.close()
        cluster.extra_backend_env.pop("KALEPOOL_BACKEND__CLAIM_SECONDS", None)
        cluster.stop_backend()
        cluster.start_backend()
    # nobody planted twice: one plant transaction signed per farmer, one success recorded
    plants = faults.calls("plant", farmers, since)
    per_farmer = Counter(s.farmer for s in {s.tx_hash: s for s in plants}.values())
    assert per_farmer and max(per_farmer.values()) == 1, per_farmer
    planted = rows(
        cluster,
        "select farmer_id::text, block_index, count(*) from plantings where status = 'succeeded' "
        "and pooler_id = %s group by farmer_id, block_index",
        pooler.pooler_id,
    )
    assert planted and all(n == 1 for _, _, n in planted)
    assert len({f for f, _, _ in planted}) == len(planted)  # one block each
    # every farmer planted was worked and harvested (or, if it came too late, compensated)
    for block in report.blocks:
        assert block.worked + (1 if block.compensation else 0) >= 1
        assert block.harvested == block.worked
    assert report.reconciled, report.differences
