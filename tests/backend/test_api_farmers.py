"""Farmer endpoints: registration, funding, reading and updating one's own record."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from sqlalchemy import func, select, update
from stellar_sdk import Keypair

from kalepool.backend import journal
from kalepool.backend.chain import ChainError, ChainUnavailable
from kalepool.backend.db.models import Farmer, Pail, Pooler
from kalepool.backend.enums import Asset, JournalKind
from tests.backend import factories
from tests.backend.conftest import Api
from tests.backend.fakes import TRUSTLINE_FEE
from tests.backend.test_api_operator import assert_error


async def _farmers(api: Api, pooler_id: str) -> int:
    async with api.context.db.transaction() as s:
        query = select(func.count(Farmer.id)).where(Farmer.pooler_id == uuid.UUID(pooler_id))
        return int((await s.execute(query)).scalar_one())


async def test_register_answers_the_custodial_wallet_and_a_token(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    wallet = Keypair.random().public_key
    body = {"pooler_id": pooler_id, "payout_wallet": wallet, "stake_percentage": 12.5}
    response = await api.client.post("/api/v1/farmers", json=body)
    assert response.status_code == 201
    data = response.json()
    assert data["pooler_id"] == pooler_id and data["payout_wallet"] == wallet
    assert data["stake_percentage"] == 12.5
    assert data["needs_funding"] is True
    assert data["farmer_token"].startswith("kp_farmer_")
    assert Keypair.from_public_key(data["custodial_wallet"]).public_key == data["custodial_wallet"]
    assert data["funding"]["custodial_wallet"] == data["custodial_wallet"]
    assert data["funding"]["min_xlm_balance"] == 25_000_000
    # the steps in the order the chain needs: the KALE trustline exists only after a confirm
    steps = data["funding"]["steps"]
    assert [(st["asset"], st["amount"], st["done"]) for st in steps] == [
        ("XLM", 25_000_000, False),
        (None, None, False),
        ("KALE", None, False),
        (None, None, False),
    ]
    assert "trustline" in steps[1]["action"] and "again" in steps[3]["action"]
    note = data["funding"]["note"]
    order = [note.index(word) for word in ("XLM", "confirm-funding", "KALE trustline", "again")]
    assert order == sorted(order)
    async with api.context.db.transaction() as s:
        row = await s.get(Farmer, uuid.UUID(data["farmer_id"]))
    assert row is not None and row.stake_bps == 1250 and row.funding_state == "unfunded"


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"pooler_id": "not-a-uuid"}, 422, "validation_error", "pooler_id"),
        ({"payout_wallet": "GNOPE"}, 422, "validation_error", "payout_wallet"),
        ({"payout_wallet": None}, 422, "validation_error", "payout_wallet"),
        ({"stake_percentage": 100.01}, 422, "validation_error", "stake_percentage"),
        ({"stake_percentage": -1}, 422, "validation_error", "stake_percentage"),
        ({"stake_percentage": 1.234}, 422, "validation_error", "stake_percentage"),
        ({"stake_percentage": "lots"}, 422, "validation_error", "stake_percentage"),
        ({"secret": "S..."}, 422, "validation_error", "secret"),
        ({"pooler_id": str(uuid.uuid4())}, 404, "pooler_not_found", "pooler_id"),
    ],
)
async def test_invalid_registrations_change_nothing(
    api: Api, change: dict, status: int, code: str, field: str
) -> None:
    pooler_id, _ = await api.create_pooler()
    body = {
        "pooler_id": pooler_id,
        "payout_wallet": Keypair.random().public_key,
        "stake_percentage": 50,
        **change,
    }
    assert_error(await api.client.post("/api/v1/farmers", json=body), status, code, field)
    assert await _farmers(api, pooler_id) == 0


async def test_malformed_json_is_400(api: Api) -> None:
    response = await api.client.post(
        "/api/v1/farmers", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_json")
    assert_error(await api.client.post("/api/v1/farmers"), 422, "validation_error")


async def test_a_full_pooler_takes_no_more_farmers(api: Api) -> None:
    pooler_id, _ = await api.create_pooler(max_farmers=2)
    await api.register_farmer(pooler_id)
    await api.register_farmer(pooler_id)
    body = {"pooler_id": pooler_id, "payout_wallet": Keypair.random().public_key, "stake_percentage": 5}
    assert_error(await api.client.post("/api/v1/farmers", json=body), 409, "pooler_full", "pooler_id")
    assert await _farmers(api, pooler_id) == 2


async def test_a_suspended_pooler_takes_no_farmers(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    async with api.context.db.transaction() as s:
        await s.execute(update(Pooler).where(Pooler.id == uuid.UUID(pooler_id)).values(status="suspended"))
    body = {"pooler_id": pooler_id, "payout_wallet": Keypair.random().public_key, "stake_percentage": 5}
    assert_error(await api.client.post("/api/v1/farmers", json=body), 409, "pooler_suspended")


async def test_confirm_funding_waits_for_the_account_then_adds_the_trustline(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    url = f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding"
    auth = api.bearer(farmer["farmer_token"])

    assert_error(await api.client.post(url, headers=auth), 409, "account_not_found")
    api.chain.fund(farmer["custodial_wallet"], xlm=24_999_999)
    assert_error(await api.client.post(url, headers=auth), 409, "insufficient_xlm")
    detail = (await api.client.get(f"/api/v1/farmers/{farmer['farmer_id']}", headers=auth)).json()
    assert detail["funding_state"] == "unfunded" and detail["funded_at"] is None

    api.chain.fund(farmer["custodial_wallet"], xlm=25_000_000)
    response = await api.client.post(url, headers=auth)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["trustline_created"] is True and data["trustline_tx_hash"]
    assert data["farmer"]["funding_state"] == "ready" and data["farmer"]["funded_at"]
    assert api.chain.ledger[farmer["custodial_wallet"]].has_kale_trustline
    async with api.context.db.transaction() as s:
        balances = await journal.farmer_balances(s, uuid.UUID(farmer["farmer_id"]))
    assert balances[Asset.XLM] == -TRUSTLINE_FEE
    assert balances.by_kind[Asset.XLM] == {JournalKind.XLM_FEE: -TRUSTLINE_FEE}

    assert data["deposits_journaled"] == 0
    # the trustline's fee took it just under the minimum again; the KALE is still to come
    assert data["funding"]["missing"] == ["xlm", "kale"] and data["funding"]["kale_balance"] == 0

    # confirming again adds no second trustline
    again = await api.client.post(url, headers=auth)
    assert again.status_code == 200 and again.json()["trustline_created"] is False
    assert [c for c in api.chain.calls if c[0] == "ensure_trustline"] == [
        ("ensure_trustline", farmer["custodial_wallet"])
    ]


async def test_every_confirmation_journals_the_kale_that_arrived(api: Api) -> None:
    """A second confirm-funding after the KALE arrived recorded nothing: the route returned
    early for a ready farmer, and only a restart's reconciler journaled the deposit."""
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    wallet, farmer_id = farmer["custodial_wallet"], uuid.UUID(farmer["farmer_id"])
    url = f"/api/v1/farmers/{farmer_id}/confirm-funding"
    auth = api.bearer(farmer["farmer_token"])
    api.chain.fund(wallet, xlm=30_000_000)
    first = (await api.client.post(url, headers=auth)).json()
    assert first["deposits_journaled"] == 0 and first["funding"]["missing"] == ["kale"]

    async def confirmed_with(kale: int) -> dict[str, object]:
        api.chain.ledger[wallet] = replace(api.chain.ledger[wallet], kale_balance=kale)
        response = await api.client.post(url, headers=auth)
        assert response.status_code == 200, response.text
        data: dict[str, object] = response.json()
        return data

    second = await confirmed_with(500)
    assert second["deposits_journaled"] == 500
    assert second["funding"] == {**second["funding"], "missing": [], "ready": True, "kale_balance": 500}
    assert all(step["done"] for step in second["funding"]["steps"])  # type: ignore[index]
    assert (await confirmed_with(500))["deposits_journaled"] == 0  # never twice
    assert (await confirmed_with(700))["deposits_journaled"] == 200
    async with api.context.db.transaction() as s:
        balances = await journal.farmer_balances(s, farmer_id)
    assert balances.by_kind[Asset.KALE] == {JournalKind.DEPOSIT: 700}


