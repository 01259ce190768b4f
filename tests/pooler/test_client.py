"""The backend client: auth, bounded retries with backoff, no retry on a 4xx, parsing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import httpx
import pytest

from kalepool.pooler.client import BackendClient, BackendRejected, BackendUnavailable
from kalepool.wire import ErrorCode, UnknownFields
from kalepool.wire import pooler as w

POOLER = str(uuid.uuid4())
SUMMARY = {
    "requested_block_index": 8, "farm_index": 8, "eligible": 2, "planted": 1, "already_planted": 0,
    "failed": 1, "skipped_capacity": 0, "total_staked": 5, "xlm_fees": 100, "duration_ms": 3,
}
FARMER = str(uuid.uuid4())
WALLET = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"


def client(
    handler: Callable[[httpx.Request], httpx.Response], retries: int = 3, strict: bool | None = False
) -> BackendClient:
    return BackendClient(
        "http://backend.test/",
        "kp_pooler_secret",
        retries=retries,
        backoff_initial=0.001,
        backoff_max=0.002,
        transport=httpx.MockTransport(handler),
        strict=strict,
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
                        "already_planted": False, "something_new": True,
                    }
                ],
                "failed_plants": [
                    {"farmer_id": FARMER, "error": "insufficient_xlm", "message": "m",
                     "attributed_to": "farmer"},
                    {"farmer_id": FARMER, "error": "a_code_from_the_future", "message": "m",
                     "attributed_to": "chain"},
                ],
                "summary": SUMMARY,
            },
        )

    async with client(handler) as c:
        answer = await c.plant_request(8, max_farmers=10)
    assert len(seen) == 3
    body = json.loads(seen[-1].content)
    assert body == {"block_index": 8, "pooler_id": POOLER, "network": None, "max_farmers_capacity": 10}
    assert seen[-1].headers["authorization"] == "Bearer kp_pooler_secret"
    assert len({r.headers["idempotency-key"] for r in seen}) == 1  # the same request each time
    assert answer.by_block() == {8: answer.planted_farmers}
    assert answer.planted_farmers[0].custodial_wallet == WALLET
    first, second = answer.failed_plants
    assert first.error is ErrorCode.INSUFFICIENT_XLM and not first.retryable  # the farmer's: not again
    assert second.error is ErrorCode.UNKNOWN and second.retryable  # the chain's: ask again


async def test_unknown_fields_are_an_error_when_strict() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if (page := farmers_page(request)) is not None:
            return page
        return httpx.Response(
            200, json={"planted_farmers": [], "failed_plants": [], "summary": {**SUMMARY, "surprise": 1}}
        )

    async with client(handler, strict=True) as c:
        with pytest.raises(UnknownFields, match=r"summary\.surprise"):
            await c.plant_request(8)
    async with client(handler, strict=False) as c:  # production: a warning, and the answer
        assert (await c.plant_request(8)).summary.planted == 1


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
                json={"block_index": 8, "work_recorded": 1, "rejected": [], "compensation_amount": 0,
                      "compensations": [], "ready_for_harvest": [{"farmer_id": FARMER, "block_index": 8}]},
            )
        return httpx.Response(
            200,
            json={"harvest_results": [{"farmer_id": FARMER, "block_index": 8, "reward": 99,
                                       "stake_returned": 5, "harvest_tx_hash": "ff" * 32, "pooler_share": 1,
                                       "platform_fee": 1, "farmer_reward": 97, "already_harvested": False}],
                  "failed_harvests": [], "total_rewards": 99},
        )

    result = w.WorkResult(
        farmer_id=uuid.UUID(FARMER), nonce=2**64 - 1, hash="00" * 32, zeros=6, gap=20, tx_hash="ab" * 32
    )
    async with client(handler, strict=True) as c:
        work = await c.work_complete(8, [result])
        harvest = await c.harvest_request({8: [FARMER], 9: []})
    assert [(str(r.farmer_id), r.block_index) for r in work.ready_for_harvest] == [(FARMER, 8)]
    assert bodies["/api/v1/pooler/work-complete"]["work_results"] == [
        {"farmer_id": FARMER, "nonce": 2**64 - 1, "hash": "00" * 32, "zeros": 6, "gap": 20,
         "tx_hash": "ab" * 32}
    ]
    assert bodies["/api/v1/pooler/harvest-request"]["harvest_blocks"] == [
        {"block_index": 8, "farmer_ids": [FARMER]}
    ]
    assert harvest.total_rewards == 99 and harvest.harvest_results[0].reward == 99
