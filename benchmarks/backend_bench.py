"""Backend figures on a real PostgreSQL (``$KALEPOOL_TEST_DATABASE_URL``, else embedded).

    .venv/bin/python -m benchmarks.backend_bench [--farmers 300] [--concurrency 16]
                                                 [--journal-rows 100000] [--json]

* **register**: ``POST /api/v1/farmers`` through the whole app in-process (ASGI, no
  sockets): keypair generation, AES-GCM sealing, capacity check under a row lock, two
  inserts, one commit. Requests/s and latency percentiles.
* **read**: ``GET /api/v1/farmers/{id}`` (auth lookup, balances from the journal, recent
  events) for the registered farmers.
* **journal**: recording ``--journal-rows`` lines for one farmer in batches of 1,000
  (``INSERT ... ON CONFLICT DO NOTHING``), replaying one batch (all conflicts), and the
  time of that farmer's balance (a ``SUM`` answered from the covering index).

A fresh database is created, migrated, and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from stellar_sdk import Keypair

from kalepool.backend import journal
from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import UnavailableChain
from kalepool.backend.custody import Keyring
from kalepool.backend.db import migrate
from kalepool.backend.db.session import Database
from kalepool.backend.enums import JournalKind
from kalepool.backend.logs import configure_logging
from kalepool.settings import BackendSettings
from kalepool.testing import postgres

ADMIN = "benchmark-admin-token-0123456789"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "p50_ms": round(pick(0.50), 2),
        "p95_ms": round(pick(0.95), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


async def _timed_many(count: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> dict[str, Any]:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            start = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - start
    return {"requests": count, "per_second": round(count / elapsed, 1), **_percentiles(latencies)}


async def run(farmers: int, concurrency: int, journal_rows: int, url: str) -> dict[str, Any]:
    db = Database(url, pool_size=concurrency)
    settings = BackendSettings(
        admin_token=ADMIN,
        rate_limit_rps=1e9,
        rate_limit_burst=10**9,
        anonymous_rate_limit_rps=1e9,
        anonymous_rate_limit_burst=10**9,
    )
    context = BackendContext.build(
        settings, db=db, chain=UnavailableChain(), keyring=Keyring([os.urandom(32)])
    )
    transport = httpx.ASGITransport(app=create_app(context))
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        created = await client.post(
            "/api/v1/poolers", json={"name": "bench"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        pooler_id = created.json()["pooler"]["pooler_id"]
        registered: list[dict[str, Any]] = []

        async def register(_: int) -> None:
            body = {
                "pooler_id": pooler_id,
                "payout_wallet": Keypair.random().public_key,
                "stake_percentage": 50,
            }
            response = await client.post("/api/v1/farmers", json=body)
            assert response.status_code == 201, response.text
            registered.append(response.json())

        results["register"] = await _timed_many(farmers, concurrency, register)

        async def read(i: int) -> None:
            farmer = registered[i % len(registered)]
            response = await client.get(
                f"/api/v1/farmers/{farmer['farmer_id']}",
                headers={"Authorization": f"Bearer {farmer['farmer_token']}"},
            )
            assert response.status_code == 200, response.text

        results["read"] = await _timed_many(farmers, concurrency, read)

    farmer_id = uuid.UUID(registered[0]["farmer_id"])
    batch = 1000

    def entries(first: int) -> list[journal.Entry]:
        return [
            journal.Entry.farmer(farmer_id, JournalKind.REWARD, 1 + (i % 7), "bench", block_index=i)
            for i in range(first, min(first + batch, journal_rows))
        ]

    start = time.perf_counter()
    for first in range(0, journal_rows, batch):
        async with db.transaction() as session:
            await journal.record(session, entries(first))
    insert_s = time.perf_counter() - start
    start = time.perf_counter()
    async with db.transaction() as session:
        replayed = await journal.record(session, entries(0))
    replay_s = time.perf_counter() - start
    timings = []
    for _ in range(20):
        start = time.perf_counter()
        async with db.transaction() as session:
            balances = await journal.farmer_balances(session, farmer_id)
        timings.append(time.perf_counter() - start)
    results["journal"] = {
        "rows": journal_rows,
        "insert_rows_per_second": round(journal_rows / insert_s),
        "replayed_batch_new_rows": replayed,
        "replay_batch_ms": round(replay_s * 1000, 1),
        "balance_ms": _percentiles(timings),
        "balance": sum(balances.net.values()),
    }
    await db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--farmers", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--journal-rows", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    configure_logging("WARNING")
    server = postgres.test_database_url()
    url = postgres.create_database(server)
    try:
        migrate.upgrade(url)
        results = asyncio.run(run(args.farmers, args.concurrency, args.journal_rows, url))
    finally:
        postgres.drop_database(server, url.rsplit("/", 1)[1])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        print(f"{name}:")
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
