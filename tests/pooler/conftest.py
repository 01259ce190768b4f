"""Fixtures of the pooler tests: a fast wall-clock devnet and a stand-in backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from stellar_sdk import Keypair

from kalepool.devnet.testing import KALE, XLM, DevnetHandle, running_devnet
from kalepool.pooler.client import BackendClient
from kalepool.pooler.service import PoolerService
from kalepool.settings import PoolerSettings, StellarSettings
from kalepool.stellar import FarmGateway

from .standin_backend import StandInBackend, StandInFarmer

INTERVAL = 12


@pytest.fixture
def devnet() -> Iterator[DevnetHandle]:
    with running_devnet(block_interval=INTERVAL, ledger_seconds=1.0, auto_close=True, clock="wall") as d:
        yield d


def stellar(devnet: DevnetHandle) -> StellarSettings:
    return StellarSettings(
        network="devnet", rpc_urls=[devnet.rpc_url], poll_interval=0.2, request_timeout=5.0
    )


@pytest.fixture
async def gateway(devnet: DevnetHandle) -> AsyncIterator[FarmGateway]:
    gw = FarmGateway.from_settings(stellar(devnet))
    yield gw
    await gw.close()


@pytest.fixture
async def backend(devnet: DevnetHandle, gateway: FarmGateway) -> StandInBackend:
    stakes = [0, 2 * KALE, 5 * KALE]
    farmers = [StandInFarmer(devnet.new_account(xlm=100 * XLM, kale=50 * KALE), s) for s in stakes]
    return StandInBackend(
        gateway=gateway, harvester=devnet.new_account(xlm=100 * XLM), farmers=farmers, interval=INTERVAL
    )


def pooler_settings(tmp_path: Path, **overrides: Any) -> PoolerSettings:
    values: dict[str, Any] = {
        "state_file": tmp_path / "pooler-state.json",
        "poll_interval": 0.5,
        "channels": 2,
        "work_margin_ledgers": 2,
        "work_margin_seconds": 1.0,
        "min_mine_seconds": 2.0,
        "heartbeat_interval": 2.0,
        "retries": 2,
    }
    values.update(overrides)
    return PoolerSettings(**values)


@pytest.fixture
async def make_service(
    devnet: DevnetHandle, backend: StandInBackend, tmp_path: Path
) -> AsyncIterator[Any]:
    pooler = devnet.new_account(xlm=200 * XLM)
    made: list[tuple[FarmGateway, BackendClient]] = []

    def make(**overrides: Any) -> PoolerService:
        max_blocks = overrides.pop("max_blocks", None)
        keypair: Keypair = overrides.pop("keypair", pooler)
        gateway = FarmGateway.from_settings(stellar(devnet))
        client = BackendClient(
            "http://backend.test",
            "kp_pooler_test",
            retries=2,
            backoff_initial=0.05,
            transport=httpx.ASGITransport(app=backend.app()),
        )
        made.append((gateway, client))
        return PoolerService(
            pooler_settings(tmp_path, **overrides),
            gateway=gateway,
            client=client,
            keypair=keypair,
            interval=INTERVAL,
            ledger_seconds=1.0,
            threads=1,
            max_blocks=max_blocks,
            hash_rate=1e6,
        )

    yield make
    for gateway, client in made:
        await gateway.close()
        await client.close()
