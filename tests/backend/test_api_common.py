"""Health, metrics, rate limits, error bodies for unknown routes, OpenAPI, the next slice's schemas."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError
from stellar_sdk import Keypair

from kalepool.backend.chain import UnavailableChain
from kalepool.backend.custody import Keyring
from kalepool.backend.db.session import Database
from kalepool.wire import pooler as wire
from tests.backend.conftest import Api, make_api
from tests.backend.fakes import FakeChain
from tests.backend.test_api_operator import assert_error


async def test_health(api: Api) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


async def test_health_db(api: Api) -> None:
    response = await api.client.get("/health/db")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["revision"] == response.json()["expected_revision"]


async def test_health_db_reports_an_unmigrated_database(empty_database_url: str, keyring: Keyring) -> None:
    db = Database(empty_database_url, pool_size=1)
    api = await make_api(db, keyring, FakeChain())
    async with api.client:
        response = await api.client.get("/health/db")
    await db.dispose()
    assert response.status_code == 503 and response.json()["status"] == "not_migrated"


async def test_health_db_reports_an_unreachable_database(keyring: Keyring) -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none", pool_size=1)
    api = await make_api(db, keyring, FakeChain())
    async with api.client:
        response = await api.client.get("/health/db")
    await db.dispose()
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


async def test_health_stellar(api: Api, db: Database, keyring: Keyring) -> None:
    response = await api.client.get("/health/stellar")
    assert response.status_code == 200 and response.json()["latest_ledger"] == 1000
    down = await make_api(db, keyring, UnavailableChain())  # type: ignore[arg-type]
    async with down.client:
        response = await down.client.get("/health/stellar")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


async def test_metrics(api: Api) -> None:
    await api.client.get("/health")
    await api.client.get("/api/v1/poolers")  # 401
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'kalepool_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert 'route="/api/v1/poolers",status="401"' in text
    assert "kalepool_http_request_seconds_bucket" in text


async def test_rate_limit_per_key_answers_429_with_the_error_body(db: Database, keyring: Keyring) -> None:
    api = await make_api(db, keyring, FakeChain(), rate_limit_rps=0.001, rate_limit_burst=3)
    async with api.client:
        _, key_a = await api.create_pooler()
        _, key_b = await api.create_pooler()
        for _ in range(3):
            assert (
                await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(key_a))
            ).status_code == 200
        response = await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(key_a))
        assert_error(response, 429, "rate_limited")
        assert int(response.headers["Retry-After"]) >= 1
        # another key has its own bucket
        assert (await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(key_b))).status_code == 200
        metrics = (await api.client.get("/metrics")).text
    assert 'kalepool_rate_limited_total{scope="pooler"} 1.0' in metrics


async def test_anonymous_rate_limit_on_registration(db: Database, keyring: Keyring) -> None:
    api = await make_api(
        db, keyring, FakeChain(), anonymous_rate_limit_rps=0.001, anonymous_rate_limit_burst=2
    )
    async with api.client:
        pooler_id, _ = await api.create_pooler()
        await api.register_farmer(pooler_id)
        await api.register_farmer(pooler_id)
        body = {"pooler_id": pooler_id, "payout_wallet": Keypair.random().public_key, "stake_percentage": 1}
        assert_error(await api.client.post("/api/v1/farmers", json=body), 429, "rate_limited")
        # requests without a credential spend the same per-IP bucket
        assert_error(await api.client.get("/api/v1/poolers"), 429, "rate_limited")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/api/v1/nope", 404, "not_found"),
        ("DELETE", "/api/v1/poolers", 405, "method_not_allowed"),
        ("PUT", "/health", 405, "method_not_allowed"),
    ],
)
async def test_unknown_routes_and_methods(api: Api, method: str, path: str, status: int, code: str) -> None:
    assert_error(await api.client.request(method, path), status, code)


async def test_openapi_is_complete(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    paths = spec["paths"]
    expected = {
        ("/health", "get"),
        ("/health/db", "get"),
        ("/health/stellar", "get"),
        ("/metrics", "get"),
        ("/api/v1/poolers", "post"),
        ("/api/v1/poolers", "get"),
        ("/api/v1/blocks/{block_index}", "get"),
        ("/api/v1/farmers", "post"),
        ("/api/v1/farmers/{farmer_id}", "get"),
        ("/api/v1/farmers/{farmer_id}", "patch"),
        ("/api/v1/farmers/{farmer_id}/confirm-funding", "post"),
        ("/api/v1/farmers/{farmer_id}/leave", "post"),
        ("/api/v1/pooler/farmers", "get"),
        ("/api/v1/pooler/earnings", "get"),
        ("/api/v1/pooler/heartbeat", "post"),
        ("/api/v1/pooler/plant-request", "post"),
        ("/api/v1/pooler/work-complete", "post"),
        ("/api/v1/pooler/harvest-request", "post"),
    }
    assert {(p, m) for p, ops in paths.items() for m in ops} == expected
    assert set(spec["components"]["securitySchemes"]) == {"AdminToken", "PoolerApiKey", "FarmerToken"}
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op["operationId"] and (op.get("summary") or op.get("description")), (path, method)
            if path.startswith("/api/v1/") and (path, method) != ("/api/v1/farmers", "post"):
                assert "security" in op, (path, method)
                assert "401" in op["responses"] and "429" in op["responses"], (path, method)
    error_schema = spec["components"]["schemas"]["ErrorResponse"]
    assert error_schema["properties"]["error"]["$ref"].endswith("/ErrorBody")


def test_pooler_action_schemas_follow_the_phase_1_field_names() -> None:
    farmer_id, pooler_id = uuid.uuid4(), uuid.uuid4()
    plant = wire.PlantRequest.model_validate({"block_index": 5, "pooler_id": str(pooler_id)})
    assert plant.max_farmers_capacity is None
    response = wire.PlantResponse(
        planted_farmers=[
            wire.PlantedFarmer(
                farmer_id=farmer_id,
                custodial_wallet="G" * 56,
                stake_amount=10,
                plant_tx_hash="ab" * 32,
                block_index=5,
                entropy="00" * 32,
                already_planted=False,
            )
        ],
        failed_plants=[
            wire.FailedPlant(farmer_id=farmer_id, error="e", message="m", attributed_to="farmer")
        ],
        summary=wire.PlantSummary(
            requested_block_index=5,
            farm_index=5,
            eligible=2,
            planted=1,
            failed=1,
            already_planted=0,
            skipped_capacity=0,
            total_staked=10,
            xlm_fees=200,
            duration_ms=3,
        ),
    )
    assert set(response.model_dump()) == {"planted_farmers", "failed_plants", "summary"}
    work = wire.WorkCompleteRequest.model_validate(
        {
            "block_index": 5,
            "pooler_id": str(pooler_id),
            "work_results": [
                {"farmer_id": str(farmer_id), "nonce": 2**64 - 1, "hash": "0" * 64, "zeros": 9, "gap": 3}
            ],
        }
    )
    assert work.work_results[0].nonce == 2**64 - 1
    assert set(wire.WorkCompleteResponse.model_fields) >= {
        "work_recorded",
        "rejected",
        "compensation_amount",
        "ready_for_harvest",
    }
    optional = wire.WorkResult.model_validate(
        {"farmer_id": str(farmer_id), "nonce": 1, "hash": "0" * 64, "zeros": 64}
    )
    assert optional.gap is None and optional.tx_hash is None
    harvest = wire.HarvestRequest.model_validate(
        {"pooler_id": str(pooler_id), "harvest_blocks": [{"block_index": 4, "farmer_ids": [str(farmer_id)]}]}
    )
    assert harvest.harvest_blocks[0].farmer_ids == [farmer_id]
    assert set(wire.HarvestResponse.model_fields) == {
        "harvest_results",
        "failed_harvests",
        "total_rewards",
    }
    for bad in (
        {"block_index": 2**32, "pooler_id": str(pooler_id)},
        {"block_index": 1, "pooler_id": str(pooler_id), "max_farmers_capacity": 0},
    ):
        with pytest.raises(ValidationError):
            wire.PlantRequest.model_validate(bad)
    with pytest.raises(ValidationError):
        wire.WorkResult.model_validate(
            {"farmer_id": str(farmer_id), "nonce": 2**64, "hash": "0" * 64, "zeros": 1, "gap": 1}
        )
    with pytest.raises(ValidationError):
        wire.HarvestRequest.model_validate({"pooler_id": str(pooler_id), "harvest_blocks": []})
