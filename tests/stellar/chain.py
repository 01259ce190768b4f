"""Driving the devnet from async tests: its ``devnet_*`` controls, over HTTP.

Nothing here sleeps to let a race happen: tests wait for *observable* devnet state
(:meth:`Chain.wait_pending`: the transactions queued), then move the chain on with its
controls (close ledgers, advance time). :meth:`Chain.run` plays the network's ledger
timer for a batch of actions: it closes a ledger whenever something is queued.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import httpx
from stellar_sdk import Keypair

from kalepool.kale.pow import leading_zeros, work_hash

T = TypeVar("T")

KALE = 10_000_000
XLM = 10_000_000


class Chain:
    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        self.http = httpx.AsyncClient(timeout=30)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def control(self, rpc_method: str, /, **params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": rpc_method, "params": params or None}
        data = (await self.http.post(self.rpc_url, json=body)).json()
        if "error" in data:
            raise RuntimeError(f"{rpc_method}: {data['error']}")
        return data["result"]

    async def close_ledgers(self, count: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = await self.control("devnet_closeLedgers", count=count)
        return result

    async def advance_time(self, seconds: float, close: bool = False) -> None:
        await self.control("devnet_advanceTime", seconds=seconds, close=close)

    async def pending(self) -> list[str]:
        return list((await self.control("devnet_pending"))["hashes"])

    async def dropped(self) -> dict[str, str]:
        return dict((await self.control("devnet_pending"))["dropped"])

    async def requests(self, method: str | None = None, *, clear: bool = False) -> list[dict[str, Any]]:
        """The standard RPC requests the devnet received (its controls left out)."""
        params: dict[str, Any] = {"clear": clear}
        if method is not None:
            params["method"] = method
        recorded = (await self.control("devnet_requests", **params))["requests"]
        return [r for r in recorded if not r["method"].startswith("devnet_")]

    async def latest(self) -> int:
        return int((await self.control("getLatestLedger"))["sequence"])

    async def new_account(self, xlm: int = 1_000 * XLM, kale: int = 0) -> Keypair:
        kp = Keypair.random()
        await self.control("devnet_fund", address=kp.public_key, xlm=xlm, kale=kale)
        return kp

    async def new_accounts(self, n: int, xlm: int = 1_000 * XLM, kale: int = 0) -> list[Keypair]:
        return [await self.new_account(xlm, kale) for _ in range(n)]

    async def wait_pending(self, count: int = 1, *, timeout: float = 20.0) -> list[str]:
        """Until at least ``count`` transactions are queued (the devnet's own state)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            hashes = await self.pending()
            if len(hashes) >= count:
                return hashes
            if loop.time() > deadline:
                raise TimeoutError(f"expected {count} queued transactions, have {len(hashes)}")
            await asyncio.sleep(0.005)

    async def run(self, *actions: Awaitable[T], errors: bool = False) -> list[Any]:
        """Run the actions while closing a ledger whenever a transaction is queued."""
        tasks = [asyncio.ensure_future(a) for a in actions]
        try:
            while not all(t.done() for t in tasks):
                if await self.pending():
                    await self.close_ledgers(1)
                else:
                    await asyncio.wait(tasks, timeout=0.005, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                if not t.done():
                    t.cancel()
        return list(await asyncio.gather(*tasks, return_exceptions=errors))

    async def run_one(self, action: Awaitable[T]) -> T:
        (result,) = await self.run(action)
        return result  # type: ignore[no-any-return]


def mine(index: int, entropy: bytes, farmer: str, zeros: int = 1, start: int = 0) -> tuple[int, bytes]:
    """The first nonce from ``start`` whose hash has at least ``zeros`` leading zeros."""
    for nonce in itertools.count(start):
        h = work_hash(index, nonce, entropy, farmer)
        if leading_zeros(h) >= zeros:
            return nonce, h
    raise AssertionError("unreachable")


def hashes_of(requests: Iterable[dict[str, Any]]) -> list[str]:
    """The envelopes of recorded ``sendTransaction`` requests."""
    return [r["params"]["transaction"] for r in requests if r["method"] == "sendTransaction"]
