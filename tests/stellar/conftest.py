"""Fixtures of the gateway tests: local stand-in servers, and the devnet.

``devnet`` starts an in-process devnet per test (virtual clock, no ledger timer);
``@pytest.mark.devnet(temp_ttl=20, ...)`` passes options to it. ``chain`` drives its
controls; ``gateway`` is a :class:`FarmGateway` built from settings pointing at it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kalepool.devnet.testing import DevnetHandle, running_devnet
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway

from .chain import Chain
from .standin import StandInRpc


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "devnet(**options): options of the test's devnet (running_devnet)")


@pytest.fixture
async def standin() -> AsyncIterator[StandInRpc]:
    server = StandInRpc()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def standin2() -> AsyncIterator[StandInRpc]:
    server = StandInRpc()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def devnet(request: pytest.FixtureRequest) -> Iterator[DevnetHandle]:
    marker = request.node.get_closest_marker("devnet")
    options: dict[str, Any] = dict(marker.kwargs) if marker else {}
    options.setdefault("seed", 7)
    with running_devnet(**options) as handle:
        yield handle


@pytest.fixture
async def chain(devnet: DevnetHandle) -> AsyncIterator[Chain]:
    driver = Chain(devnet.rpc_url)
    yield driver
    await driver.aclose()


def devnet_settings(rpc_urls: list[str], **overrides: Any) -> StellarSettings:
    values: dict[str, Any] = {
        "network": "devnet",
        "rpc_urls": rpc_urls,
        "poll_interval": 0.01,
        "request_timeout": 5.0,
        "tx_timeout": 60,
    }
    values.update(overrides)
    return StellarSettings(**values)


@pytest.fixture
async def gateway(devnet: DevnetHandle) -> AsyncIterator[FarmGateway]:
    gw = FarmGateway.from_settings(devnet_settings([devnet.rpc_url]))
    yield gw
    await gw.close()
