"""Devnet throughput: 1,000 ``plant`` transactions from 1,000 accounts in one ledger.

    .venv/bin/python -m benchmarks.devnet_bench [--count 1000] [--concurrency 16] [--json]

Measures, against an in-process devnet over real HTTP (loopback):

- ``simulateTransaction`` + assembly (``SorobanServer.prepare_transaction``), sequential;
- ``sendTransaction`` throughput, sequential (``SorobanServer``) and concurrent
  (``SorobanServerAsync``, ``--concurrency`` requests in flight), each on its own batch;
- the close of the ledger that applies the batch (all plants must succeed);
- ``getTransaction`` on every hash afterwards (which builds result and meta XDR).

Accounts are created with the ``devnet_fund`` control in the engine (not timed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from stellar_sdk import (
    Keypair,
    SorobanServer,
    SorobanServerAsync,
    TransactionBuilder,
    TransactionEnvelope,
    scval,
)

from kalepool.devnet import DevnetConfig, DevnetServer

KALE = 10_000_000


def prepare_batch(
    server: SorobanServer, devnet: DevnetServer, count: int, stake: int
) -> tuple[list[TransactionEnvelope], float]:
    farmers = [Keypair.random() for _ in range(count)]
    for kp in farmers:
        devnet.engine.fund(kp.public_key, 100 * 10_000_000, kale=10 * KALE)
    envelopes = []
    started = time.perf_counter()
    for kp in farmers:
        account = server.load_account(kp.public_key)
        tx = (
            TransactionBuilder(account, devnet.config.passphrase, base_fee=100)
            .append_invoke_contract_function_op(
                devnet.config.farm_contract_id,
                "plant",
                [scval.to_address(kp.public_key), scval.to_int128(stake)],
            )
            .set_timeout(600)
            .build()
        )
        prepared = server.prepare_transaction(tx)
        prepared.sign(kp)
        envelopes.append(prepared)
    return envelopes, time.perf_counter() - started


def send_sequential(server: SorobanServer, envelopes: list[TransactionEnvelope]) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for env in envelopes:
        t = time.perf_counter()
        sent = server.send_transaction(env)
        latencies.append(time.perf_counter() - t)
        assert sent.status.value == "PENDING", sent
    return time.perf_counter() - started, latencies


async def send_concurrent(url: str, envelopes: list[TransactionEnvelope], concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)
    async with SorobanServerAsync(url) as server:

        async def one(env: TransactionEnvelope) -> None:
            async with gate:
                sent = await server.send_transaction(env)
                assert sent.status.value == "PENDING", sent

        started = time.perf_counter()
        await asyncio.gather(*(one(env) for env in envelopes))
        return time.perf_counter() - started


def close_and_check(
    devnet: DevnetServer, server: SorobanServer, envelopes: list[TransactionEnvelope]
) -> dict[str, float]:
    started = time.perf_counter()
    body = {"jsonrpc": "2.0", "id": 1, "method": "devnet_closeLedgers", "params": {"count": 1}}
    import httpx

    reply = httpx.post(devnet.rpc_url, json=body, timeout=600).json()["result"]
    close_s = time.perf_counter() - started
    assert reply["transactionCount"] == len(envelopes), reply
    started = time.perf_counter()
    statuses = [server.get_transaction(env.hash_hex()).status.value for env in envelopes]
    get_s = time.perf_counter() - started
    assert statuses.count("SUCCESS") == len(envelopes), statuses[:5]
    return {"close_s": close_s, "get_transaction_s": get_s}


def run(count: int, concurrency: int, stake: int) -> dict[str, Any]:
    config = DevnetConfig(clock="virtual", block_interval=300)
    with DevnetServer(config, port=0, auto_close=False) as devnet:
        server = SorobanServer(devnet.rpc_url)
        out: dict[str, Any] = {"count": count, "concurrency": concurrency}

        envelopes, prep_s = prepare_batch(server, devnet, count, stake)
        out["simulate_prepare_per_s"] = count / prep_s
        seq_s, latencies = send_sequential(server, envelopes)
        out["send_sequential_per_s"] = count / seq_s
        out["send_latency_ms_p50"] = statistics.median(latencies) * 1000
        out["send_latency_ms_p99"] = sorted(latencies)[int(0.99 * (count - 1))] * 1000
        out["ledger_1"] = close_and_check(devnet, server, envelopes)

        # a second block, so that every farmer can plant again
        devnet.engine.advance_time(300)
        devnet.engine.close_ledger()
        envelopes, _ = prepare_batch(server, devnet, count, stake)
        conc_s = asyncio.run(send_concurrent(devnet.rpc_url, envelopes, concurrency))
        out["send_concurrent_per_s"] = count / conc_s
        out["ledger_2"] = close_and_check(devnet, server, envelopes)
        out["farm_index"] = devnet.engine.farm_instance().farm_index
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--stake", type=int, default=KALE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.count, args.concurrency, args.stake)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"devnet: {args.count} plant transactions from {args.count} accounts per ledger")
    print(f"  simulate+prepare (sequential):  {figures['simulate_prepare_per_s']:8.0f} tx/s")
    print(
        f"  sendTransaction (sequential):   {figures['send_sequential_per_s']:8.0f} tx/s "
        f"(p50 {figures['send_latency_ms_p50']:.2f} ms, p99 {figures['send_latency_ms_p99']:.2f} ms)"
    )
    print(f"  sendTransaction (async x{args.concurrency}):     {figures['send_concurrent_per_s']:8.0f} tx/s")
    for name in ("ledger_1", "ledger_2"):
        f = figures[name]
        print(f"  {name}: close {f['close_s']:.3f} s; getTransaction for all {f['get_transaction_s']:.2f} s")


if __name__ == "__main__":
    main()
