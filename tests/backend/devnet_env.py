"""The chain-facing backend tests' world: an in-process devnet, the real gateway, helpers.

``LedgerCloser`` plays the network's ledger timer: while it runs, a ledger is closed
whenever a transaction is queued (the devnet's own ``devnet_pending``), so an HTTP request
that plants 50 farmers completes in a few ledgers and nothing sleeps for the chain. Tests
that stage a race (a crash between send and record) drive the ledgers themselves.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from sqlalchemy import update
from stellar_sdk import Keypair

from kalepool.backend.chain import Chain, ChainUnavailable, OnSigned, PlantOutcome
from kalepool.backend.db.models import Farmer
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.pow import leading_zeros, work_hash
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway, WorkOutcome

if TYPE_CHECKING:
    from tests.backend.conftest import Api

T = TypeVar("T")

KALE = 10_000_000
XLM = 10_000_000


def devnet_settings(rpc_url: str) -> StellarSettings:
    return StellarSettings(
        network="devnet", rpc_urls=[rpc_url], poll_interval=0.01, request_timeout=5.0, tx_timeout=60
    )


def gateway_chain(devnet: DevnetHandle) -> GatewayChain:
    return GatewayChain(FarmGateway.from_settings(devnet_settings(devnet.rpc_url)))


class Controls:
    """The devnet's ``devnet_*`` controls from async code."""

    def __init__(self, rpc_url: str) -> None:
        self.rpc_url = rpc_url
        self.http = httpx.AsyncClient(timeout=30)
        self._ids = itertools.count(1)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, rpc_method: str, /, **params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": rpc_method, "params": params or None}
        data = (await self.http.post(self.rpc_url, json=body)).json()
        if "error" in data:
            raise RuntimeError(f"{rpc_method}: {data['error']}")
        return data["result"]

    async def pending(self) -> list[str]:
        return list((await self.call("devnet_pending"))["hashes"])

    async def close_ledgers(self, count: int = 1) -> dict[str, Any]:
        result: dict[str, Any] = await self.call("devnet_closeLedgers", count=count)
        return result

    async def advance_time(self, seconds: float) -> None:
        await self.call("devnet_advanceTime", seconds=seconds, close=True)

    async def sent(self, *, clear: bool = False) -> list[str]:
        """Envelopes of the ``sendTransaction`` requests received (since the last clear)."""
        recorded = (await self.call("devnet_requests", method="sendTransaction", clear=clear))["requests"]
        return [r["params"]["transaction"] for r in recorded]

    async def wait_pending(self, count: int = 1, timeout: float = 20.0) -> list[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            hashes = await self.pending()
            if len(hashes) >= count:
                return hashes
            if loop.time() > deadline:
                raise TimeoutError(f"expected {count} queued transactions, have {len(hashes)}")
            await asyncio.sleep(0.005)


@asynccontextmanager
async def ledger_closer(controls: Controls) -> AsyncIterator[None]:
    """Close a ledger whenever a transaction is queued, until the block ends."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            if await controls.pending():
                await controls.close_ledgers(1)
            else:
                await asyncio.sleep(0.003)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        stop.set()
        await task


async def closing(controls: Controls, action: Awaitable[T]) -> T:
    async with ledger_closer(controls):
        return await action


def mine(index: int, entropy: bytes, farmer: str, zeros: int = 1) -> tuple[int, bytes]:
    """The first nonce (from a random start) whose hash has at least ``zeros`` zeros."""
    start = secrets.randbelow(2**40)
    for nonce in itertools.count(start):
        h = work_hash(index, nonce, entropy, farmer)
        if leading_zeros(h) >= zeros:
            return nonce, h
    raise AssertionError("unreachable")


async def submit_work(
    gateway: FarmGateway, pooler: Keypair, farmer: str, index: int, entropy: bytes, zeros: int = 1
) -> tuple[int, bytes, WorkOutcome]:
    """Mine (pure Python, a few hashes) and submit the farmer's work from the pooler's account."""
    nonce, h = mine(index, entropy, farmer, zeros)
    outcome = await gateway.work(pooler, farmer, nonce, h, index=index)
    return nonce, h, outcome


async def submit_mined_work(
    gateway: FarmGateway, pooler: Keypair, farmer: str, index: int, entropy: bytes
) -> tuple[int, bytes, WorkOutcome]:
    """The same with the real miner (``kalepool.miner.search``, 4,096 hashes, one thread)."""
    from kalepool.miner import search

    found = await asyncio.to_thread(search, index, entropy, farmer, max_hashes=4096, threads=1)
    outcome = await gateway.work(pooler, farmer, found.nonce, found.hash, index=index)
    return found.nonce, found.hash, outcome


async def ready_farmer(
    api: Api,
    devnet: DevnetHandle,
    pooler_id: str,
    *,
    xlm: int = 100 * XLM,
    kale: int = 100 * KALE,
    stake_percentage: float = 50,
) -> dict[str, Any]:
    """Registered through the API, funded with a control (account + trustline + KALE, no
    ledger), confirmed through the API (no trustline transaction needed)."""
    farmer = await api.register_farmer(pooler_id, stake_percentage)
    devnet.fund(farmer["custodial_wallet"], xlm=xlm, kale=kale)
    response = await api.client.post(
        f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding", headers=api.bearer(farmer["farmer_token"])
    )
    assert response.status_code == 200, response.text
    return farmer


async def force_ready(api: Api, farmer: dict[str, Any]) -> None:
    """Mark a farmer ready in the database, whatever its account looks like on chain."""
    async with api.context.db.transaction() as session:
        await session.execute(
            update(Farmer).where(Farmer.id == uuid.UUID(farmer["farmer_id"])).values(funding_state="ready")
        )


async def custodial_keypair(api: Api, farmer: dict[str, Any]) -> Keypair:
    """The custodial keypair (tests only: to act on chain as the farmer behind the pool)."""
    async with api.context.db.transaction() as session:
        row = await session.get(Farmer, uuid.UUID(farmer["farmer_id"]))
    assert row is not None
    with api.context.signer.keypair(row) as keypair:
        return Keypair.from_secret(keypair.secret)


class FlakyChain:
    """A chain whose ``plant`` answers ``ChainUnavailable`` for chosen accounts (RPC down),
    every time, or only the first ``times`` times per account."""

    def __init__(self, inner: Chain, down_for: set[str], times: int | None = None) -> None:
        self.inner = inner
        self.down_for = down_for
        self.times = times
        self.failures: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def plant(
        self, keypair: Keypair, amount: int, *, on_signed: OnSigned | None = None
    ) -> PlantOutcome:
        account = keypair.public_key
        if account in self.down_for and (self.times is None or self.failures.get(account, 0) < self.times):
            self.failures[account] = self.failures.get(account, 0) + 1
            raise ChainUnavailable("RPC request timed out (all endpoints)", code="rpc_timeout")
        return await self.inner.plant(keypair, amount, on_signed=on_signed)
