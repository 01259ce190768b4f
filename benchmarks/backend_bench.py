"""Backend figures on a real PostgreSQL (``$KALEPOOL_TEST_DATABASE_URL``, else embedded).

    .venv/bin/python -m benchmarks.backend_bench [--farmers 300] [--concurrency 16]
                                                 [--journal-rows 100000]
                                                 [--plant-farmers 500] [--plant-concurrency 16]
                                                 [--json]

* **register**: ``POST /api/v1/farmers`` through the whole app in-process (ASGI, no
  sockets): keypair generation, AES-GCM sealing, capacity check under a row lock, two
  inserts, one commit. Requests/s and latency percentiles.
* **read**: ``GET /api/v1/farmers/{id}`` (auth lookup, balances from the journal, recent
  events) for the registered farmers.
* **journal**: recording ``--journal-rows`` lines for one farmer in batches of 1,000
  (``INSERT ... ON CONFLICT DO NOTHING``), replaying one batch (all conflicts), and the
  time of that farmer's balance (a ``SUM`` answered from the covering index).

* **plant**: ``POST /api/v1/pooler/plant-request`` for ``--plant-farmers`` ready farmers
  against an in-process devnet (the real gateway over HTTP; a ledger is closed whenever a
  transaction is queued, as a network would every 5 s): wall time and plants/s, with
  ``backend.plant_concurrency`` = ``--plant-concurrency``.
* **read_under_load**: ``GET /api/v1/farmers/{id}`` p50/p99 while that plant-request runs
  (``--readers`` loops), next to the same reads on an idle backend (``read_idle``).

Everything runs in one process on this machine's cores: the devnet, the backend and the
clients compete for the CPU, so the figures are a floor for a real deployment.
A fresh database is created, migrated, and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from stellar_sdk import Keypair

from kalepool.backend import journal
from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import Chain, UnavailableChain
from kalepool.backend.custody import Keyring
from kalepool.backend.db import embedded, migrate
from kalepool.backend.db.session import Database
from kalepool.backend.enums import JournalKind
from kalepool.backend.logs import configure_logging
from kalepool.settings import BackendSettings
from kalepool.testing.postgres import test_database_url

ADMIN = "benchmark-admin-token-0123456789"


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "p50_ms": round(pick(0.50), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
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


async def _ledger_closer(rpc_url: str, stop: asyncio.Event) -> int:
    """Close a ledger whenever a transaction is queued (the devnet's ledger timer, faster)."""
    closed = 0
    async with httpx.AsyncClient(timeout=30) as http:

        async def call(method: str, **params: Any) -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or None}
            return (await http.post(rpc_url, json=body)).json()["result"]

        while not stop.is_set():
            if (await call("devnet_pending"))["hashes"]:
                await call("devnet_closeLedgers", count=1)
                closed += 1
            else:
                await asyncio.sleep(0.005)
    return closed


