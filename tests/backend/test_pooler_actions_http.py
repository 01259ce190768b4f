"""The three pooler actions over HTTP: every 4xx path, authorization, and 503s.

No chain is needed to refuse a request: these run on the in-memory ``FakeChain``.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, update

from kalepool.backend.chain import UnavailableChain
from kalepool.backend.custody import Keyring
from kalepool.backend.db.models import Pail, Planting, Pooler
from kalepool.backend.db.session import Database
from tests.backend.conftest import Api, make_api
from tests.backend.fakes import FakeChain
from tests.backend.test_api_operator import assert_error

PATHS = ("plant-request", "work-complete", "harvest-request")


def body_for(path: str, pooler_id: str, farmer_id: str | None = None) -> dict[str, Any]:
    farmer_id = farmer_id or str(uuid.uuid4())
    if path == "plant-request":
        return {"block_index": 1, "pooler_id": pooler_id}
    if path == "work-complete":
        return {
            "block_index": 1,
            "pooler_id": pooler_id,
            "work_results": [{"farmer_id": farmer_id, "nonce": 1, "hash": "ab" * 32, "zeros": 0}],
        }
    return {"pooler_id": pooler_id, "harvest_blocks": [{"block_index": 0, "farmer_ids": [farmer_id]}]}


@pytest.mark.parametrize("path", PATHS)
async def test_credentials(api: Api, path: str) -> None:
    pooler_id, key = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    url = f"/api/v1/pooler/{path}"
    body = body_for(path, pooler_id)

    assert_error(await api.client.post(url, json=body), 401, "unauthenticated")
    assert_error(
        await api.client.post(url, json=body, headers=api.bearer("kp_pooler_" + "z" * 43)),
        401,
        "invalid_token",
    )
    assert_error(
        await api.client.post(url, json=body, headers=api.bearer(farmer["farmer_token"])), 403, "forbidden"
    )
    assert_error(await api.client.post(url, json=body, headers=api.admin), 403, "forbidden")
    assert (await api.client.post(url, json=body, headers=api.bearer(key))).status_code == 200
    async with api.context.db.transaction() as s:
        await s.execute(update(Pooler).where(Pooler.id == uuid.UUID(pooler_id)).values(status="suspended"))
    assert_error(await api.client.post(url, json=body, headers=api.bearer(key)), 403, "pooler_suspended")
    assert_error(await api.client.get(url, headers=api.bearer(key)), 405, "method_not_allowed")


@pytest.mark.parametrize("path", PATHS)
async def test_a_pooler_cannot_act_for_another(api: Api, path: str) -> None:
    _, a_key = await api.create_pooler()
    b_id, _ = await api.create_pooler()
    theirs = await api.funded_farmer(b_id)
    response = await api.client.post(
        f"/api/v1/pooler/{path}", json=body_for(path, b_id, theirs["farmer_id"]), headers=api.bearer(a_key)
    )
    assert_error(response, 403, "forbidden", "pooler_id")
    async with api.context.db.transaction() as s:
        assert (await s.scalars(select(Pail).where(Pail.pooler_id == uuid.UUID(b_id)))).all() == []
        assert (await s.scalars(select(Planting).where(Planting.pooler_id == uuid.UUID(b_id)))).all() == []


async def test_naming_another_poolers_farmers_reveals_nothing(api: Api) -> None:
    a_id, a_key = await api.create_pooler()
    b_id, _ = await api.create_pooler()
    theirs = await api.funded_farmer(b_id)
    work = await api.client.post(
        "/api/v1/pooler/work-complete",
        json=body_for("work-complete", a_id, theirs["farmer_id"]),
        headers=api.bearer(a_key),
    )
    assert work.status_code == 200
    assert [r["reason"] for r in work.json()["rejected"]] == ["unknown_farmer"]
    harvest = await api.client.post(
        "/api/v1/pooler/harvest-request",
        json=body_for("harvest-request", a_id, theirs["farmer_id"]),
        headers=api.bearer(a_key),
    )
    assert [f["error"] for f in harvest.json()["failed_harvests"]] == ["unknown_farmer"]
    unknown = await api.client.post(
        "/api/v1/pooler/harvest-request", json=body_for("harvest-request", a_id), headers=api.bearer(a_key)
    )
    assert [f["error"] for f in unknown.json()["failed_harvests"]] == ["unknown_farmer"]  # the same answer
    for response in (work, harvest):
        assert theirs["custodial_wallet"] not in response.text


_HASH = "ab" * 32
_F = "00000000-0000-0000-0000-000000000001"
_W = "work_results.0."


def _work(**fields: Any) -> dict[str, Any]:
    """A work-complete body change: one result, ``fields`` over a valid one (None drops)."""
    result = {"farmer_id": _F, "nonce": 1, "hash": _HASH, "zeros": 1, **fields}
    return {"work_results": [{k: v for k, v in result.items() if v is not None}]}


def _harvest(block: Any = 1, farmer_ids: Any = (_F,)) -> dict[str, Any]:
    return {"harvest_blocks": [{"block_index": block, "farmer_ids": list(farmer_ids)}]}


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("plant-request", {"block_index": -1}, "block_index"),
    ("plant-request", {"block_index": 2**32}, "block_index"),
    ("plant-request", {"block_index": "one"}, "block_index"),
    ("plant-request", {"max_farmers_capacity": 0}, "max_farmers_capacity"),
    ("plant-request", {"pooler_id": "not-a-uuid"}, "pooler_id"),
    ("plant-request", {"farmers": []}, "farmers"),
    ("work-complete", {"block_index": 2**32}, "block_index"),
    ("work-complete", {"work_results": None}, "work_results"),
    ("work-complete", _work(nonce=2**64), _W + "nonce"),
    ("work-complete", _work(nonce=-1), _W + "nonce"),
    ("work-complete", _work(hash="AB" * 32), _W + "hash"),
    ("work-complete", _work(hash="ab"), _W + "hash"),
    ("work-complete", _work(zeros=65), _W + "zeros"),
    ("work-complete", _work(gap=-1), _W + "gap"),
    ("work-complete", _work(tx_hash="x"), _W + "tx_hash"),
    ("work-complete", _work(zeros=None), _W + "zeros"),
    ("work-complete", _work(secret=1), _W + "secret"),
    ("harvest-request", {"harvest_blocks": []}, "harvest_blocks"),
    ("harvest-request", _harvest(farmer_ids=()), "harvest_blocks.0.farmer_ids"),
    ("harvest-request", _harvest(block=-1), "harvest_blocks.0.block_index"),
    ("harvest-request", _harvest(farmer_ids=("x",)), "harvest_blocks.0.farmer_ids.0"),
]


@pytest.mark.parametrize(("path", "change", "field"), INVALID)
async def test_invalid_bodies_are_422_with_the_field(
    api: Api, path: str, change: dict[str, Any], field: str
) -> None:
    pooler_id, key = await api.create_pooler()
    body = {**body_for(path, pooler_id), **change}
    response = await api.client.post(f"/api/v1/pooler/{path}", json=body, headers=api.bearer(key))
    assert_error(response, 422, "validation_error", field)


@pytest.mark.parametrize("path", PATHS)
async def test_malformed_json_is_400(api: Api, path: str) -> None:
    _, key = await api.create_pooler()
    response = await api.client.post(
        f"/api/v1/pooler/{path}",
        content=b'{"block_index": 1,',
        headers={**api.bearer(key), "content-type": "application/json"},
    )
    assert_error(response, 400, "invalid_json")


@pytest.mark.parametrize("path", PATHS)
async def test_rate_limited_requests_get_429(db: Database, keyring: Keyring, path: str) -> None:
    api = await make_api(db, keyring, FakeChain(), rate_limit_rps=0.01, rate_limit_burst=1)
    async with api.client:
        pooler_id, key = await api.create_pooler()
        url, body = f"/api/v1/pooler/{path}", body_for(path, pooler_id)
        assert (await api.client.post(url, json=body, headers=api.bearer(key))).status_code == 200
        response = await api.client.post(url, json=body, headers=api.bearer(key))
    assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("path", ["plant-request", "harvest-request"])
async def test_an_unreachable_chain_is_503(db: Database, keyring: Keyring, path: str) -> None:
    api = await make_api(db, keyring, UnavailableChain("RPC down"))
    async with api.client:
        pooler_id, key = await api.create_pooler()
        response = await api.client.post(
            f"/api/v1/pooler/{path}", json=body_for(path, pooler_id), headers=api.bearer(key)
        )
    assert_error(response, 503, "chain_unavailable")


async def test_the_openapi_document_describes_the_actions(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    for path in PATHS:
        op = spec["paths"][f"/api/v1/pooler/{path}"]["post"]
        assert {"200", "401", "403", "422", "429", "503"} <= set(op["responses"])
        assert op["security"] == [{"PoolerApiKey": []}]
    plant = spec["components"]["schemas"]["PlantedFarmer"]["properties"]
    assert {
        "farmer_id",
        "custodial_wallet",
        "stake_amount",
        "plant_tx_hash",
        "block_index",
        "entropy",
    } <= set(plant)


async def test_the_worker_runner_loops_and_stops(fresh_db: Database, keyring: Keyring) -> None:
    import asyncio

    from kalepool.backend.workers import WorkerRunner

    api = await make_api(fresh_db, keyring, FakeChain(), harvest_interval=0.01, reconcile_interval=0.01)
    runner = WorkerRunner(api.context.ops, api.context.reconcile_status)
    runner.start()
    runs = api.context.metrics.worker_runs
    for _ in range(500):
        await asyncio.sleep(0.01)
        ok = [runs.labels(worker=w, outcome="ok")._value.get() for w in ("harvester", "reconciler")]
        if min(ok) >= 2:
            break
    await runner.stop()
    assert min(ok) >= 2 and runner.tasks == []
    assert runs.labels(worker="harvester", outcome="error")._value.get() == 0
    assert api.context.reconcile_status.state == "ok"
