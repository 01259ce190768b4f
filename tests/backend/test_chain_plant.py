"""``plant-request`` against the devnet: funding, the fan-out, attribution, idempotency, resume."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from stellar_sdk import TransactionEnvelope

from kalepool.backend.db.models import BalanceChange, Pail, Planting
from kalepool.backend.enums import JournalKind
from kalepool.backend.services.planting import plant_request
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.devnet.testing import DevnetHandle
from tests.backend.conftest import Api
from tests.backend.devnet_env import (
    KALE,
    XLM,
    Controls,
    FlakyChain,
    closing,
    custodial_keypair,
    force_ready,
    ready_farmer,
)
from tests.backend.test_api_operator import assert_error


async def kill(task: asyncio.Task[Any]) -> None:
    """Cancel a task for good. (Python 3.11's ``asyncio.wait_for``, used by the gateway's
    RPC client, can swallow a cancellation that races the awaited call's completion, so
    one ``cancel()`` may not be enough: CPython gh-86296.)"""
    while not task.done():
        task.cancel()
        await asyncio.sleep(0.01)


async def plant(api: Api, controls: Controls, key: str, pooler_id: str, block: int, **extra: Any) -> Any:
    body = {"block_index": block, "pooler_id": pooler_id, **extra}
    response = await closing(
        controls, api.client.post("/api/v1/pooler/plant-request", json=body, headers=api.bearer(key))
    )
    assert response.status_code == 200, response.text
    return response.json()


async def rows(api: Api, model: Any, *conditions: Any) -> list[Any]:
    async with api.context.db.transaction() as s:
        return list((await s.scalars(select(model).where(*conditions))).all())


async def test_registration_funding_and_trustline_through_friendbot(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, _ = await dev_api.create_pooler()
    farmer = await dev_api.register_farmer(pooler_id)
    url = f"/api/v1/farmers/{farmer['farmer_id']}/confirm-funding"
    auth = dev_api.bearer(farmer["farmer_token"])
    assert_error(await dev_api.client.post(url, headers=auth), 409, "account_not_found")

    assert devnet.friendbot(farmer["custodial_wallet"]).status_code == 200  # 10,000 XLM
    response = await closing(controls, dev_api.client.post(url, headers=auth))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["trustline_created"] is True and data["farmer"]["funding_state"] == "ready"
    account = await dev_chain.account(farmer["custodial_wallet"])
    assert account.has_kale_trustline and account.kale_balance == 0
    fees = await rows(dev_api, BalanceChange, BalanceChange.farmer_id == uuid.UUID(farmer["farmer_id"]))
    assert [(f.kind, f.asset, f.reference) for f in fees] == [("xlm_fee", "XLM", data["trustline_tx_hash"])]
    assert -fees[0].amount > 0

    # a deposit made later is journaled by the reconciler's check
    devnet.fund(farmer["custodial_wallet"], xlm=0, kale=7 * KALE)
    from kalepool.backend.services.reconcile import reconcile

    report = await reconcile(dev_api.context.ops, farmer_ids=[uuid.UUID(farmer["farmer_id"])])
    assert report.deposits == 1 and report.deposited == 7 * KALE and not report.mismatches


async def test_plant_fan_out_of_50_farmers_with_mixed_outcomes(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, key = await dev_api.create_pooler()
    pcts = [10, 25, 50, 75, 100]
    good = [
        await ready_farmer(dev_api, devnet, pooler_id, kale=(i + 1) * KALE + 3, stake_percentage=pcts[i % 5])
        for i in range(40)
    ]
    no_account = [await dev_api.register_farmer(pooler_id) for _ in range(3)]
    for farmer in no_account:
        await force_ready(dev_api, farmer)
    poor = [await dev_api.register_farmer(pooler_id) for _ in range(3)]
    for farmer in poor:  # fees have eaten its XLM: 0.05 XLM above the reserve is left
        devnet.fund(farmer["custodial_wallet"], xlm=int(1.55 * XLM), kale=10 * KALE)
        await force_ready(dev_api, farmer)
    no_trustline = [await dev_api.register_farmer(pooler_id) for _ in range(2)]
    for farmer in no_trustline:
        devnet.fund(farmer["custodial_wallet"], xlm=50 * XLM)
        await force_ready(dev_api, farmer)
    planted_before = [await ready_farmer(dev_api, devnet, pooler_id) for _ in range(2)]
    unfunded = await dev_api.register_farmer(pooler_id)  # not ready: not eligible at all

    farm = await dev_chain.farm()
    assert not farm.ripe
    for farmer in planted_before:  # planted on chain behind the pool's back
        keypair = await custodial_keypair(dev_api, farmer)
        await closing(controls, dev_chain.gateway.plant(keypair, 5 * KALE))

    data = await plant(dev_api, controls, key, pooler_id, farm.index)
    summary = data["summary"]
    assert summary["eligible"] == 50 and summary["farm_index"] == farm.index
    assert summary["planted"] == 40 and summary["already_planted"] == 2 and summary["failed"] == 8
    assert summary["total_staked"] == sum(
        ((i + 1) * KALE + 3) * pcts[i % 5] * 100 // 10_000 for i in range(40)
    )
    assert summary["xlm_fees"] > 0

    failed = {f["farmer_id"]: (f["error"], f["attributed_to"]) for f in data["failed_plants"]}
    assert failed == {
        **{f["farmer_id"]: ("account_not_found", "farmer") for f in no_account},
        **{f["farmer_id"]: ("insufficient_xlm", "farmer") for f in poor},
        **{f["farmer_id"]: ("no_trustline", "farmer") for f in no_trustline},
    }
    assert unfunded["farmer_id"] not in str(data)

    planted = {p["farmer_id"]: p for p in data["planted_farmers"]}
    assert set(planted) == {f["farmer_id"] for f in good + planted_before}
    entropy = await dev_chain.block_entropy(farm.index)
    assert entropy is not None
    onchain = await dev_chain.pails([(p["custodial_wallet"], p["block_index"]) for p in planted.values()])
    for i, farmer in enumerate(good):
        p = planted[farmer["farmer_id"]]
        assert p["already_planted"] is False and p["block_index"] == farm.index
        assert p["entropy"] == entropy.hex() and len(p["plant_tx_hash"]) == 64
        assert p["stake_amount"] == ((i + 1) * KALE + 3) * pcts[i % 5] // 100
        pail = onchain[(p["custodial_wallet"], farm.index)]
        assert pail is not None and pail.stake == p["stake_amount"] and not pail.worked
    for farmer in planted_before:
        p = planted[farmer["farmer_id"]]
        assert (
            p["already_planted"] is True and p["stake_amount"] == 5 * KALE and p["block_index"] == farm.index
        )

    # the records: plantings, journal, pails, the block's operation row
    ids = [uuid.UUID(f) for f in planted]
    successes = await rows(dev_api, Planting, Planting.farmer_id.in_(ids), Planting.status == "succeeded")
    assert len(successes) == 42 and {s.block_index for s in successes} == {farm.index}
    failures = await rows(
        dev_api, Planting, Planting.pooler_id == uuid.UUID(pooler_id), Planting.status == "failed"
    )
    assert sorted((f.error_code, f.attributed_to) for f in failures) == sorted(failed.values())
    burned = await rows(
        dev_api,
        BalanceChange,
        BalanceChange.farmer_id.in_(ids),
        BalanceChange.kind == JournalKind.STAKE_BURNED,
    )
    assert sum(b.amount for b in burned) == -(summary["total_staked"] + 2 * 5 * KALE)
    pails = await rows(dev_api, Pail, Pail.pooler_id == uuid.UUID(pooler_id))
    states = sorted(p.state for p in pails)
    assert states == ["plant_failed"] * 8 + ["planted"] * 42
    report = (await dev_api.client.get(f"/api/v1/blocks/{farm.index}", headers=dev_api.admin)).json()
    (mine,) = [o for o in report["poolers"] if o["pooler_id"] == pooler_id]
    assert mine["farmers_planted"] == 40 and mine["farmers_failed"] == 8 and mine["entropy"] == entropy.hex()
    assert mine["total_staked"] == summary["total_staked"]

    # the same request again plants nobody twice: no transaction is sent
    await controls.sent(clear=True)
    again = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert again["summary"]["planted"] == 0 and again["summary"]["already_planted"] == 42
    assert {p["farmer_id"] for p in again["planted_farmers"]} == set(planted)
    assert all(p["already_planted"] for p in again["planted_farmers"])
    assert {p["plant_tx_hash"] for p in again["planted_farmers"]} >= {
        p["plant_tx_hash"] for p in data["planted_farmers"] if not p["already_planted"]
    }
    sent = await controls.sent()
    planted_accounts = {p["custodial_wallet"] for p in data["planted_farmers"]}
    sources = {TransactionEnvelope.from_xdr(e, devnet.passphrase).transaction.source.account_id for e in sent}
    assert not sources & planted_accounts  # only the 8 failed farmers were tried again
    burned_again = await rows(
        dev_api,
        BalanceChange,
        BalanceChange.farmer_id.in_(ids),
        BalanceChange.kind == JournalKind.STAKE_BURNED,
    )
    assert len(burned_again) == len(burned)

    # a farmer can be planted once its problem is fixed
    devnet.fund(poor[0]["custodial_wallet"], xlm=10 * XLM)
    fixed = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert fixed["summary"]["planted"] == 1
    assert poor[0]["farmer_id"] in {
        p["farmer_id"] for p in fixed["planted_farmers"] if not p["already_planted"]
    }


async def test_concurrent_requests_for_one_block_plant_each_farmer_once(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, key = await dev_api.create_pooler()
    farmers = [await ready_farmer(dev_api, devnet, pooler_id) for _ in range(8)]
    farm = await dev_chain.farm()
    body = {"block_index": farm.index, "pooler_id": pooler_id}
    post = lambda: dev_api.client.post(  # noqa: E731
        "/api/v1/pooler/plant-request", json=body, headers=dev_api.bearer(key)
    )
    await controls.sent(clear=True)
    first, second = await closing(controls, asyncio.gather(post(), post()))
    assert first.status_code == second.status_code == 200
    answers = [first.json(), second.json()]
    for answer in answers:
        assert {p["farmer_id"] for p in answer["planted_farmers"]} == {f["farmer_id"] for f in farmers}
        assert answer["failed_plants"] == []
    assert sum(a["summary"]["planted"] for a in answers) == 8
    assert len(await controls.sent()) == 8  # one plant transaction per farmer, none failed
    successes = await rows(
        dev_api, Planting, Planting.pooler_id == uuid.UUID(pooler_id), Planting.status == "succeeded"
    )
    assert len(successes) == 8


async def test_stale_and_future_blocks_are_the_poolers_fault(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, key = await dev_api.create_pooler()
    farmers = [await ready_farmer(dev_api, devnet, pooler_id) for _ in range(2)]
    farm = await dev_chain.farm()
    future = await plant(dev_api, controls, key, pooler_id, farm.index + 1)
    assert {(f["error"], f["attributed_to"]) for f in future["failed_plants"]} == {("future_block", "pooler")}
    assert future["planted_farmers"] == [] and future["summary"]["failed"] == 2
    if farm.index > 0:
        stale = await plant(dev_api, controls, key, pooler_id, farm.index - 1)
        assert {(f["error"], f["attributed_to"]) for f in stale["failed_plants"]} == {
            ("stale_block", "pooler")
        }
    # a refusal changes nothing, and writes nothing (a pooler asking again leaves no rows)
    assert await rows(dev_api, Planting, Planting.pooler_id == uuid.UUID(pooler_id)) == []
    # capacity: only one of two is planted, the other is reported as over capacity
    capped = await plant(dev_api, controls, key, pooler_id, farm.index, max_farmers_capacity=1)
    assert capped["summary"]["planted"] == 1 and capped["summary"]["skipped_capacity"] == 1
    assert [f["error"] for f in capped["failed_plants"]] == ["over_capacity"]
    assert capped["planted_farmers"][0]["farmer_id"] == farmers[0]["farmer_id"]  # the oldest first


async def test_network_failures_are_attributed_to_the_chain(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, key = await dev_api.create_pooler()
    farmers = [await ready_farmer(dev_api, devnet, pooler_id) for _ in range(3)]
    down = {farmers[1]["custodial_wallet"]}
    dev_api.context.ops.chain = FlakyChain(dev_chain, down)  # type: ignore[assignment]
    farm = await dev_chain.farm()
    data = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert [(f["farmer_id"], f["error"], f["attributed_to"]) for f in data["failed_plants"]] == [
        (farmers[1]["farmer_id"], "rpc_timeout", "chain")
    ]
    assert data["summary"]["planted"] == 2
    # the RPC is back: a retry plants the missing farmer only
    dev_api.context.ops.chain = dev_chain
    again = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert again["summary"]["planted"] == 1 and again["summary"]["already_planted"] == 2


async def test_a_transient_failure_is_planted_again_within_the_request(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """An RPC timeout for one farmer (twice): the request retries it and answers it planted,
    in the same block, with one plantings row per farmer (no failed rows for the retries)."""
    pooler_id, key = await dev_api.create_pooler()
    farmers = [await ready_farmer(dev_api, devnet, pooler_id) for _ in range(3)]
    flaky = FlakyChain(dev_chain, {farmers[1]["custodial_wallet"]}, times=2)
    ops = dev_api.context.ops
    settings = ops.settings
    # the production budget (the suite's 1 s ran out under load before the second retry)
    ops.settings = settings.model_copy(update={"plant_retry_seconds": 20.0})
    ops.chain = flaky  # type: ignore[assignment]
    farm = await dev_chain.farm()
    try:
        data = await plant(dev_api, controls, key, pooler_id, farm.index)
    finally:
        ops.chain, ops.settings = dev_chain, settings
    assert data["failed_plants"] == [] and data["summary"]["planted"] == 3
    assert flaky.failures == {farmers[1]["custodial_wallet"]: 2}
    assert {p["block_index"] for p in data["planted_farmers"]} == {farm.index}
    mine = await rows(dev_api, Planting, Planting.pooler_id == uuid.UUID(pooler_id))
    assert sorted(r.status for r in mine) == ["succeeded"] * 3


async def test_an_unreadable_farm_answers_503_and_attempts_nothing(
    dev_api: Api, devnet: DevnetHandle
) -> None:
    from kalepool.backend.chain import UnavailableChain

    pooler_id, key = await dev_api.create_pooler()
    await ready_farmer(dev_api, devnet, pooler_id)
    dev_api.context.ops.chain = UnavailableChain("RPC down")
    for path, body in (
        ("plant-request", {"block_index": 1, "pooler_id": pooler_id}),
        ("work-complete", {"block_index": 1, "pooler_id": pooler_id, "work_results": []}),
        (
            "harvest-request",
            {"pooler_id": pooler_id, "harvest_blocks": [{"block_index": 0, "farmer_ids": [pooler_id]}]},
        ),
    ):
        response = await dev_api.client.post(f"/api/v1/pooler/{path}", json=body, headers=dev_api.bearer(key))
        if path == "work-complete":  # nothing planted: no chain read needed at all
            assert response.status_code in (200, 503), response.text
            continue
        assert_error(response, 503, "chain_unavailable")
    assert await rows(dev_api, Pail, Pail.pooler_id == uuid.UUID(pooler_id)) == []


async def test_a_crash_after_sending_is_resumed_by_hash_not_planted_again(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, key = await dev_api.create_pooler()
    farmer = await ready_farmer(dev_api, devnet, pooler_id, kale=10 * KALE)
    farm = await dev_chain.farm()
    await controls.sent(clear=True)

    # the request signs, records the envelope, sends... and the process dies
    task = asyncio.create_task(
        plant_request(dev_api.context.ops, pooler_id=uuid.UUID(pooler_id), block_index=farm.index)
    )
    (queued,) = await controls.wait_pending(1)
    await kill(task)
    (pail,) = await rows(dev_api, Pail, Pail.farmer_id == uuid.UUID(farmer["farmer_id"]))
    assert pail.state == "planting" and pail.plant_tx_hash == queued and pail.plant_envelope_xdr
    await controls.close_ledgers(1)  # it lands while nobody is watching

    # a retry while the claim holds waits, then reports it in progress
    dev_api.context.settings.in_progress_wait = 0.3
    held = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert [f["error"] for f in held["failed_plants"]] == ["plant_in_progress"]

    # once the claim lapses, the retry resumes the recorded transaction by its hash
    async with dev_api.context.db.transaction() as s:
        await s.execute(update(Pail).where(Pail.id == pail.id).values(claimed_until=func.now()))
    data = await plant(dev_api, controls, key, pooler_id, farm.index)
    (planted,) = data["planted_farmers"]
    assert planted["plant_tx_hash"] == queued and planted["stake_amount"] == 5 * KALE
    assert data["summary"]["planted"] == 1
    assert len(await controls.sent()) == 1  # the one envelope, never a second plant
    lines = await rows(dev_api, BalanceChange, BalanceChange.farmer_id == uuid.UUID(farmer["farmer_id"]))
    assert sorted(b.kind for b in lines) == ["deposit", "stake_burned", "xlm_fee"]
    fees = [b for b in lines if b.kind == "xlm_fee"]
    assert len(fees) == 1 and fees[0].reference == queued and fees[0].amount < 0
    assert [b.amount for b in lines if b.kind == "stake_burned"] == [-5 * KALE]


async def test_the_worker_settles_plantings_whose_request_died(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, _ = await dev_api.create_pooler()
    sent, unsigned = [await ready_farmer(dev_api, devnet, pooler_id, kale=4 * KALE) for _ in range(2)]
    farm = await dev_chain.farm()
    async with dev_api.context.db.transaction() as s:  # a request that died before signing
        s.add(Pail(farmer_id=uuid.UUID(unsigned["farmer_id"]), pooler_id=uuid.UUID(pooler_id),
                   block_index=farm.index, requested_block_index=farm.index, state="planting",
                   claimed_by="dead", claimed_until=func.now() + timedelta(minutes=5)))  # fmt: skip
    task = asyncio.create_task(
        plant_request(dev_api.context.ops, pooler_id=uuid.UUID(pooler_id), block_index=farm.index)
    )
    (queued,) = await controls.wait_pending(1)  # the other request died right after sending
    await kill(task)
    await controls.close_ledgers(1)
    async with dev_api.context.db.transaction() as s:
        await s.execute(
            update(Pail).where(Pail.pooler_id == uuid.UUID(pooler_id)).values(claimed_until=func.now())
        )

    from kalepool.backend.services.planting import recover_plantings

    assert await recover_plantings(dev_api.context.ops) == 2
    pails = {str(p.farmer_id): p for p in await rows(dev_api, Pail, Pail.pooler_id == uuid.UUID(pooler_id))}
    assert pails[sent["farmer_id"]].state == "planted" and pails[sent["farmer_id"]].plant_tx_hash == queued
    assert pails[unsigned["farmer_id"]].state == "plant_failed"
    plantings = {
        (str(p.farmer_id), p.status, p.error_code, p.tx_hash)
        for p in await rows(dev_api, Planting, Planting.pooler_id == uuid.UUID(pooler_id))
    }
    assert plantings == {
        (sent["farmer_id"], "succeeded", None, queued),
        (unsigned["farmer_id"], "failed", "abandoned", None),
    }
    assert await recover_plantings(dev_api.context.ops) == 0


async def test_a_request_takes_over_the_pails_of_a_request_that_died(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """A backend killed mid fan-out leaves claimed pails behind; they are not renewed, so
    they lapse, and the next request plants them in the same block: resuming the one
    that was sent (by hash, no second envelope) and signing the one that never was."""
    settings = dev_api.context.settings
    settings.claim_seconds, settings.in_progress_wait = 1.5, 20.0
    pooler_id, key = await dev_api.create_pooler()
    sent, unsigned = [await ready_farmer(dev_api, devnet, pooler_id, kale=8 * KALE) for _ in range(2)]
    farm = await dev_chain.farm()
    await controls.sent(clear=True)
    async with dev_api.context.db.transaction() as s:  # claimed by a request that never signed
        s.add(Pail(farmer_id=uuid.UUID(unsigned["farmer_id"]), pooler_id=uuid.UUID(pooler_id),
                   block_index=farm.index, requested_block_index=farm.index, state="planting",
                   claimed_by="plant@dead", claimed_until=func.now() + timedelta(seconds=1.5)))  # fmt: skip
    task = asyncio.create_task(
        plant_request(dev_api.context.ops, pooler_id=uuid.UUID(pooler_id), block_index=farm.index)
    )
    (queued,) = await controls.wait_pending(1)  # this one signed and sent, then died
    await kill(task)

    data = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert data["failed_plants"] == []
    planted = {p["farmer_id"]: p for p in data["planted_farmers"]}
    assert set(planted) == {sent["farmer_id"], unsigned["farmer_id"]}
    assert {p["block_index"] for p in planted.values()} == {farm.index}
    assert planted[sent["farmer_id"]]["plant_tx_hash"] == queued
    assert planted[unsigned["farmer_id"]]["stake_amount"] == 4 * KALE
    assert len(await controls.sent()) == 2  # the dead request's envelope once, one new plant
    pails = await rows(dev_api, Pail, Pail.pooler_id == uuid.UUID(pooler_id))
    assert sorted(p.state for p in pails) == ["planted", "planted"]
    assert all(p.claimed_by is None for p in pails)


async def test_a_request_still_waits_for_a_live_holder(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """A claim its holder keeps renewing is never taken over: the second request reports
    ``plant_in_progress`` and signs nothing for that farmer."""
    from kalepool.backend.services.common import holding_claims

    settings = dev_api.context.settings
    settings.claim_seconds, settings.in_progress_wait = 0.6, 1.5
    pooler_id, key = await dev_api.create_pooler()
    farmer = await ready_farmer(dev_api, devnet, pooler_id, kale=8 * KALE)
    farm = await dev_chain.farm()
    await controls.sent(clear=True)
    async with dev_api.context.db.transaction() as s:
        s.add(Pail(farmer_id=uuid.UUID(farmer["farmer_id"]), pooler_id=uuid.UUID(pooler_id),
                   block_index=farm.index, requested_block_index=farm.index, state="planting",
                   claimed_by="plant@alive", claimed_until=func.now() + timedelta(seconds=0.6)))  # fmt: skip
    async with holding_claims(dev_api.context.db, "plant@alive", 0.6):  # renewed every 0.2 s
        data = await plant(dev_api, controls, key, pooler_id, farm.index)
    assert [f["error"] for f in data["failed_plants"]] == ["plant_in_progress"]
    assert data["planted_farmers"] == [] and await controls.sent() == []
    (pail,) = await rows(dev_api, Pail, Pail.pooler_id == uuid.UUID(pooler_id))
    assert pail.state == "planting" and pail.claimed_by == "plant@alive"