async def test_get_farmer_says_what_the_account_lacks(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    url = f"/api/v1/farmers/{farmer['farmer_id']}"
    auth = api.bearer(farmer["farmer_token"])
    lacking = (await api.client.get(url, headers=auth)).json()["funding"]
    assert lacking["missing"] == ["xlm", "trustline", "kale"] and lacking["ready"] is False
    api.chain.fund(farmer["custodial_wallet"], xlm=10_000_000)
    lacking = (await api.client.get(url, headers=auth)).json()["funding"]
    assert lacking["xlm_balance"] == 10_000_000 and lacking["missing"] == ["xlm", "trustline", "kale"]
    api.chain.fail_next = ChainUnavailable("rpc down")
    unknown = (await api.client.get(url, headers=auth)).json()["funding"]
    assert unknown["chain_known"] is False and unknown["missing"] == []


async def test_an_existing_trustline_is_not_added_again(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    api.chain.fund(farmer["custodial_wallet"], xlm=30_000_000, kale=5)
    response = await api.client.post(
        f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding", headers=api.bearer(farmer["farmer_token"])
    )
    assert response.status_code == 200 and response.json()["trustline_created"] is False
    assert ("ensure_trustline", farmer["custodial_wallet"]) not in api.chain.calls


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ChainUnavailable("rpc down"), 503, "chain_unavailable"),
        (ChainError("tx failed", code="tx_bad_seq"), 502, "tx_bad_seq"),
    ],
)
async def test_chain_failures_during_funding(api: Api, error: ChainError, status: int, code: str) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    api.chain.fail_next = error
    response = await api.client.post(
        f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding", headers=api.bearer(farmer["farmer_token"])
    )
    assert_error(response, status, code)
    async with api.context.db.transaction() as s:
        row = await s.get(Farmer, uuid.UUID(farmer["farmer_id"]))
    assert row is not None and row.funding_state == "unfunded"


