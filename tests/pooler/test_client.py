"""The backend client: auth, bounded retries with backoff, no retry on a 4xx, parsing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx
import pytest

from kalepool.pooler.client import BackendClient, BackendRejected, BackendUnavailable, WorkReport

POOLER = str(uuid.uuid4())
FARMER = str(uuid.uuid4())
WALLET = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"


def client(handler: Callable[[httpx.Request], httpx.Response], retries: int = 3) -> BackendClient:
    return BackendClient(
        "http://backend.test/",
        "kp_pooler_secret",
        retries=retries,
        backoff_initial=0.001,
        backoff_max=0.002,
        transport=httpx.MockTransport(handler),
    )


def farmers_page(request: httpx.Request) -> httpx.Response | None:
    if request.url.path == "/api/v1/pooler/farmers":
        return httpx.Response(200, json={"pooler_id": POOLER, "farmers": [], "count": 0, "total": 0})
    return None


async def test_plant_request_retries_5xx_and_parses_the_answer() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if (page := farmers_page(request)) is not None:
            return page
        seen.append(request)
        if len(seen) < 3:
            return httpx.Response(503, json={"error": {"code": "chain_unavailable", "message": "x"}})
        return httpx.Response(
            200,
            json={
                "planted_farmers": [
                    {
                        "farmer_id": FARMER, "custodial_wallet": WALLET, "stake_amount": 5,
                        "plant_tx_hash": "ab" * 32, "block_index": 8, "entropy": "cd" * 32,
                        "something_new": True,
                    }
                ],
                "failed_plants": [
                    {"farmer_id": FARMER, "error": "tx_insufficient_balance", "message": "m",
                     "attributed_to": "farmer"}
                ],
                "summary": {"requested": 2, "planted": 1},
            },
        )

    async with client(handler) as c:
        answer = await c.plant_request(8, max_farmers=10)
    assert len(seen) == 3
    body = json.loads(seen[-1].content)
    assert body == {"block_index": 8, "pooler_id": POOLER, "max_farmers_capacity": 10}
    assert seen[-1].headers["authorization"] == "Bearer kp_pooler_secret"
    assert len({r.headers["idempotency-key"] for r in seen}) == 1  # the same request each time
    assert answer.by_block() == {8: answer.planted}
    assert answer.planted[0].custodial_wallet == WALLET and answer.failed[0].attributed_to == "farmer"


async def test_connection_errors_and_timeouts_are_retried_then_given_up() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise httpx.ConnectError("refused", request=request)
        raise httpx.ReadTimeout("slow", request=request)

    async with client(handler, retries=3) as c:
        with pytest.raises(BackendUnavailable, match="timed out"):
            await c.request("GET", "/health")
    assert calls == 4


async def test_a_4xx_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(
            422, json={"error": {"code": "validation_error", "message": "bad", "field": "block_index"}}
        )

    async with client(handler) as c:
        with pytest.raises(BackendRejected) as info:
            await c.request("POST", "/pooler/plant-request", {"x": 1})
    assert calls == 1
    error = info.value
    assert (error.status, error.error_code, error.field) == (422, "validation_error", "block_index")


async def test_429_waits_for_retry_after() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return httpx.Response(429, headers={"Retry-After": "0.05"}, json={"error": {}})
        return httpx.Response(200, json={"ok": True})

    async with client(handler) as c:
        assert await c.request("GET", "/x") == {"ok": True}
    assert calls == 2


async def test_work_complete_and_harvest_request_bodies() -> None:
    bodies: dict[str, dict[str, object]] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        if (page := farmers_page(request)) is not None:
            return page
        bodies[request.url.path] = json.loads(request.content)
        if request.url.path.endswith("work-complete"):
            return httpx.Response(
                200,
                json={"work_recorded": 1, "rejected": [], "compensation_amount": 0,
                      "ready_for_harvest": [{"farmer_id": FARMER, "block_index": 8}]},
            )
        return httpx.Response(
            200,
            json={"harvest_results": [{"farmer_id": FARMER, "block_index": 8, "reward": 99,
                                       "stake_returned": 5, "harvest_tx_hash": "ff" * 32}],
                  "failed_harvests": [], "total_rewards": 99},
        )

    async with client(handler) as c:
        work = await c.work_complete(8, [WorkReport(FARMER, 2**64 - 1, "00" * 32, 6, 20, "ab" * 32)])
        harvest = await c.harvest_request({8: [FARMER], 9: []})
    assert work.ready_for_harvest == [(FARMER, 8)]
    assert bodies["/api/v1/pooler/work-complete"]["work_results"] == [
        {"farmer_id": FARMER, "nonce": 2**64 - 1, "hash": "00" * 32, "zeros": 6, "gap": 20,
         "tx_hash": "ab" * 32}
    ]
    assert bodies["/api/v1/pooler/harvest-request"]["harvest_blocks"] == [
        {"block_index": 8, "farmer_ids": [FARMER]}
    ]
    assert harvest.total_rewards == 99 and harvest.harvested[0].reward == 99
