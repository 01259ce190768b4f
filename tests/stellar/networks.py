"""The networks the conformance suite runs on, behind one small interface.

A :class:`Network` gives the suite a :class:`FarmGateway` and the few things a test needs
from the network itself, the same way on each: fund an account (its friendbot), wait for
the next ledger, and let the current KALE block end. The devnet runs with its ledger
timer on (a ledger every 0.1 s, one chain second each), so the gateway waits for its
transactions as on a real network; only the end of a block is sped up, with its
``devnet_advanceTime`` control. Testnet (``KALEPOOL_TESTNET=1``) waits for real.
"""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import ExitStack
from dataclasses import replace
from typing import Any

import httpx
from stellar_sdk import Keypair

from kalepool.devnet.testing import running_devnet
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway

TESTNET_FLAG = "KALEPOOL_TESTNET"


class Network:
    """One network under test: its settings, a gateway on them, its friendbot."""

    name = ""

    def __init__(self, settings: StellarSettings) -> None:
        self.settings = settings
        self.profile = settings.profile()
        self.gateway = FarmGateway.from_settings(settings)
        self.http = httpx.AsyncClient(timeout=60)

    async def fund(self) -> Keypair:
        """A new account, funded by the network's friendbot."""
        keypair = Keypair.random()
        assert self.profile.friendbot_url is not None
        response = await self.http.get(self.profile.friendbot_url, params={"addr": keypair.public_key})
        assert response.status_code == 200, response.text
        return keypair

    async def next_ledger(self) -> int:
        """Wait until a ledger after the latest one closes; its sequence."""
        start = (await self.gateway.rpc.latest_ledger()).sequence
        deadline = time.monotonic() + 60
        while (latest := (await self.gateway.rpc.latest_ledger()).sequence) == start:
            assert time.monotonic() < deadline, "no ledger closed in a minute"
            await asyncio.sleep(0.05 if self.name == "devnet" else 1.0)
        return latest

    async def end_block(self) -> None:
        """Wait until the current block's interval has passed (the next plant rolls over)."""
        state = await self.gateway.farm_state()
        assert state.farm_block is not None
        ends = state.farm_block.timestamp + state.block_interval
        while (await self.gateway.rpc.latest_ledger()).close_time < ends:
            await asyncio.sleep(30)

    async def close(self) -> None:
        await self.gateway.close()
        await self.http.aclose()


class Devnet(Network):
    name = "devnet"

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.devnet = self.stack.enter_context(
            running_devnet(seed=5, ledger_seconds=0.1, time_scale=10, auto_close=True)
        )
        super().__init__(
            StellarSettings(
                network="devnet", rpc_urls=[self.devnet.rpc_url], poll_interval=0.05, tx_timeout=60
            )
        )
        self.profile = replace(self.profile, friendbot_url=self.devnet.friendbot_url)

    async def end_block(self) -> None:
        await asyncio.to_thread(self.devnet.advance_time, self.profile.block_interval)
        await self.next_ledger()

    async def close(self) -> None:
        await super().close()
        self.stack.close()


class Testnet(Network):
    name = "testnet"

    def __init__(self) -> None:
        super().__init__(StellarSettings(network="testnet", poll_interval=1.0, tx_timeout=120))


def open_network(name: str) -> Any:
    return Devnet() if name == "devnet" else Testnet()


def use_testnet() -> bool:
    return os.environ.get(TESTNET_FLAG) == "1"