async def test_get_farmer_shows_balances_and_recent_events(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.funded_farmer(pooler_id)
    farmer_id = uuid.UUID(farmer["farmer_id"])
    async with api.context.db.transaction() as s:
        row = await s.get(Farmer, farmer_id)
        assert row is not None
        s.add_all([factories.planting(row, 9), factories.work(row, 9), factories.harvest(row, 9)])
        await journal.record(
            s,
            [
                journal.Entry.farmer(farmer_id, JournalKind.STAKE_BURNED, -1000, "stake", block_index=9),
                journal.Entry.farmer(farmer_id, JournalKind.STAKE_RETURNED, 1000, "back", block_index=9),
                journal.Entry.farmer(farmer_id, JournalKind.REWARD, 123, "reward", block_index=9),
            ],
        )
    response = await api.client.get(
        f"/api/v1/farmers/{farmer_id}", headers=api.bearer(farmer["farmer_token"])
    )
    assert response.status_code == 200
    data = response.json()
    assert data["funding_state"] == "ready" and data["status"] == "active"
    assert data["balances"]["kale"] == 123 and data["balances"]["xlm"] == -TRUSTLINE_FEE
    assert data["balances"]["kale_by_kind"] == {"stake_burned": -1000, "stake_returned": 1000, "reward": 123}
    assert [p["block_index"] for p in data["recent_plantings"]] == [9]
    assert len(data["recent_plantings"][0]["entropy"]) == 64
    assert data["recent_works"][0]["zeros"] == 7 and data["recent_harvests"][0]["reward"] == 123
    assert len(data["recent_balance_changes"]) == 4


async def test_patch_farmer(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    url, auth = f"/api/v1/farmers/{farmer['farmer_id']}", api.bearer(farmer["farmer_token"])
    wallet = Keypair.random().public_key
    response = await api.client.patch(
        url, json={"stake_percentage": 100, "payout_wallet": wallet}, headers=auth
    )
    assert response.status_code == 200
    assert response.json()["stake_percentage"] == 100 and response.json()["payout_wallet"] == wallet
    response = await api.client.patch(url, json={"stake_percentage": 0}, headers=auth)
    assert response.json()["stake_percentage"] == 0 and response.json()["payout_wallet"] == wallet


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 422, "validation_error", None),
        ({"stake_percentage": 101}, 422, "validation_error", "stake_percentage"),
        ({"payout_wallet": "nope"}, 422, "validation_error", "payout_wallet"),
        ({"status": "departed"}, 422, "validation_error", "status"),
        ({"pooler_id": "nope"}, 422, "validation_error", "pooler_id"),
        ({"pooler_id": str(uuid.uuid4())}, 404, "pooler_not_found", "pooler_id"),
    ],
)
async def test_invalid_patches_change_nothing(
    api: Api, body: dict, status: int, code: str, field: str
) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id, stake_percentage=50)
    url, auth = f"/api/v1/farmers/{farmer['farmer_id']}", api.bearer(farmer["farmer_token"])
    assert_error(await api.client.patch(url, json=body, headers=auth), status, code, field)
    after = (await api.client.get(url, headers=auth)).json()
    assert after["stake_percentage"] == 50 and after["payout_wallet"] == farmer["payout_wallet"]


