"""A documented deployment under load: the API and ``kalepool backend workers`` apart.

    .venv/bin/python -m benchmarks.deployment_bench [--farmers 8] [--blocks 17]
        [--block-interval 24] [--ledger-seconds 1] [--payout-interval 3] [--json]

``kalepool backend serve`` with its workers off plants and harvests for the pooler; a
``kalepool backend workers`` process beside it (on the same PostgreSQL) pays every farmer
out every few seconds and runs the auto-harvester and the reconciler, so both processes
sign for the same custodial accounts all the time. One ``kalepool pooler run --blocks K``
works the blocks. Printed: farmer-blocks expected, planted, worked and harvested (from the
backend's event tables), the ones missed, failed plantings by code, confirmed payouts,
and whether journal and chain reconcile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from kalepool.demo.cluster import Cluster
from kalepool.demo.runner import build_report, run_blocks, setup_pool, wait_harvested


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    cluster = Cluster(
        block_interval=args.block_interval,
        ledger_seconds=args.ledger_seconds,
        work_dir=Path(args.work_dir) / time.strftime("deployment-%Y%m%d-%H%M%S") if args.work_dir else None,
        backend_env={"KALEPOOL_BACKEND__WORKERS": "false"},
    )
    workers_env = {
        "KALEPOOL_BACKEND__PAYOUT_INTERVAL": str(args.payout_interval),
        "KALEPOOL_BACKEND__PAYOUT_MIN_AMOUNT": "1",
        "KALEPOOL_BACKEND__FEE_PAYOUT_MIN_SOURCE": "1",
    }
    try:
        await asyncio.to_thread(cluster.start_database)
        cluster.start_devnet()
        await asyncio.to_thread(cluster.start_backend)
        pool = await setup_pool(cluster, farmers=args.farmers, poolers=1, progress=_say(started))
        cluster.start_workers(workers_env)
        _say(started)(f"workers process started (payouts every {args.payout_interval} s)")
        problems = await run_blocks(
            pool,
            blocks=args.blocks,
            threads=args.threads,
            progress=_say(started),
            timeout=(args.blocks + 4) * args.block_interval * 2,
        )
        await wait_harvested(pool, timeout=3 * args.block_interval)
        report = await build_report(pool, blocks_wanted=args.blocks, problems=problems, started=started)
        await pool.close()
        ids = [f.farmer_id for f in pool.farmers]
        pooler = pool.poolers[0]
        blocks = sorted({e["block_index"] for e in pooler.events if e.get("event") == "pooler.reported"})
        counts = {}
        for table, status in (("plantings", "succeeded"), ("works", "accepted"), ("harvests", "succeeded")):
            (row,) = cluster.query(
                f"select count(distinct (farmer_id, block_index)) from {table} where status = %s"
                " and farmer_id::text = any(%s) and block_index = any(%s)",
                status,
                ids,
                blocks,
            )
            counts[table] = int(row[0])
        failed = dict(
            cluster.query(
                "select error_code, count(*) from plantings where status = 'failed'"
                " and farmer_id::text = any(%s) group by error_code",
                ids,
            )
        )
        (paid,) = cluster.query(
            "select count(*) from payouts where status = 'confirmed' and farmer_id::text = any(%s)",
            ids,
        )
    finally:
        await asyncio.to_thread(cluster.stop)
    expected = len(ids) * len(blocks)
    return {
        "farmers": args.farmers,
        "blocks": len(blocks),
        "block_interval": args.block_interval,
        "farmer_blocks": expected,
        "planted": counts["plantings"],
        "worked": counts["works"],
        "harvested": counts["harvests"],
        "missed": expected - counts["plantings"],
        "failed_plantings": {str(k): int(v) for k, v in failed.items()},
        "payouts_confirmed": int(paid[0]),
        "reconciled": report.reconciled,
        "problems": report.problems,
        "wall_seconds": round(time.monotonic() - started, 1),
    }


def _say(started: float) -> Any:
    def say(text: str) -> None:
        print(f"{time.monotonic() - started:7.1f}s {text}", flush=True)

    return say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--farmers", type=int, default=8)
    parser.add_argument("--blocks", type=int, default=17)
    parser.add_argument("--block-interval", type=int, default=24)
    parser.add_argument("--ledger-seconds", type=float, default=1.0)
    parser.add_argument("--payout-interval", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work-dir", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"\ndeployment: {result['farmers']} farmers x {result['blocks']} blocks of "
            f"{result['block_interval']} s, workers apart, payouts every {args.payout_interval:g} s"
        )
        for key in ("farmer_blocks", "planted", "worked", "harvested", "missed", "payouts_confirmed"):
            print(f"  {key.replace('_', ' ')}: {result[key]}")
        print(f"  failed plantings by code: {result['failed_plantings'] or 'none'}")
        print(f"  reconciled (journal = chain): {result['reconciled']}")
        for problem in result["problems"]:
            print(f"  problem: {problem}")
    ok = result["missed"] == 0 and result["worked"] == result["harvested"] == result["farmer_blocks"]
    return 0 if ok and result["reconciled"] else 1


if __name__ == "__main__":
    sys.exit(main())
