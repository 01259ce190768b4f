"""Gateway throughput: ``FarmGateway.plant`` for N accounts at once, against the devnet.

    .venv/bin/python -m benchmarks.gateway_bench [--accounts 500] [--concurrency 500]
                                                [--in-process] [--json]

Each plant is the whole pipeline a pool runs: latest ledger + fee stats (cached) +
sequence (first use reads the account), simulate, sign, send, poll ``getTransaction``,
decode result and meta, read the block index planted in. A ledger is closed whenever
transactions are queued (the devnet's ``devnet_closeLedgers``), so the figure is the
gateway's (and the devnet's) rate, not a ledger timer's.

By default the devnet runs in a child process (its own interpreter and CPU); with
``--in-process`` it shares this one's (and its GIL). Accounts are funded with
``devnet_fund`` beforehand (not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway, PlantOutcome

KALE = 10_000_000
XLM = 10_000_000

_CHILD = """
import sys
from kalepool.devnet import DevnetConfig, DevnetServer
server = DevnetServer(DevnetConfig(clock="virtual"), port=0, auto_close=False).start()
print(server.rpc_url, flush=True)
sys.stdin.read()
server.stop()
"""


@contextmanager
def devnet(in_process: bool) -> Iterator[str]:
    if in_process:
        from kalepool.devnet import DevnetConfig, DevnetServer

        server = DevnetServer(DevnetConfig(clock="virtual"), port=0, auto_close=False).start()
        try:
            yield server.rpc_url
        finally:
            server.stop()
        return
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        yield child.stdout.readline().strip()
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=30)


class Controls:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.AsyncClient(timeout=120)
        self.closed = 0

    async def call(self, method: str, **params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or None}
        data = (await self.http.post(self.url, json=body)).json()
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        return data["result"]

    async def closer(self, done: asyncio.Event) -> None:
        """Close a ledger whenever something is queued, until ``done``."""
        while not done.is_set():
            if (await self.call("devnet_pending"))["hashes"]:
                await self.call("devnet_closeLedgers", count=1)
                self.closed += 1
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(done.wait(), 0.005)


async def run(url: str, accounts: int, concurrency: int) -> dict[str, Any]:
    from stellar_sdk import Keypair

    controls = Controls(url)
    farmers = [Keypair.random() for _ in range(accounts)]
    for f in farmers:
        await controls.call("devnet_fund", address=f.public_key, xlm=100 * XLM, kale=10 * KALE)
    await controls.call("devnet_requests", clear=True)
    settings = StellarSettings(network="devnet", rpc_urls=[url], poll_interval=0.05, request_timeout=60)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async with FarmGateway.from_settings(settings) as gateway:

        async def one(farmer: Keypair) -> PlantOutcome:
            async with gate:
                t = time.perf_counter()
                outcome = await gateway.plant(farmer, KALE)
                latencies.append(time.perf_counter() - t)
                return outcome

        done = asyncio.Event()
        closer = asyncio.create_task(controls.closer(done))
        started = time.perf_counter()
        outcomes = await asyncio.gather(*(one(f) for f in farmers), return_exceptions=True)
        elapsed = time.perf_counter() - started
        done.set()
        await closer
    failures = [o for o in outcomes if not isinstance(o, PlantOutcome)]
    requests = (await controls.call("devnet_requests"))["requests"]
    by_method: dict[str, int] = {}
    for r in requests:
        if not r["method"].startswith("devnet_"):
            by_method[r["method"]] = by_method.get(r["method"], 0) + 1
    await controls.http.aclose()
    latencies.sort()
    return {
        "accounts": accounts,
        "concurrency": concurrency,
        "succeeded": accounts - len(failures),
        "failures": [repr(f) for f in failures[:5]],
        "seconds": round(elapsed, 3),
        "plants_per_s": round((accounts - len(failures)) / elapsed, 1),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(latencies[int(0.95 * (len(latencies) - 1))], 3) if latencies else None,
        "ledgers_closed": controls.closed,
        "rpc_requests_per_plant": {m: round(n / accounts, 2) for m, n in sorted(by_method.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=None, help="plants in flight (default: all)")
    parser.add_argument("--in-process", action="store_true", help="run the devnet in this process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    concurrency = args.concurrency or args.accounts
    with devnet(args.in_process) as url:
        figures = asyncio.run(run(url, args.accounts, concurrency))
    figures["devnet"] = "in-process" if args.in_process else "child process"
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"gateway: plant for {args.accounts} accounts, {concurrency} in flight, devnet {figures['devnet']}")
    print(f"  succeeded      {figures['succeeded']} / {args.accounts} in {figures['seconds']:.2f} s")
    print(f"  throughput     {figures['plants_per_s']:.1f} plants/s")
    print(f"  latency        p50 {figures['latency_p50_s']} s, p95 {figures['latency_p95_s']} s")
    print(f"  ledgers closed {figures['ledgers_closed']}")
    print(f"  RPC per plant  {figures['rpc_requests_per_plant']}")
    for failure in figures["failures"]:
        print(f"  failure: {failure}")


if __name__ == "__main__":
    main()
