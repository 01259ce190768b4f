"""Issue 13's findings, each with the inputs quoted there: no 5xx on any input, nothing
disclosed, nothing written twice, limits that hold."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring
from kalepool.backend.db.models import BlockOperation, Farmer, Pail, Planting, Work
from kalepool.backend.db.session import Database
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.settings import StellarSettings
from tests.backend import factories
from tests.backend.conftest import Api, make_api
from tests.backend.fakes import FakeChain
from tests.backend.test_api_operator import assert_error

RPC_KEY, RPC_QUERY_KEY = "pathkey0123456789abcdef", "querykey0123456789abcdef"


# --- finding 3: the RPC URL (and a key in it) is never disclosed -----------------------------


async def test_no_rpc_url_in_health_or_503_bodies(db: Database, keyring: Keyring) -> None:
    url = f"http://127.0.0.1:1/rpc/{RPC_KEY}?apikey={RPC_QUERY_KEY}"
    chain = GatewayChain.from_settings(StellarSettings(network="devnet", rpc_urls=[url], request_timeout=1.0))
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


# --- findings 4 and 8: the quoted inputs answer 422, never 500; no loose types -------------


async def test_quoted_inputs_are_refused_with_422(api: Api, payout_wallet: str) -> None:
    pooler_id, key = await api.create_pooler()
    auth = api.bearer(key)
    farmer_id = str(uuid.uuid4())
    work = {"farmer_id": farmer_id, "nonce": 1, "hash": "0" * 64, "zeros": 0}
    cases: list[tuple[str, str, Any, str | None]] = [
        (
            "heartbeat",
            "/api/v1/pooler/heartbeat",
            {"pooler_id": pooler_id, "status": "min\u0000ing"},
            "status",
        ),
        ("heartbeat", "/api/v1/pooler/heartbeat", {"pooler_id": pooler_id, "version": "\u0000"}, "version"),
        (
            "plant",
            "/api/v1/pooler/plant-request",
            {"pooler_id": pooler_id, "block_index": "3"},
            "block_index",
        ),
        ("work", "/api/v1/pooler/work-complete", _work(pooler_id, {**work, "gap": 70368744177665}), None),
        ("work", "/api/v1/pooler/work-complete", _work(pooler_id, {**work, "nonce": "1"}), None),
        ("work", "/api/v1/pooler/work-complete", _work(pooler_id, {**work, "nonce": 1e3}), None),
        ("work", "/api/v1/pooler/work-complete", _work(pooler_id, {**work, "zeros": True}), None),
        (
            "harvest",
            "/api/v1/pooler/harvest-request",
            {
                "pooler_id": pooler_id,
                "harvest_blocks": [
                    {"block_index": b, "farmer_ids": [str(uuid.uuid4()) for _ in range(7_000)]}
                    for b in range(10)
                ],
            },
            "harvest_blocks",
        ),
    ]
    for name, path, body, field in cases:
        response = await api.client.post(path, json=body, headers=auth)
        assert_error(response, 422, "validation_error", field)
        assert name  # the case's label, for the traceback
    infinite = await api.client.post(
        "/api/v1/pooler/heartbeat",
        content=f'{{"pooler_id": "{pooler_id}", "hash_rate": Infinity}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert_error(infinite, 422, "validation_error", "hash_rate")
    offset = await api.client.get("/api/v1/pooler/farmers?offset=9223372036854775808", headers=auth)
    assert_error(offset, 422, "validation_error", "offset")
    bps = await api.client.post(
        "/api/v1/poolers",
        json={"name": f"p-{uuid.uuid4().hex[:6]}", "reward_share_bps": True},
        headers=api.admin,
    )
    assert_error(bps, 422, "validation_error", "reward_share_bps")
    for stake in ("50", True, 12.345, float("nan")):
        registration = {"pooler_id": pooler_id, "payout_wallet": payout_wallet, "stake_percentage": stake}
        refused = await api.client.post(
            "/api/v1/farmers", content=json.dumps(registration), headers={"Content-Type": "application/json"}
        )
        assert_error(refused, 422, "validation_error", "stake_percentage")
    # the bounds themselves are accepted
    accepted = await api.client.post(
        "/api/v1/pooler/heartbeat",
        json={"pooler_id": pooler_id, "hash_rate": 12.5, "farmers_mining": 2**31 - 1, "status": "mining"},
        headers=auth,
    )
    assert accepted.status_code == 200, accepted.text
    for stake in (0.07, 12.5, 100, 0):
        registration = {"pooler_id": pooler_id, "payout_wallet": payout_wallet, "stake_percentage": stake}
        made = await api.client.post("/api/v1/farmers", json=registration)
        assert made.status_code == 201, made.text
        assert made.json()["stake_percentage"] == stake


async def test_a_harvest_request_at_the_bound_answers_each_farmer(api: Api) -> None:
    pooler_id, key = await api.create_pooler()
    ids = [str(uuid.uuid4()) for _ in range(10_000)]
    body = {"pooler_id": pooler_id, "harvest_blocks": [{"block_index": 0, "farmer_ids": ids}]}
    response = await api.client.post("/api/v1/pooler/harvest-request", json=body, headers=api.bearer(key))
    assert response.status_code == 200, response.text
    failed = response.json()["failed_harvests"]
    assert len(failed) == 10_000 and {f["error"] for f in failed} == {"unknown_farmer"}


def _work(pooler_id: str, *results: dict[str, Any], block_index: int = 1) -> dict[str, Any]:
    return {"pooler_id": pooler_id, "block_index": block_index, "work_results": list(results)}


# --- finding 5: work-complete reads unknown farmers in one query, not one per id ------------


async def test_work_complete_with_10000_unknown_farmers_is_batched(api: Api) -> None:
    pooler_id, key = await api.create_pooler()
    results = [
        {"farmer_id": str(uuid.uuid4()), "nonce": 1, "hash": "0" * 64, "zeros": 0} for _ in range(10_000)
    ]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = api.context.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await api.client.post(
            "/api/v1/pooler/work-complete", json=_work(pooler_id, *results), headers=api.bearer(key)
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    assert [r["reason"] for r in response.json()["rejected"]] == ["unknown_farmer"] * 10_000
    assert len(statements) < 20, len(statements)  # was one transaction per unknown id


# --- finding 6: a request that changes nothing writes nothing new ---------------------------


async def _planted(db: Database, pooler_id: str, block_index: int) -> Farmer:
    """A farmer of the pooler with a successful planting (and its pail) in ``block_index``."""
    async with db.transaction() as session:
        farmer = await factories.farmer(session, uuid.UUID(pooler_id))
        session.add(factories.planting(farmer, block_index))
        session.add(
            Pail(
                farmer_id=farmer.id,
                pooler_id=farmer.pooler_id,
                block_index=block_index,
                requested_block_index=block_index,
                state="planted",
                stake_amount=1_000,
            )
        )
    return farmer


async def _count_rows(db: Database, model: Any, *where: Any) -> int:
    async with db.transaction() as session:
        return int(
            (await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one()
        )


async def test_repeated_refusals_write_nothing_new(api: Api, db: Database) -> None:
    pooler_id, key = await api.create_pooler()
    auth = api.bearer(key)
    ready = await api.funded_farmer(pooler_id)
    pooler = uuid.UUID(pooler_id)
    # plant-requests for a stale block (the FakeChain's farm is at block 1) and a future one
    for block in (0, 0, 0, 5, 5, 4_000_000_000):
        response = await api.client.post(
            "/api/v1/pooler/plant-request", json={"pooler_id": pooler_id, "block_index": block}, headers=auth
        )
        assert response.status_code == 200, response.text
        assert [f["error"] for f in response.json()["failed_plants"]] == [
            "stale_block" if block == 0 else "future_block"
        ]
    assert await _count_rows(db, Planting, Planting.pooler_id == pooler) == 0
    assert await _count_rows(db, BlockOperation, BlockOperation.pooler_id == pooler) == 0
    metrics = (await api.client.get("/metrics")).text
    assert 'kalepool_plants_total{result="refused"} 6.0' in metrics

    # works: a block that never existed records nothing; a bad work once per reason
    bogus = {"farmer_id": ready["farmer_id"], "nonce": 1, "hash": "0" * 64, "zeros": 0}
    for _ in range(3):
        response = await api.client.post(
            "/api/v1/pooler/work-complete",
            json=_work(pooler_id, bogus, block_index=4_000_000_000),
            headers=auth,
        )
        assert [r["reason"] for r in response.json()["rejected"]] == ["not_planted"]
    planted = await _planted(db, pooler_id, 1)
    wrong = {"farmer_id": str(planted.id), "nonce": 1, "hash": "0" * 64, "zeros": 64}
    for _ in range(3):
        response = await api.client.post(
            "/api/v1/pooler/work-complete", json=_work(pooler_id, wrong), headers=auth
        )
        assert [r["reason"] for r in response.json()["rejected"]] == ["hash_mismatch"]
        assert [c["reason"] for c in response.json()["compensations"]] == ["invalid_work"]
    assert await _count_rows(db, Work, Work.pooler_id == pooler, Work.block_index == 4_000_000_000) == 0
    assert await _count_rows(db, Work, Work.farmer_id == planted.id) == 1
    operations = await _count_rows(db, BlockOperation, BlockOperation.pooler_id == pooler)
    assert operations == 1  # block 1's, counting the repeats
    async with db.transaction() as session:
        row = (await session.scalars(select(BlockOperation).where(BlockOperation.pooler_id == pooler))).one()
    assert (row.block_index, row.works_rejected) == (1, 3)


# --- finding 9: the contract as the server keeps it ----------------------------------------


async def test_a_stale_request_answers_stale_block_even_with_plants_in_the_open_block(
    api: Api, db: Database
) -> None:
    pooler_id, key = await api.create_pooler()
    planted = await _planted(db, pooler_id, 1)  # the FakeChain's farm is at block 1
    async with db.transaction() as session:
        await session.execute(update(Farmer).where(Farmer.id == planted.id).values(funding_state="ready"))
    response = await api.client.post(
        "/api/v1/pooler/plant-request",
        json={"pooler_id": pooler_id, "block_index": 0},
        headers=api.bearer(key),
    )
    assert response.status_code == 200, response.text
    assert response.json()["planted_farmers"] == []
    assert [f["error"] for f in response.json()["failed_plants"]] == ["stale_block"]
    again = await api.client.post(
        "/api/v1/pooler/plant-request",
        json={"pooler_id": pooler_id, "block_index": 1},
        headers=api.bearer(key),
    )
    assert [p["already_planted"] for p in again.json()["planted_farmers"]] == [True]


async def test_405_names_every_method_of_the_path(api: Api) -> None:
    response = await api.client.delete("/api/v1/poolers", headers=api.admin)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    farmer = await api.client.put(f"/api/v1/farmers/{uuid.uuid4()}")
    assert farmer.status_code == 405 and farmer.headers["Allow"] == "GET, PATCH"


async def test_retry_after_and_the_message_agree(db: Database, keyring: Keyring) -> None:
    limited = await make_api(db, keyring, FakeChain(), rate_limit_rps=10, rate_limit_burst=1)
    async with limited.client:
        _, key = await limited.create_pooler()
        await limited.client.get("/api/v1/pooler/farmers", headers=limited.bearer(key))
        response = await limited.client.get("/api/v1/pooler/farmers", headers=limited.bearer(key))
    assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["message"] == "too many requests: retry in 1 s"


async def test_the_schema_declares_what_the_server_accepts(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    stake = schemas["FarmerCreate"]["properties"]["stake_percentage"]
    assert stake["type"] == "number" and stake["multipleOf"] == 0.01
    update_ = schemas["FarmerUpdate"]
    assert update_["minProperties"] == 1
    assert "null" not in json.dumps(update_["properties"])
    farmer = await api.register_farmer((await api.create_pooler())[0])
    both_null = await api.client.patch(
        f"/api/v1/farmers/{farmer['farmer_id']}",
        json={"stake_percentage": None, "payout_wallet": None},
        headers=api.bearer(farmer["farmer_token"]),
    )
    assert_error(both_null, 422, "validation_error")
