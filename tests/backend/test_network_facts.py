"""Settings that cannot drift: the backend learns the network's facts from the network
(a devnet's block interval included), refuses a pooler on another network naming both
values, and its ``future_block`` / ``stale_block`` answers say why."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from kalepool.backend.custody import Keyring
from kalepool.backend.db.session import Database
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.devnet.testing import DevnetHandle, running_devnet
from kalepool.errors import NetworkMismatch
from kalepool.kale.networks import TESTNET
from kalepool.stellar import FarmGateway
from tests.backend.conftest import DEVNET_BACKEND, Api, make_api
from tests.backend.devnet_env import Controls, closing, devnet_settings, gateway_chain, ready_farmer
from tests.backend.test_api_operator import assert_error

INTERVAL = 60  # the devnet's own, not the profile's 300


@pytest.fixture(scope="module")
def short_devnet() -> Iterator[DevnetHandle]:
    with running_devnet(block_interval=INTERVAL, ledger_seconds=1, seed=11) as handle:
        yield handle


@pytest.fixture
async def short_api(database_url: str, short_devnet: DevnetHandle) -> AsyncIterator[tuple[Api, Controls]]:
    db = Database(database_url, pool_size=5)
    chain = gateway_chain(short_devnet)  # plain settings: no block interval anywhere
    controls = Controls(short_devnet.rpc_url)
    made = await make_api(db, Keyring([bytes(32)]), chain, **DEVNET_BACKEND)  # type: ignore[arg-type]
    try:
        async with made.client:
            yield made, controls
    finally:
        await controls.aclose()
        await chain.aclose()
        await db.dispose()


async def _plant(api: Api, controls: Controls, key: str, pooler_id: str, block: int, **extra: Any) -> Any:
    body = {"block_index": block, "pooler_id": pooler_id, **extra}
    response = await closing(
        controls, api.client.post("/api/v1/pooler/plant-request", json=body, headers=api.bearer(key))
    )
    return response


async def test_the_backend_plants_on_the_devnets_own_block_interval(
    short_api: tuple[Api, Controls], short_devnet: DevnetHandle
) -> None:
    """With a devnet at 60 s blocks every plant-request for the next block came back
    future_block: the backend judged ripeness with the profile's 300 s."""
    api, controls = short_api
    pooler_id, key = await api.create_pooler()
    await ready_farmer(api, short_devnet, pooler_id)
    index = (await api.context.chain.farm()).index
    first = (await _plant(api, controls, key, pooler_id, index)).json()
    assert [p["block_index"] for p in first["planted_farmers"]] == [index]

    await controls.advance_time(INTERVAL + 1)  # ripe at 60 s on this network
    farm = await api.context.chain.farm()
    assert farm.ripe and farm.block_interval == INTERVAL
    nxt = (await _plant(api, controls, key, pooler_id, index + 1)).json()
    assert nxt["failed_plants"] == []
    assert [p["block_index"] for p in nxt["planted_farmers"]] == [index + 1]


async def test_future_and_stale_blocks_say_why(
    short_api: tuple[Api, Controls], short_devnet: DevnetHandle
) -> None:
    api, controls = short_api
    pooler_id, key = await api.create_pooler()
    await ready_farmer(api, short_devnet, pooler_id)
    farm = await api.context.chain.farm()
    assert farm.block_start is not None
    ahead = (await _plant(api, controls, key, pooler_id, farm.index + 2)).json()
    (failed,) = ahead["failed_plants"]
    assert failed["error"] == "future_block"
    message = failed["message"]
    assert f"block {farm.index} started at {farm.block_start}" in message
    assert f"interval {INTERVAL} s" in message and "ledger time" in message
    assert f"at {farm.block_start + INTERVAL}" in message
    if farm.index > 0:
        behind = (await _plant(api, controls, key, pooler_id, farm.index - 1)).json()
        (failed,) = behind["failed_plants"]
        assert failed["error"] == "stale_block" and "ledger time" in failed["message"]


async def test_a_pooler_on_another_network_is_refused_naming_both_values(
    short_api: tuple[Api, Controls], short_devnet: DevnetHandle
) -> None:
    api, controls = short_api
    pooler_id, key = await api.create_pooler()
    facts = (await api.context.chain.network()).shared()
    assert facts["block_interval"] == INTERVAL
    auth = api.bearer(key)

    ok = await api.client.post(
        "/api/v1/pooler/heartbeat", json={"pooler_id": pooler_id, "network": facts}, headers=auth
    )
    assert ok.status_code == 200, ok.text

    other = {**facts, "block_interval": 300}
    refused = await api.client.post(
        "/api/v1/pooler/heartbeat", json={"pooler_id": pooler_id, "network": other}, headers=auth
    )
    assert_error(refused, 409, "network_mismatch")
    assert refused.json()["error"]["message"] == "block_interval: the backend has 60, the pooler has 300"

    testnet = {**facts, "passphrase": TESTNET.passphrase}
    planted = await _plant(api, controls, key, pooler_id, 0, network=testnet)
    assert_error(planted, 409, "network_mismatch")
    assert TESTNET.passphrase in planted.json()["error"]["message"]
    assert short_devnet.server.config.passphrase in planted.json()["error"]["message"]


async def test_a_gateway_refuses_an_rpc_of_another_network(short_devnet: DevnetHandle) -> None:
    settings = devnet_settings(short_devnet.rpc_url)
    async with FarmGateway.from_settings(settings) as gateway:
        facts = await gateway.learn_network()
    assert (facts.block_interval, facts.ledger_seconds) == (INTERVAL, 1.0)
    assert facts.passphrase == short_devnet.server.config.passphrase

    wrong = settings.model_copy(update={"passphrase": TESTNET.passphrase})
    async with FarmGateway.from_settings(wrong) as gateway:
        with pytest.raises(NetworkMismatch) as mismatch:
            await gateway.learn_network()
    assert mismatch.value.fact == "passphrase" and mismatch.value.theirs == facts.passphrase

    moved = settings.model_copy(update={"farm_contract_id": TESTNET.farm_contract_id})
    async with FarmGateway.from_settings(moved) as gateway:
        with pytest.raises(NetworkMismatch, match="farm_contract_id"):
            await gateway.learn_network()
    # the backend's chain answers 503 network_mismatch rather than work on another network
    chain = GatewayChain(FarmGateway.from_settings(moved))
    try:
        with pytest.raises(Exception) as refused:
            await chain.farm()
        assert getattr(refused.value, "code", None) == "network_mismatch"
    finally:
        await chain.aclose()