@contextmanager
def devnet_process() -> Iterator[str]:
    """``kalepool devnet`` in a subprocess (its own interpreter, as a real RPC node would
    be): its RPC URL. The ledger timer runs (5 s ledgers); the benchmark also closes a
    ledger as soon as transactions are queued."""
    command = [sys.executable, "-m", "kalepool", "devnet", "--port", "0", "--block-interval", "3600"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"the devnet did not start: {line!r}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


async def run_plant(farmers: int, concurrency: int, readers: int, url: str) -> dict[str, Any]:
    from kalepool.backend.stellar_chain import GatewayChain
    from kalepool.settings import StellarSettings

    results: dict[str, Any] = {}
    with devnet_process() as rpc_url:
        stellar = StellarSettings(
            network="devnet", rpc_urls=[rpc_url], poll_interval=0.05, request_timeout=10.0
        )
        chain: Chain = GatewayChain.from_settings(stellar)
        db = Database(url, pool_size=max(concurrency, readers) + 4)
        settings = BackendSettings(
            admin_token=ADMIN,
            rate_limit_rps=1e9,
            rate_limit_burst=10**9,
            anonymous_rate_limit_rps=1e9,
            anonymous_rate_limit_burst=10**9,
            plant_concurrency=concurrency,
        )
        context = BackendContext.build(settings, db=db, chain=chain, keyring=Keyring([os.urandom(32)]))
        transport = httpx.ASGITransport(app=create_app(context))
        admin = {"Authorization": f"Bearer {ADMIN}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client,
            httpx.AsyncClient(timeout=30) as devnet_http,
        ):
            created = await client.post("/api/v1/poolers", json={"name": "plant-bench"}, headers=admin)
            pooler_id, key = created.json()["pooler"]["pooler_id"], created.json()["api_key"]
            registered: list[dict[str, Any]] = []

            async def register(_: int) -> None:
                body = {
                    "pooler_id": pooler_id,
                    "payout_wallet": Keypair.random().public_key,
                    "stake_percentage": 50,
                }
                farmer = (await client.post("/api/v1/farmers", json=body)).json()
                await devnet_http.post(
                    rpc_url,
                    json={
                        "jsonrpc": "2.0",
                        "id": 1,
                        "method": "devnet_fund",
                        "params": {"address": farmer["custodial_wallet"], "xlm": 10**9, "kale": 10**9},
                    },
                )
                confirmed = await client.post(
                    f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding",
                    headers={"Authorization": f"Bearer {farmer['farmer_token']}"},
                )
                assert confirmed.status_code == 200, confirmed.text
                registered.append(farmer)

            start = time.perf_counter()
            await _timed_many(farmers, 16, register)
            setup_s = time.perf_counter() - start

            async def read(i: int) -> None:
                farmer = registered[i % len(registered)]
                response = await client.get(
                    f"/api/v1/farmers/{farmer['farmer_id']}",
                    headers={"Authorization": f"Bearer {farmer['farmer_token']}"},
                )
                assert response.status_code == 200, response.text

            results["read_idle"] = await _timed_many(max(1, readers) * 20, max(1, readers), read)

            farm = await chain.farm()
            stop = asyncio.Event()
            closer = asyncio.create_task(_ledger_closer(rpc_url, stop))
            latencies: list[float] = []
            planting = True

            async def reader(offset: int) -> None:
                i = offset
                while planting:
                    t0 = time.perf_counter()
                    await read(i)
                    latencies.append(time.perf_counter() - t0)
                    i += readers

            reader_tasks = [asyncio.create_task(reader(r)) for r in range(readers)]
            start = time.perf_counter()
            response = await client.post(
                "/api/v1/pooler/plant-request",
                json={"block_index": farm.index, "pooler_id": pooler_id},
                headers={"Authorization": f"Bearer {key}"},
            )
            elapsed = time.perf_counter() - start
            planting = False
            await asyncio.gather(*reader_tasks)
            stop.set()
            ledgers = await closer
            assert response.status_code == 200, response.text
            summary = response.json()["summary"]
            results["plant"] = {
                "farmers": farmers,
                "plant_concurrency": concurrency,
                "planted": summary["planted"],
                "failed": summary["failed"],
                "wall_s": round(elapsed, 2),
                "plants_per_second": round(summary["planted"] / elapsed, 1),
                "ledgers_closed": ledgers,
                "setup_s": round(setup_s, 1),
            }
            if latencies:
                results["read_under_load"] = {
                    "requests": len(latencies),
                    "readers": readers,
                    **_percentiles(latencies),
                }
        await chain.aclose()  # type: ignore[attr-defined]
        await db.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--farmers", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--journal-rows", type=int, default=100_000)
    parser.add_argument("--plant-farmers", type=int, default=500, help="0 skips the plant benchmark")
    parser.add_argument("--plant-concurrency", type=int, default=16)
    parser.add_argument("--readers", type=int, default=16, help="GET /farmers/{id} loops during the plant")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    configure_logging("WARNING")
    server = test_database_url()
    url = embedded.create_database(server)
    try:
        migrate.upgrade(url)
        results = asyncio.run(run(args.farmers, args.concurrency, args.journal_rows, url))
        if args.plant_farmers:
            results.update(
                asyncio.run(run_plant(args.plant_farmers, args.plant_concurrency, args.readers, url))
            )
    finally:
        embedded.drop_database(server, url.rsplit("/", 1)[1])
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for name, figures in results.items():
        print(f"{name}:")
        for key, value in figures.items():
            print(f"  {key}: {value}")


if __name__ == "__main__":
    main()
