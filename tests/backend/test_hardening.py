"""Issue 13's findings, each with the inputs quoted there: no 5xx on any input, nothing
disclosed, nothing written twice, limits that hold."""

from __future__ import annotations

import pytest
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring
from kalepool.backend.db.session import Database
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.settings import StellarSettings
from tests.backend.conftest import make_api

RPC_KEY, RPC_QUERY_KEY = "pathkey0123456789abcdef", "querykey0123456789abcdef"


# --- finding 3: the RPC URL (and a key in it) is never disclosed -----------------------------


async def test_no_rpc_url_in_health_or_503_bodies(db: Database, keyring: Keyring) -> None:
    url = f"http://127.0.0.1:1/rpc/{RPC_KEY}?apikey={RPC_QUERY_KEY}"
    chain = GatewayChain.from_settings(
        StellarSettings(network="devnet", rpc_urls=[url], request_timeout=1.0)
    )
    api = await make_api(db, keyring, chain)  # type: ignore[arg-type]
    async with api.client:
        health = await api.client.get("/health/stellar")
        pooler_id, key = await api.create_pooler()
        plant = await api.client.post(
            "/api/v1/pooler/plant-request",
            json={"pooler_id": pooler_id, "block_index": 1},
            headers=api.bearer(key),
        )
    await chain.aclose()
    assert health.status_code == 503 and health.json()["status"] == "unavailable"
    assert plant.status_code == 503 and plant.json()["error"]["code"] == "network_error"
    assert plant.headers["Retry-After"] == "5"
    for body in (health.text, plant.text):
        assert RPC_KEY not in body and RPC_QUERY_KEY not in body and "127.0.0.1:1" not in body


@pytest.fixture
def payout_wallet() -> str:
    return Keypair.random().public_key
