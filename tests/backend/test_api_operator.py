"""Operator endpoints: poolers and blocks, admin token only."""

from __future__ import annotations

import uuid

import pytest
from stellar_sdk import Keypair

from kalepool.backend.db.models import BlockOperation
from kalepool.backend.enums import EventStatus
from tests.backend import factories
from tests.backend.conftest import Api


def assert_error(response, status: int, code: str, field: str | None = None) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    if field is not None:
        assert error["field"] == field


async def _names(api: Api) -> list[str]:
    response = await api.client.get("/api/v1/poolers", headers=api.admin)
    return sorted(p["name"] for p in response.json()["poolers"])


async def test_create_pooler_returns_its_key_once(api: Api) -> None:
    account = Keypair.random().public_key
    body = {"name": "rig-1", "public_key": account, "reward_share_bps": 1000, "max_farmers": 50}
    response = await api.client.post("/api/v1/poolers", json=body, headers=api.admin)
    assert response.status_code == 201
    data = response.json()
    assert data["api_key"].startswith("kp_pooler_")
    pooler = data["pooler"]
    assert pooler["name"] == "rig-1" and pooler["public_key"] == account
    assert pooler["reward_share_bps"] == 1000 and pooler["max_farmers"] == 50
    assert pooler["status"] == "active" and pooler["farmers"] == 0

    listed = await api.client.get("/api/v1/poolers", headers=api.admin)
    assert listed.status_code == 200
    assert pooler in listed.json()["poolers"]
    assert listed.json()["count"] == len(listed.json()["poolers"])
    assert "api_key" not in listed.text and data["api_key"] not in listed.text


async def test_list_poolers_counts_farmers(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    await api.register_farmer(pooler_id)
    await api.funded_farmer(pooler_id)
    response = await api.client.get("/api/v1/poolers", headers=api.admin)
    (pooler,) = [p for p in response.json()["poolers"] if p["pooler_id"] == pooler_id]
    assert (pooler["farmers"], pooler["plantable_farmers"]) == (2, 1)


async def test_duplicate_pooler_name_is_a_conflict(api: Api) -> None:
    await api.create_pooler("twin")
    response = await api.client.post("/api/v1/poolers", json={"name": "twin"}, headers=api.admin)
    assert_error(response, 409, "pooler_exists", "name")
    assert (await _names(api)).count("twin") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "bad/name"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "ok", "public_key": "GABC"}, "public_key"),
        ({"name": "ok", "public_key": "S" + "A" * 55}, "public_key"),
        ({"name": "ok", "reward_share_bps": 10_001}, "reward_share_bps"),
        ({"name": "ok", "max_farmers": 0}, "max_farmers"),
        ({"name": "ok", "surprise": 1}, "surprise"),
    ],
)
async def test_invalid_pooler_bodies_are_422_and_change_nothing(api: Api, body: dict, field: str) -> None:
    before = await _names(api)
    response = await api.client.post("/api/v1/poolers", json=body, headers=api.admin)
    assert_error(response, 422, "validation_error", field)
    assert await _names(api) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/poolers"), ("POST", "/api/v1/poolers"), ("GET", "/api/v1/blocks/1")],
)
async def test_operator_endpoints_need_the_admin_token(api: Api, method: str, path: str) -> None:
    pooler_id, pooler_key = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    body = {"name": "intruder"} if method == "POST" else None

    async def call(headers: dict[str, str]):  # type: ignore[no-untyped-def]
        return await api.client.request(method, path, json=body, headers=headers)

    assert_error(await call({}), 401, "unauthenticated")
    assert_error(await call({"Authorization": "Basic abc"}), 401, "unauthenticated")
    assert_error(await call(api.bearer("not-the-admin-token-at-all")), 401, "invalid_token")
    assert_error(await call(api.bearer(pooler_key)), 403, "forbidden")
    assert_error(await call(api.bearer(farmer["farmer_token"])), 403, "forbidden")
    assert "intruder" not in await _names(api)


async def test_no_admin_token_configured_refuses_everyone(api: Api) -> None:
    api.context.settings = api.context.settings.model_copy(update={"admin_token": None})
    response = await api.client.get("/api/v1/poolers", headers=api.admin)
    assert_error(response, 401, "invalid_token")


async def test_block_report(api: Api) -> None:
    response = await api.client.get("/api/v1/blocks/42", headers=api.admin)
    assert_error(response, 404, "block_not_found")
    assert_error(
        await api.client.get("/api/v1/blocks/-1", headers=api.admin), 422, "validation_error", "block_index"
    )
    assert_error(
        await api.client.get("/api/v1/blocks/4294967296", headers=api.admin), 422, "validation_error"
    )
    assert_error(await api.client.get("/api/v1/blocks/abc", headers=api.admin), 422, "validation_error")

    async with api.context.db.transaction() as s:
        p = await factories.pooler(s)
        f = await factories.farmer(s, p.id)
        s.add_all(
            [factories.planting(f, 42), factories.planting(f, 42, EventStatus.FAILED), factories.work(f, 42)]
        )
        s.add(
            BlockOperation(
                block_index=42, pooler_id=p.id, farmers_planted=1, farmers_failed=1, total_staked=1000
            )
        )
    response = await api.client.get("/api/v1/blocks/42", headers=api.admin)
    assert response.status_code == 200
    data = response.json()
    assert data["block_index"] == 42
    assert data["plantings"] == {"succeeded": 1, "failed": 1}
    assert data["works"] == {"accepted": 1} and data["harvests"] == {}
    (operation,) = data["poolers"]
    assert operation["pooler_id"] == str(p.id) and operation["total_staked"] == 1000


async def test_unknown_ids_are_just_uuids(api: Api) -> None:
    body = {
        "pooler_id": str(uuid.uuid4()),
        "payout_wallet": Keypair.random().public_key,
        "stake_percentage": 1,
    }
    assert_error(await api.client.post("/api/v1/farmers", json=body), 404, "pooler_not_found", "pooler_id")