async def test_a_farmer_moves_to_another_pooler_once_no_block_is_open(api: Api) -> None:
    first, _ = await api.create_pooler()
    second, _ = await api.create_pooler()
    full, _ = await api.create_pooler(max_farmers=1)
    await api.register_farmer(full)
    farmer = await api.register_farmer(first)
    url, auth = f"/api/v1/farmers/{farmer['farmer_id']}", api.bearer(farmer["farmer_token"])
    assert_error(
        await api.client.patch(url, json={"pooler_id": full}, headers=auth), 409, "pooler_full", "pooler_id"
    )
    async with api.context.db.transaction() as s:
        s.add(
            Pail(
                farmer_id=uuid.UUID(farmer["farmer_id"]),
                pooler_id=uuid.UUID(first),
                block_index=7,
                state="planted",
            )
        )
    response = await api.client.patch(url, json={"pooler_id": second}, headers=auth)
    assert_error(response, 409, "pails_open", "pooler_id")
    async with api.context.db.transaction() as s:
        await s.execute(
            update(Pail).where(Pail.farmer_id == uuid.UUID(farmer["farmer_id"])).values(state="harvested")
        )
    response = await api.client.patch(url, json={"pooler_id": second}, headers=auth)
    assert response.status_code == 200 and response.json()["pooler_id"] == second


async def test_payout_wallet_cannot_be_the_custodial_account(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    url, auth = f"/api/v1/farmers/{farmer['farmer_id']}", api.bearer(farmer["farmer_token"])
    response = await api.client.patch(url, json={"payout_wallet": farmer["custodial_wallet"]}, headers=auth)
    assert_error(response, 409, "invalid_payout_wallet", "payout_wallet")


async def test_a_departed_farmer_cannot_change_or_fund(api: Api) -> None:
    pooler_id, _ = await api.create_pooler()
    farmer = await api.register_farmer(pooler_id)
    async with api.context.db.transaction() as s:
        await s.execute(
            update(Farmer).where(Farmer.id == uuid.UUID(farmer["farmer_id"])).values(status="departed")
        )
    url, auth = f"/api/v1/farmers/{farmer['farmer_id']}", api.bearer(farmer["farmer_token"])
    assert_error(
        await api.client.patch(url, json={"stake_percentage": 1}, headers=auth), 409, "farmer_departed"
    )
    assert_error(await api.client.post(url + "/confirm-funding", headers=auth), 409, "farmer_departed")
    assert (await api.client.get(url, headers=auth)).json()["status"] == "departed"


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("PATCH", ""), ("POST", "/confirm-funding")])
async def test_a_farmer_token_opens_only_its_own_farmer(api: Api, method: str, suffix: str) -> None:
    pooler_id, pooler_key = await api.create_pooler()
    alice, bob = await api.register_farmer(pooler_id), await api.register_farmer(pooler_id)
    body = {"stake_percentage": 1} if method == "PATCH" else None
    url = f"/api/v1/farmers/{bob['farmer_id']}{suffix}"

    async def call(headers: dict[str, str]):  # type: ignore[no-untyped-def]
        return await api.client.request(method, url, json=body, headers=headers)

    assert_error(await call(api.bearer(alice["farmer_token"])), 403, "forbidden")
    assert_error(await call(api.bearer(pooler_key)), 403, "forbidden")
    assert_error(await call(api.admin), 403, "forbidden")
    assert_error(await call({}), 401, "unauthenticated")
    assert_error(await call(api.bearer("kp_farmer_" + "x" * 43)), 401, "invalid_token")
    assert_error(await call(api.bearer("garbage")), 401, "invalid_token")
    # an unknown farmer id with a valid token is still someone else's
    other = f"/api/v1/farmers/{uuid.uuid4()}{suffix}"
    response = await api.client.request(method, other, json=body, headers=api.bearer(alice["farmer_token"]))
    assert_error(response, 403, "forbidden")
    assert_error(
        await api.client.get("/api/v1/farmers/not-a-uuid", headers=api.bearer(alice["farmer_token"])),
        422,
        "validation_error",
        "farmer_id",
    )
    own = await api.client.get(f"/api/v1/farmers/{bob['farmer_id']}", headers=api.bearer(bob["farmer_token"]))
    assert own.status_code == 200 and own.json()["stake_percentage"] == 50


async def test_concurrent_registrations_respect_the_capacity(api: Api) -> None:
    import asyncio

    pooler_id, _ = await api.create_pooler(max_farmers=3)
    body = lambda: {  # noqa: E731
        "pooler_id": pooler_id,
        "payout_wallet": Keypair.random().public_key,
        "stake_percentage": 5,
    }
    responses = await asyncio.gather(*(api.client.post("/api/v1/farmers", json=body()) for _ in range(8)))
    assert sorted(r.status_code for r in responses) == [201] * 3 + [409] * 5
    assert await _farmers(api, pooler_id) == 3
