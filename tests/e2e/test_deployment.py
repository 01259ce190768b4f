"""A documented deployment: the API and ``kalepool backend workers`` as separate processes.

Both sign for the same custodial accounts: the API plants and harvests for the pooler,
the workers process pays the farmers out every second (and harvests what the pooler
leaves). Each process caches sequence numbers; before the per-account lock and the
rebuild on ``txBAD_SEQ``, a plant sent right after a payout from the same account was
refused and the farmer missed the block. Now every farmer is planted, worked and
harvested in every block, while payouts land in between.
"""

from __future__ import annotations

import pytest

from kalepool.demo import Cluster

from .conftest import INTERVAL, Faults
from .helpers import close_and_harvest, fresh_pool, rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BLOCKS = 4
WORKERS_ENV = {
    "KALEPOOL_BACKEND__PAYOUT_INTERVAL": "1",
    "KALEPOOL_BACKEND__PAYOUT_MIN_AMOUNT": "1",
    "KALEPOOL_BACKEND__FEE_PAYOUT_MIN_SOURCE": "1",
    "KALEPOOL_BACKEND__HARVEST_INTERVAL": "2",
}


async def test_a_workers_process_paying_every_second_costs_no_farmer_a_block(
    cluster: Cluster, faults: Faults
) -> None:
    pool = await fresh_pool(cluster, 4, deposits=(100, 200, 300, 400), stakes=(50, 50, 50, 50))
    pooler = pool.poolers[0]
    ids = [f.farmer_id for f in pool.farmers]
    cluster.start_workers(WORKERS_ENV)
    try:
        cluster.start_pooler(pooler, blocks=BLOCKS, threads=1)
        await close_and_harvest(pool, BLOCKS, timeout=(BLOCKS + 5) * INTERVAL)
    finally:
        cluster.stop_workers()
        await pool.close()
    blocks = sorted({e["block_index"] for e in pooler.events if e.get("event") == "pooler.reported"})
    assert len(blocks) == BLOCKS
    every = {(f, b) for f in ids for b in blocks}
    planted = rows(
        cluster,
        "select farmer_id::text, block_index from plantings where status = 'succeeded'"
        " and farmer_id::text = any(%s)",
        ids,
    )
    worked = rows(
        cluster,
        "select farmer_id::text, block_index from works where status = 'accepted'"
        " and farmer_id::text = any(%s)",
        ids,
    )
    harvested = rows(
        cluster,
        "select farmer_id::text, block_index from harvests where status = 'succeeded'"
        " and farmer_id::text = any(%s)",
        ids,
    )
    assert every <= set(planted), sorted(every - set(planted))
    assert every <= set(worked), sorted(every - set(worked))
    assert every <= set(harvested), sorted(every - set(harvested))
    failed = rows(
        cluster,
        "select error_code, count(*) from plantings where status = 'failed' and farmer_id::text = any(%s)"
        " group by error_code",
        ids,
    )
    assert failed == []
    (paid,) = rows(
        cluster,
        "select count(*) from payouts where status = 'confirmed' and farmer_id::text = any(%s)",
        ids,
    )
    assert paid[0] >= len(ids)  # the payouts did run between the blocks, from the same accounts
