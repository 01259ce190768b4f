"""Backend fixtures: a migrated template database, copies of it, the app on one.

The template is migrated once per session; copies are ``CREATE DATABASE ... TEMPLATE``
(no migrations replayed). Each test module shares one copy (``database_url``, ``db``) and
creates its own rows with unique names and ids; a test that looks at whole tables takes
a copy of its own (``fresh_database_url``, ``fresh_db``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from stellar_sdk import Keypair

from kalepool.backend.api import BackendContext, create_app
from kalepool.backend.custody import Keyring
from kalepool.backend.db import migrate
from kalepool.backend.db.session import Database
from kalepool.settings import BackendSettings
from kalepool.testing.postgres import create_database, drop_database
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
        "min_xlm_balance": 25_000_000,
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


async def make_api(db: Database, keyring: Keyring, chain: FakeChain, **settings: Any) -> Api:
    context = BackendContext.build(backend_settings(**settings), db=db, chain=chain, keyring=keyring)
    app = create_app(context)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://backend.test")
    return Api(client, context, chain)


@pytest.fixture
async def api(db: Database, keyring: Keyring, chain: FakeChain) -> AsyncIterator[Api]:
    made = await make_api(db, keyring, chain)
    async with made.client:
        yield made


__all__ = ["ADMIN_TOKEN", "Api", "backend_settings", "make_api"]
