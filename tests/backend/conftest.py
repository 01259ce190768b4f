"""Backend fixtures: a migrated template database, copies of it, the app on one.

The template is migrated once per session; copies are ``CREATE DATABASE ... TEMPLATE``
(no migrations replayed). Each test module shares one copy (``database_url``, ``db``) and
creates its own rows with unique names and ids; a test that looks at whole tables takes
a copy of its own (``fresh_database_url``, ``fresh_db``).

Chain-facing tests use one in-process devnet per module (``devnet``: virtual clock, no
ledger timer, 1 s ledgers, 300 s blocks), its controls (``controls``), the real gateway
over it (``dev_chain``) and the app on top (``dev_api``); see ``devnet_env.py``.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import structlog
from stellar_sdk import Keypair

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.chain import Chain
from kalepool.backend.custody import Keyring
from kalepool.backend.db import migrate
from kalepool.backend.db.embedded import create_database, drop_database
from kalepool.backend.db.session import Database
from kalepool.backend.logs import configure_logging
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.devnet.testing import DevnetHandle, running_devnet
from kalepool.settings import BackendSettings
from tests.backend.devnet_env import Controls, gateway_chain
from tests.backend.fakes import FakeChain

ADMIN_TOKEN = "admin-token-for-tests-0123456789"


def _name(url: str) -> str:
    return url.rsplit("/", 1)[1].split("?")[0]


@pytest.fixture(scope="session")
def migrated_template(postgres_url: str) -> Iterator[str]:
    """Name of a database migrated to head, used only as a template."""
    name = f"kalepool_template_{secrets.token_hex(4)}"
    url = create_database(postgres_url, name)
    migrate.upgrade(url)
    yield name
    drop_database(postgres_url, name)


@pytest.fixture(scope="module")
def database_url(postgres_url: str, migrated_template: str) -> Iterator[str]:
    """A database at head shared by the tests of one module (they use unique rows)."""
    url = create_database(postgres_url, template=migrated_template)
    yield url
    drop_database(postgres_url, _name(url))


@pytest.fixture
def fresh_database_url(postgres_url: str, migrated_template: str) -> Iterator[str]:
    """A database at head of the test's own, for tests that look at whole tables."""
    url = create_database(postgres_url, template=migrated_template)
    yield url
    drop_database(postgres_url, _name(url))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
async def fresh_db(fresh_database_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_database_url, pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([os.urandom(32)])


@pytest.fixture
def chain() -> FakeChain:
    return FakeChain()


def backend_settings(**overrides: Any) -> BackendSettings:
    values: dict[str, Any] = {
        "admin_token": ADMIN_TOKEN,
        "rate_limit_rps": 10_000,
        "rate_limit_burst": 10_000,
        "anonymous_rate_limit_rps": 10_000,
        "anonymous_rate_limit_burst": 10_000,
        "auth_failures_per_minute": 60_000,
        "auth_failures_burst": 10_000,
        "health_cache_seconds": 0,
        "min_xlm_balance": 25_000_000,
        "auto_harvest_lag_blocks": 0,  # the tests close one block and harvest it at once
    }
    values.update(overrides)
    return BackendSettings(**values)


@dataclass
class Api:
    """The app under test, its parts, and shortcuts for the common set-ups."""

    client: httpx.AsyncClient
    context: BackendContext
    chain: FakeChain

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.bearer(ADMIN_TOKEN)

    async def create_pooler(self, name: str | None = None, **fields: Any) -> tuple[str, str]:
        """(pooler_id, api_key) of a new pooler."""
        body = {"name": name or f"pooler-{secrets.token_hex(3)}", **fields}
        response = await self.client.post("/api/v1/poolers", json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        data = response.json()
        return data["pooler"]["pooler_id"], data["api_key"]

    async def register_farmer(self, pooler_id: str, stake_percentage: float = 50) -> dict[str, Any]:
        body = {
            "pooler_id": pooler_id,
            "payout_wallet": Keypair.random().public_key,
            "stake_percentage": stake_percentage,
        }
        response = await self.client.post("/api/v1/farmers", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def funded_farmer(self, pooler_id: str) -> dict[str, Any]:
        farmer = await self.register_farmer(pooler_id)
        self.chain.fund(farmer["custodial_wallet"], xlm=50_000_000)
        response = await self.client.post(
            f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding",
            headers=self.bearer(farmer["farmer_token"]),
        )
        assert response.status_code == 200, response.text
        return farmer


async def make_api(db: Database, keyring: Keyring, chain: Chain, **settings: Any) -> Api:
    context = BackendContext.build(backend_settings(**settings), db=db, chain=chain, keyring=keyring)
    app = create_app(context)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://backend.test", timeout=120
    )
    return Api(client, context, chain)  # type: ignore[arg-type]


@pytest.fixture
async def api(db: Database, keyring: Keyring, chain: FakeChain) -> AsyncIterator[Api]:
    made = await make_api(db, keyring, chain)
    async with made.client:
        yield made


@pytest.fixture
def verbose_logs() -> Iterator[io.StringIO]:
    """Everything logged, rendered by the backend's own handler, into a string."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", json=True, stream=stream)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)  # SQL and its parameters too
    yield stream
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    root.handlers, root.level = saved
    structlog.reset_defaults()


# --- the devnet (chain-facing tests) -------------------------------------------------------

#: settings of the apps the chain-facing tests run (fees that make the split visible)
DEVNET_BACKEND = {
    "platform_fee_bps": 200,
    "in_progress_wait": 20.0,
    "plant_concurrency": 16,
    "plant_retry_seconds": 1.0,
}


@pytest.fixture(scope="module")
def devnet() -> Iterator[DevnetHandle]:
    with running_devnet(block_interval=300, ledger_seconds=1, seed=7) as handle:
        yield handle


@pytest.fixture(scope="module")
async def controls(devnet: DevnetHandle) -> AsyncIterator[Controls]:
    made = Controls(devnet.rpc_url)
    yield made
    await made.aclose()


@pytest.fixture(scope="module")
async def dev_chain(devnet: DevnetHandle) -> AsyncIterator[GatewayChain]:
    made = gateway_chain(devnet)
    yield made
    await made.aclose()


@pytest.fixture(scope="module")
def dev_keyring() -> Keyring:
    """One keyring per module, so any test's farmers can be signed for by any app."""
    return Keyring([os.urandom(32)])


@pytest.fixture
async def dev_db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, pool_size=10)
    yield database
    await database.dispose()


@pytest.fixture
async def dev_api(dev_db: Database, dev_keyring: Keyring, dev_chain: GatewayChain) -> AsyncIterator[Api]:
    made = await make_api(dev_db, dev_keyring, dev_chain, **DEVNET_BACKEND)  # type: ignore[arg-type]
    async with made.client:
        yield made


__all__ = ["ADMIN_TOKEN", "DEVNET_BACKEND", "Api", "backend_settings", "make_api"]
