"""Steps the end-to-end tests share: a fresh pool, waiting on pooler events, the DB."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from typing import Any

import httpx
from stellar_sdk import Keypair
from stellar_sdk import xdr as sx

from kalepool.demo import Cluster, Pool, PoolerProcess, setup_pool
from kalepool.demo.runner import _friendbot, roll_over_when_ripe, wait_harvested
from kalepool.kale.storage import account_ledger_key, pail_ledger_key

from .conftest import INTERVAL

KALE = 10_000_000


async def fresh_pool(
    cluster: Cluster, farmers: int, deposits: tuple[int, ...], stakes: tuple[int, ...]
) -> Pool:
    return await setup_pool(cluster, farmers=farmers, poolers=1, deposits=deposits, stakes=stakes)


async def wait_for(
    pooler: PoolerProcess,
    event: str,
    predicate: Callable[[dict[str, Any]], bool] = lambda e: True,
    *,
    timeout: float = 4 * INTERVAL,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        events = list(pooler.events)
        for item in events[seen:]:
            if item.get("event") == event and predicate(item):
                return item
        seen = len(events)
        if not pooler.running and pooler.process is not None:
            raise AssertionError(f"pooler exited ({pooler.process.returncode}) before {event}")
        await asyncio.sleep(0.1)
    last = [e.get("event") for e in events[-8:]]
    raise AssertionError(f"no {event} within {timeout} s; last events: {last}")


def blocks_worked(pooler: PoolerProcess) -> int:
    last = pooler.last("pooler.reported")
    return int(last["blocks_worked"]) if last else 0


async def close_and_harvest(pool: Pool, blocks: int, *, timeout: float = 6 * INTERVAL) -> None:
    """Once every pooler of the pool reported ``blocks`` blocks, roll the farm over from an
    outside account, let the poolers harvest and exit, and wait for the harvests."""
    deadline = time.monotonic() + timeout
    while any(blocks_worked(p) < blocks for p in pool.poolers):
        assert time.monotonic() < deadline, "the blocks did not complete in time"
        for p in pool.poolers:
            assert p.running or blocks_worked(p) >= blocks, f"pooler exited early: {p.log_file}"
        await asyncio.sleep(0.2)
    closer = Keypair.random()
    assert pool.cluster.devnet is not None
    async with httpx.AsyncClient(timeout=30) as http:
        await _friendbot(http, pool.cluster.devnet.friendbot_url, closer.public_key)
    await roll_over_when_ripe(pool.gateway, INTERVAL, closer, timeout=3 * INTERVAL)
    for p in pool.poolers:
        code = await asyncio.to_thread(pool.cluster.wait_pooler, p, max(5.0, deadline - time.monotonic()))
        assert code == 0, f"pooler {p.index} ended with {code}; see {p.log_file}"
    await wait_harvested(pool, timeout=3 * INTERVAL)


def rows(cluster: Cluster, query: str, *args: Any) -> list[tuple[Any, ...]]:
    return cluster.query(query, *args)


def devnet_rpc(cluster: Cluster, method: str, **params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    response = httpx.post(cluster.rpc_url, json=body)
    data = response.json()
    assert "error" not in data, data
    return data["result"]


def drain_xlm(cluster: Cluster, address: str, keep: int = 15_000_000) -> None:
    """Leave the account ``keep`` stroops (its reserve with a trustline: nothing to spend)."""
    key = account_ledger_key(address).to_xdr()
    entry = devnet_rpc(cluster, "getLedgerEntries", keys=[key])["entries"][0]
    data = sx.LedgerEntryData.from_xdr(entry["xdr"])
    assert data.account is not None
    data.account.balance = sx.Int64(keep)
    devnet_rpc(cluster, "devnet_setLedgerEntry", key=key, entry=data.to_xdr())


def expire_pail(cluster: Cluster, farmer: str, index: int) -> None:
    """Make ``Pail(farmer, index)`` expire at the next ledger (its TTL runs out)."""
    assert cluster.devnet is not None
    key = pail_ledger_key(cluster.devnet.config.farm_contract_id, farmer, index).to_xdr()
    found = devnet_rpc(cluster, "getLedgerEntries", keys=[key])
    entry = found["entries"][0]
    devnet_rpc(
        cluster,
        "devnet_setLedgerEntry",
        key=key,
        entry=entry["xdr"],
        liveUntilLedgerSeq=int(found["latestLedger"]),
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def friendbot_closer(cluster: Cluster) -> Keypair:
    closer = Keypair.random()
    assert cluster.devnet is not None
    async with httpx.AsyncClient(timeout=30) as http:
        await _friendbot(http, cluster.devnet.friendbot_url, closer.public_key)
    return closer
