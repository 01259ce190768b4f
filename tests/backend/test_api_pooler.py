"""Pooler endpoints: a pooler sees and acts on its own farmers only."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from kalepool.backend.db.models import Pooler
from tests.backend.conftest import Api
from tests.backend.test_api_operator import assert_error


async def test_a_pooler_lists_only_its_own_farmers(api: Api) -> None:
    a_id, a_key = await api.create_pooler()
    b_id, b_key = await api.create_pooler()
    mine = [await api.register_farmer(a_id) for _ in range(3)]
    ready = await api.funded_farmer(a_id)
    theirs = await api.register_farmer(b_id)

    response = await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(a_key))
    assert response.status_code == 200
    data = response.json()
    assert data["pooler_id"] == a_id and data["total"] == 4 and data["count"] == 4
    ids = {f["farmer_id"] for f in data["farmers"]}
    assert ids == {f["farmer_id"] for f in [*mine, ready]}
    assert theirs["farmer_id"] not in response.text and theirs["custodial_wallet"] not in response.text

    ready_only = await api.client.get(
        "/api/v1/pooler/farmers", params={"funding_state": "ready"}, headers=api.bearer(a_key)
    )
    assert [f["farmer_id"] for f in ready_only.json()["farmers"]] == [ready["farmer_id"]]
    page = await api.client.get(
        "/api/v1/pooler/farmers",
        params={"limit": 2, "offset": 3, "status": "active"},
        headers=api.bearer(a_key),
    )
    assert page.json()["count"] == 1 and page.json()["total"] == 4

    other = await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(b_key))
    assert [f["farmer_id"] for f in other.json()["farmers"]] == [theirs["farmer_id"]]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"status": "gone"}, {"funding_state": "rich"}]
)
async def test_bad_list_parameters(api: Api, params: dict) -> None:
    _, key = await api.create_pooler()
    response = await api.client.get("/api/v1/pooler/farmers", params=params, headers=api.bearer(key))
    assert_error(response, 422, "validation_error", next(iter(params)))


async def test_heartbeat(api: Api) -> None:
    pooler_id, key = await api.create_pooler()
    await api.funded_farmer(pooler_id)
    body = {
        "pooler_id": pooler_id,
        "status": "mining",
        "version": "0.1.0",
        "hash_rate": 1.5e7,
        "current_block": 9,
    }
    response = await api.client.post("/api/v1/pooler/heartbeat", json=body, headers=api.bearer(key))
    assert response.status_code == 200
    assert response.json()["pooler_id"] == pooler_id and response.json()["plantable_farmers"] == 1
    async with api.context.db.transaction() as s:
        row = await s.get(Pooler, uuid.UUID(pooler_id))
    assert row is not None and row.last_heartbeat_at is not None
    assert row.last_heartbeat == {
        "status": "mining",
        "version": "0.1.0",
        "hash_rate": 1.5e7,
        "current_block": 9,
    }
    listed = await api.client.get("/api/v1/poolers", headers=api.admin)
    (mine,) = [p for p in listed.json()["poolers"] if p["pooler_id"] == pooler_id]
    assert mine["last_heartbeat_at"] is not None


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"hash_rate": -1}, "hash_rate"), ({"current_block": 2**32}, "current_block"), ({"x": 1}, "x")],
)
async def test_invalid_heartbeats(api: Api, extra: dict, field: str) -> None:
    pooler_id, key = await api.create_pooler()
    response = await api.client.post(
        "/api/v1/pooler/heartbeat", json={"pooler_id": pooler_id, **extra}, headers=api.bearer(key)
    )
    assert_error(response, 422, "validation_error", field)


async def test_a_pooler_cannot_act_for_another(api: Api) -> None:
    _, a_key = await api.create_pooler()
    b_id, _ = await api.create_pooler()
    response = await api.client.post(
        "/api/v1/pooler/heartbeat", json={"pooler_id": b_id}, headers=api.bearer(a_key)
    )
    assert_error(response, 403, "forbidden", "pooler_id")
    async with api.context.db.transaction() as s:
        row = await s.get(Pooler, uuid.UUID(b_id))
    assert row is not None and row.last_heartbeat_at is None


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/api/v1/pooler/farmers"), ("POST", "/api/v1/pooler/heartbeat")]
)
async def test_pooler_endpoints_need_a_live_pooler_key(api: Api, method: str, path: str) -> None:
    pooler_id, key = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    body = {"pooler_id": pooler_id} if method == "POST" else None

    async def call(headers: dict[str, str]):  # type: ignore[no-untyped-def]
        return await api.client.request(method, path, json=body, headers=headers)

    assert_error(await call({}), 401, "unauthenticated")
    assert_error(await call(api.bearer("kp_pooler_" + "y" * 43)), 401, "invalid_token")
    assert_error(await call(api.bearer(farmer["farmer_token"])), 403, "forbidden")
    assert_error(await call(api.admin), 403, "forbidden")
    assert (await call(api.bearer(key))).status_code == 200
    async with api.context.db.transaction() as s:
        await s.execute(update(Pooler).where(Pooler.id == uuid.UUID(pooler_id)).values(status="suspended"))
    assert_error(await call(api.bearer(key)), 403, "pooler_suspended")
