"""Issue 13's findings, each with the inputs quoted there: no 5xx on any input, nothing
disclosed, nothing written twice, limits that hold."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update
from stellar_sdk import Keypair

from kalepool.backend.custody import Keyring
from kalepool.backend.db.models import BlockOperation, Farmer, Pail, Planting, Work
from kalepool.backend.db.session import Database
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.settings import BackendSettings, StellarSettings
from tests.backend import factories
from tests.backend.conftest import Api, make_api
from tests.backend.fakes import FakeChain
from tests.backend.live import serving
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


# --- finding 7: limits that hold -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pooler keys", "admin tokens"])
async def test_failed_authentication_is_limited_per_address_across_credentials(
    db: Database, keyring: Keyring, kind: str
) -> None:
    api = await make_api(db, keyring, FakeChain(), auth_failures_burst=20, auth_failures_per_minute=10)
    async with api.client:
        _, key = await api.create_pooler()
        path = "/api/v1/pooler/farmers" if kind == "pooler keys" else "/api/v1/poolers"
        statuses = []
        for _ in range(30):  # a different guess every time: one bucket per key would never empty
            guess = ("kp_pooler_" if kind == "pooler keys" else "") + secrets.token_urlsafe(32)
            statuses.append((await api.client.get(path, headers=api.bearer(guess))).status_code)
        assert statuses == [401] * 20 + [429] * 10
        # the address is limited, whatever it sends now
        assert (await api.client.get("/api/v1/pooler/farmers", headers=api.bearer(key))).status_code == 429
        metrics = (await api.client.get("/metrics")).text
    assert 'kalepool_rate_limited_total{scope="auth_failures"} 11.0' in metrics


def test_the_admin_token_is_32_random_characters_at_least() -> None:
    for weak in ("x" * 24 + "abcdefgh", "0123456789" * 4, "admin-token-24-characters"):
        with pytest.raises(ValueError, match="32 random characters"):
            BackendSettings(admin_token=weak)
    assert BackendSettings(admin_token=secrets.token_urlsafe(32)).admin_token is not None
    with pytest.raises(ValueError, match="trusted_proxies"):
        BackendSettings(trusted_proxies=["proxy.example"])


def _anonymous_statuses(url: str, forwarded: list[str]) -> list[int]:
    with httpx.Client(base_url=url, timeout=30) as http:
        return [
            http.get("/api/v1/poolers", headers={"X-Forwarded-For": address}).status_code
            for address in forwarded
        ]


def test_forwarded_headers_are_believed_only_from_configured_proxies(database_url: str) -> None:
    limits = {"anonymous_rate_limit_burst": 3, "anonymous_rate_limit_rps": 0.001}
    spoofed = [f"203.0.113.{i}" for i in range(6)]
    keyring = Keyring([os.urandom(32)])
    with serving(database_url, keyring, FakeChain(), **limits) as url:  # the default: no proxy
        assert _anonymous_statuses(url, spoofed) == [401] * 3 + [429] * 3
    with serving(database_url, keyring, FakeChain(), trusted_proxies=["127.0.0.0/8"], **limits) as url:
        assert _anonymous_statuses(url, spoofed) == [401] * 6  # each its own client
        assert _anonymous_statuses(url, ["198.51.100.7"] * 4) == [401] * 3 + [429]


async def test_health_checks_are_cached(db: Database, keyring: Keyring) -> None:
    chain = FakeChain()
    api = await make_api(db, keyring, chain, health_cache_seconds=60)
    async with api.client:
        answers = await asyncio.gather(*(api.client.get("/health/stellar") for _ in range(20)))
        answers += await asyncio.gather(*(api.client.get("/health/db") for _ in range(20)))
    assert {a.status_code for a in answers} == {200}
    assert [c for c in chain.calls if c[0] == "health"] == [("health", "")]


async def test_metrics_behind_a_token_when_one_is_set(db: Database, keyring: Keyring) -> None:
    token = secrets.token_urlsafe(32)
    api = await make_api(db, keyring, FakeChain(), metrics_token=token)
    async with api.client:
        assert_error(await api.client.get("/metrics"), 401, "unauthenticated")
        assert_error(await api.client.get("/metrics", headers=api.bearer("wrong")), 401, "unauthenticated")
        allowed = await api.client.get("/metrics", headers=api.bearer(token))
    assert allowed.status_code == 200 and "kalepool_backend_up 1.0" in allowed.text


async def test_the_openapi_document_declares_every_error_answer(api: Api) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in json.dumps(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            wanted = {"500"}
            if path.startswith("/api/v1/"):
                wanted |= {"503"}
            if "requestBody" in operation:
                wanted |= {"400", "413", "422"}
            if operation.get("parameters"):
                wanted |= {"422"}
            if operation.get("security"):
                wanted |= {"401", "429"}
            assert wanted <= declared, (method, path, wanted - declared)
            for status in ("429", "503"):
                if status in declared and path.startswith("/api/v1/"):
                    assert "Retry-After" in operation["responses"][status]["headers"], (method, path)


async def test_a_body_over_the_limit_is_refused_before_it_is_read(api: Api) -> None:
    pooler_id, key = await api.create_pooler()
    results = [{"farmer_id": str(uuid.uuid4()), "nonce": 1, "hash": "0" * 64, "zeros": 0}] * 40_000
    response = await api.client.post(
        "/api/v1/pooler/work-complete", json=_work(pooler_id, *results), headers=api.bearer(key)
    )
    assert_error(response, 413, "payload_too_large")


async def test_a_chunked_body_over_the_limit_is_cut_off_with_413(api: Api) -> None:
    pooler_id, key = await api.create_pooler()

    async def chunks() -> Any:
        yield b'{"pooler_id": "' + pooler_id.encode() + b'", "status": "'
        for _ in range(80):  # 5 MiB, without a Content-Length
            yield b"x" * 65_536
        yield b'"}'

    response = await api.client.post(
        "/api/v1/pooler/heartbeat",
        content=chunks(),
        headers={**api.bearer(key), "Content-Type": "application/json"},
    )
    assert_error(response, 413, "payload_too_large")
