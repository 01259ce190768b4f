"""Work and harvest against the devnet: verification, compensation, the split, workers.

One devnet for the module; each test starts its own block (time is moved past the block
interval and the first plant rolls the farm over), so earlier tests' pails never interfere.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update
from stellar_sdk import Keypair

from kalepool.backend.accounting import split_reward
from kalepool.backend.custody import Keyring, sealed_of
from kalepool.backend.db.models import BalanceChange, Farmer, Harvest, Pail, PoolerCompensation, Work
from kalepool.backend.db.session import Database
from kalepool.backend.enums import AccountType, JournalKind
from kalepool.backend.services.reconcile import custodial_balance
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.backend.workers import AutoHarvester, Reconciler
from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.pow import leading_zeros
from tests.backend.conftest import DEVNET_BACKEND, Api, make_api
from tests.backend.devnet_env import (
    KALE,
    XLM,
    Controls,
    closing,
    gateway_chain,
    ready_farmer,
    submit_mined_work,
    submit_work,
)
from tests.backend.test_chain_plant import plant, rows

POOLER_SHARE_BPS = 1_000  # 10 %
PLATFORM_BPS = DEVNET_BACKEND["platform_fee_bps"]  # 2 %


async def new_block(controls: Controls, chain: GatewayChain, devnet: DevnetHandle) -> int:
    """Roll the farm over with a stranger's plant; returns the new index."""
    farm = await chain.farm()
    await controls.advance_time(300)
    await closing(controls, chain.gateway.plant(devnet.new_account(), 0))
    after = await chain.farm()
    assert after.index == farm.index + 1
    return after.index


async def open_block(controls: Controls, chain: GatewayChain, devnet: DevnetHandle) -> int:
    """A block of its own for a test: the next one, opened by a stranger."""
    return await new_block(controls, chain, devnet)


async def work_complete(api: Api, key: str, pooler_id: str, block: int, results: list[dict[str, Any]]) -> Any:
    body = {"block_index": block, "pooler_id": pooler_id, "work_results": results}
    response = await api.client.post("/api/v1/pooler/work-complete", json=body, headers=api.bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


async def harvest(api: Api, controls: Controls, key: str, pooler_id: str, block: int, ids: list[str]) -> Any:
    body = {"pooler_id": pooler_id, "harvest_blocks": [{"block_index": block, "farmer_ids": ids}]}
    response = await closing(
        controls, api.client.post("/api/v1/pooler/harvest-request", json=body, headers=api.bearer(key))
    )
    assert response.status_code == 200, response.text
    return response.json()


async def journal_rows(api: Api, *conditions: Any) -> list[BalanceChange]:
    return await rows(api, BalanceChange, *conditions)


async def test_a_block_from_plant_to_harvest(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    pooler_id, key = await dev_api.create_pooler(reward_share_bps=POOLER_SHARE_BPS)
    farmers = [await ready_farmer(dev_api, devnet, pooler_id, kale=(i + 1) * 10 * KALE) for i in range(5)]
    f0, f1, f2, f3, f4 = farmers
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(dev_api, controls, key, pooler_id, block)
    assert planted["summary"]["planted"] == 5
    stakes = {p["farmer_id"]: p["stake_amount"] for p in planted["planted_farmers"]}
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])

    # the pooler mines and submits work from its own account
    pooler = devnet.new_account(xlm=1_000 * XLM)
    gw = dev_chain.gateway
    w0, w2, _ = await closing(
        controls,
        asyncio.gather(
            submit_mined_work(gw, pooler, f0["custodial_wallet"], block, entropy),
            *(submit_work(gw, pooler, f["custodial_wallet"], block, entropy, 2) for f in (f2, f4)),
        ),
    )
    nonce0, hash0, out0 = w0
    nonce2, hash2, out2 = w2
    forged = os.urandom(32)
    results = [
        {"farmer_id": f0["farmer_id"], "nonce": nonce0, "hash": hash0.hex(), "zeros": out0.zeros,
         "gap": out0.gap, "tx_hash": out0.tx_hash},
        {"farmer_id": f1["farmer_id"], "nonce": 7, "hash": forged.hex(), "zeros": leading_zeros(forged)},
        {"farmer_id": f2["farmer_id"], "nonce": nonce2, "hash": hash2.hex(), "zeros": out2.zeros + 3},
    ]  # fmt: skip
    report = await work_complete(dev_api, key, pooler_id, block, results)
    assert report["work_recorded"] == 1
    assert {(r["farmer_id"], r["reason"]) for r in report["rejected"]} == {
        (f1["farmer_id"], "hash_mismatch"),
        (f2["farmer_id"], "zeros_mismatch"),
    }
    assert {(c["farmer_id"], c["reason"], c["amount"]) for c in report["compensations"]} == {
        (f1["farmer_id"], "invalid_work", stakes[f1["farmer_id"]]),  # not worked on chain
        (f2["farmer_id"], "invalid_work", 0),  # misreported, but worked on chain: nothing lost
        (f3["farmer_id"], "not_worked", stakes[f3["farmer_id"]]),
    }
    assert report["compensation_amount"] == stakes[f1["farmer_id"]] + stakes[f3["farmer_id"]]
    ready = {r["farmer_id"] for r in report["ready_for_harvest"]}
    assert ready == {f0["farmer_id"], f2["farmer_id"], f4["farmer_id"]}  # f4: worked, just not reported
    owed = await journal_rows(dev_api, BalanceChange.pooler_id == uuid.UUID(pooler_id))
    assert sum(o.amount for o in owed if o.kind == "compensation_owed") == -report["compensation_amount"]

    # the same report again records nothing new
    works_before = await rows(
        dev_api, Work, Work.pooler_id == uuid.UUID(pooler_id), Work.status == "accepted"
    )
    journal_before = len(await journal_rows(dev_api))
    again = await work_complete(dev_api, key, pooler_id, block, results[:1])
    assert again["work_recorded"] == 1 and again["compensation_amount"] == report["compensation_amount"]
    assert len(
        await rows(dev_api, Work, Work.pooler_id == uuid.UUID(pooler_id), Work.status == "accepted")
    ) == len(works_before)
    assert len(await journal_rows(dev_api)) == journal_before

    # too early: the block is still open
    early = await harvest(dev_api, controls, key, pooler_id, block, [f0["farmer_id"]])
    assert [(f["error"], f["attributed_to"]) for f in early["failed_harvests"]] == [
        ("harvest_not_ready", "pooler")
    ]

    await new_block(controls, dev_chain, devnet)
    ids = [f["farmer_id"] for f in farmers]
    await controls.sent(clear=True)
    done = await harvest(dev_api, controls, key, pooler_id, block, ids)
    harvested = {h["farmer_id"]: h for h in done["harvest_results"]}
    assert set(harvested) == {f0["farmer_id"], f2["farmer_id"], f4["farmer_id"]}
    assert {(f["farmer_id"], f["error"], f["attributed_to"]) for f in done["failed_harvests"]} == {
        (f1["farmer_id"], "not_worked", "pooler"),
        (f3["farmer_id"], "not_worked", "pooler"),
    }
    assert len(await controls.sent()) == 3  # no transaction for the unworked pails
    assert done["total_rewards"] == sum(h["reward"] for h in harvested.values()) > 0
    for farmer_id, h in harvested.items():
        split = split_reward(h["reward"], POOLER_SHARE_BPS, PLATFORM_BPS)
        assert (h["pooler_share"], h["platform_fee"], h["farmer_reward"]) == (
            split.pooler_share,
            split.platform_fee,
            split.farmer_reward,
        )
        assert h["stake_returned"] == stakes[farmer_id] and not h["already_harvested"]
        lines = await journal_rows(
            dev_api, BalanceChange.farmer_id == uuid.UUID(farmer_id), BalanceChange.block_index == block
        )
        kale = {b.kind: b.amount for b in lines if b.asset == "KALE"}
        assert kale == {
            "stake_burned": -stakes[farmer_id],
            "stake_returned": stakes[farmer_id],
            "reward": h["reward"],
            "pooler_fee": -split.pooler_share,
            "platform_fee": -split.platform_fee,
        }
        assert {b.kind for b in lines if b.asset == "XLM"} == {"xlm_fee"}
        assert len([b for b in lines if b.kind == "xlm_fee"]) == 2  # the plant and the harvest
    shares = await journal_rows(
        dev_api, BalanceChange.pooler_id == uuid.UUID(pooler_id), BalanceChange.kind == "pooler_share"
    )
    assert sum(s.amount for s in shares) == sum(h["pooler_share"] for h in harvested.values())
    income = await journal_rows(
        dev_api, BalanceChange.account_type == AccountType.PLATFORM, BalanceChange.block_index == block
    )
    assert sum(i.amount for i in income) == sum(h["platform_fee"] for h in harvested.values())

    # the journal's custodial balance is the account's KALE on chain, for every farmer
    async with dev_api.context.db.transaction() as s:
        for farmer in farmers:
            account = await dev_chain.account(farmer["custodial_wallet"])
            assert await custodial_balance(s, uuid.UUID(farmer["farmer_id"])) == account.kale_balance

    # harvesting again: answered from the records, nothing sent, nothing journaled twice
    journal_before = len(await journal_rows(dev_api))
    await controls.sent(clear=True)
    twice = await harvest(dev_api, controls, key, pooler_id, block, ids)
    assert {h["farmer_id"]: h["reward"] for h in twice["harvest_results"]} == {
        k: v["reward"] for k, v in harvested.items()
    }
    assert all(h["already_harvested"] for h in twice["harvest_results"])
    assert await controls.sent() == [] and len(await journal_rows(dev_api)) == journal_before
    farmer_view = await dev_api.client.get(
        f"/api/v1/farmers/{f0['farmer_id']}", headers=dev_api.bearer(f0["farmer_token"])
    )
    assert farmer_view.json()["recent_harvests"][0]["reward"] == harvested[f0["farmer_id"]]["reward"]


async def test_work_reports_for_strangers_and_unplanted_farmers_are_rejected(
    dev_api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    a_id, a_key = await dev_api.create_pooler()
    b_id, _ = await dev_api.create_pooler()
    mine = await ready_farmer(dev_api, devnet, a_id)
    theirs = await ready_farmer(dev_api, devnet, b_id)
    farm = await dev_chain.farm()
    results = [
        {"farmer_id": f["farmer_id"], "nonce": 1, "hash": "11" * 32, "zeros": 0} for f in (mine, theirs, mine)
    ]
    report = await work_complete(dev_api, a_key, a_id, farm.index, results)
    assert [(r["farmer_id"], r["reason"]) for r in report["rejected"]] == [
        (mine["farmer_id"], "not_planted"),
        (theirs["farmer_id"], "unknown_farmer"),
        (mine["farmer_id"], "duplicate_result"),
    ]
    assert report["compensations"] == [] and report["work_recorded"] == 0
    stranger_rows = await rows(dev_api, Work, Work.farmer_id == uuid.UUID(theirs["farmer_id"]))
    assert stranger_rows == []  # nothing is recorded against another pooler's farmer
    answer = await harvest(dev_api, controls, a_key, a_id, max(farm.index - 1, 0), [theirs["farmer_id"]])
    assert [(f["error"], f["attributed_to"]) for f in answer["failed_harvests"]] == [
        ("unknown_farmer", "pooler")
    ]


@pytest.fixture
async def worker_world(
    fresh_database_url: str, dev_keyring: Keyring, dev_chain: GatewayChain
) -> AsyncIterator[tuple[Api, str]]:
    """An app on a database of its own: the workers see only this test's pails."""
    db = Database(fresh_database_url, pool_size=10)
    api = await make_api(db, dev_keyring, dev_chain, **DEVNET_BACKEND)
    async with api.client:
        yield api, fresh_database_url
    await db.dispose()


async def test_two_auto_harvesters_at_once_harvest_each_pail_once(
    worker_world: tuple[Api, str], devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api, url = worker_world
    pooler_id, key = await api.create_pooler(reward_share_bps=POOLER_SHARE_BPS)
    farmers = [await ready_farmer(api, devnet, pooler_id, kale=20 * KALE) for _ in range(6)]
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(api, controls, key, pooler_id, block)
    stakes = {p["farmer_id"]: p["stake_amount"] for p in planted["planted_farmers"]}
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])
    pooler = devnet.new_account(xlm=1_000 * XLM)
    gw = dev_chain.gateway
    worked = await closing(
        controls,
        asyncio.gather(
            *(submit_work(gw, pooler, f["custodial_wallet"], block, entropy) for f in farmers[:4])
        ),
    )
    reported = [
        {"farmer_id": f["farmer_id"], "nonce": n, "hash": h.hex(), "zeros": o.zeros, "gap": o.gap}
        for f, (n, h, o) in zip(farmers[:2], worked[:2], strict=True)
    ]
    report = await work_complete(api, key, pooler_id, block, reported)
    late = farmers[5]  # compensated now (not worked on chain yet), worked a moment later
    assert {c["farmer_id"] for c in report["compensations"]} == {farmers[4]["farmer_id"], late["farmer_id"]}
    await closing(controls, submit_work(gw, pooler, late["custodial_wallet"], block, entropy))
    await new_block(controls, dev_chain, devnet)

    # two harvesters, each with its own database pool and its own gateway (two processes)
    second_db = Database(url, pool_size=10)
    second_chain = gateway_chain(devnet)
    try:
        from dataclasses import replace

        one = AutoHarvester(api.context.ops)
        two = AutoHarvester(replace(api.context.ops, db=second_db, chain=second_chain))
        await controls.sent(clear=True)
        runs = await closing(controls, asyncio.gather(one.run_once(), two.run_once()))
        assert sum(r.harvested for r in runs) == 5 and sum(r.failed for r in runs) == 0
        assert sum(r.closed for r in runs) >= 1  # the unreported pails were settled from the chain
        again = await closing(controls, asyncio.gather(one.run_once(), two.run_once()))
        assert sum(r.claimed for r in again) == 0
    finally:
        await second_chain.aclose()
        await second_db.dispose()
    assert len(await controls.sent()) == 5  # one harvest transaction per worked pail
    harvests = await rows(api, Harvest)
    assert sorted(h.status for h in harvests) == ["succeeded"] * 5
    assert len({h.farmer_id for h in harvests}) == 5
    states = {str(p.farmer_id): p.state for p in await rows(api, Pail, Pail.block_index == block)}
    assert states == {
        **{f["farmer_id"]: "harvested" for f in [*farmers[:4], late]},
        farmers[4]["farmer_id"]: "unworked",
    }

    # the late work was harvested after all: its compensation is reversed in the journal
    lines = await rows(api, BalanceChange, BalanceChange.block_index == block, BalanceChange.kind.in_(
        [JournalKind.COMPENSATION, JournalKind.COMPENSATION_OWED, JournalKind.ADJUSTMENT]
    ))  # fmt: skip
    late_id = uuid.UUID(late["farmer_id"])
    mine = [(b.account_type, b.kind, b.amount) for b in lines if b.farmer_id == late_id]
    assert sorted(mine) == [
        ("farmer", "adjustment", -stakes[late["farmer_id"]]),
        ("farmer", "compensation", stakes[late["farmer_id"]]),
    ]
    pooler_lines = sorted(
        (b.kind, b.amount)
        for b in lines
        if b.pooler_id is not None and b.reference.endswith(late["farmer_id"])
    )
    assert pooler_lines == [
        ("adjustment", stakes[late["farmer_id"]]),
        ("compensation_owed", -stakes[late["farmer_id"]]),
    ]
    (unworked,) = await rows(
        api, PoolerCompensation, PoolerCompensation.farmer_id == uuid.UUID(farmers[4]["farmer_id"])
    )
    assert unworked.amount == stakes[farmers[4]["farmer_id"]] and unworked.reason == "not_worked"

    # the reconciler: every custodial account matches the journal; health is ok
    reconciler = Reconciler(api.context.ops, api.context.reconcile_status)
    result = await reconciler.run_once()
    assert result.checked == 6 and result.mismatches == [] and result.deposits == 0
    health = (await api.client.get("/health")).json()
    assert health == {"status": "ok", "version": health["version"], "checks": {"reconciliation": "ok"}}

    # a journal that claims more than the chain holds is reported, not papered over
    async with api.context.db.transaction() as s:
        s.add(
            BalanceChange(
                account_type="farmer",
                farmer_id=uuid.UUID(farmers[0]["farmer_id"]),
                asset="KALE",
                kind="reward",
                amount=123,
                block_index=block,
                reference="bogus",
                usage="a bug",
            )
        )
    result = await reconciler.run_once()
    assert [(str(m.farmer_id), m.difference) for m in result.mismatches] == [(farmers[0]["farmer_id"], -123)]
    health = (await api.client.get("/health")).json()
    assert health["status"] == "degraded" and health["checks"] == {"reconciliation": "mismatch"}
    metrics = (await api.client.get("/metrics")).text
    assert "kalepool_reconcile_mismatches 1.0" in metrics
    assert "kalepool_reconcile_difference_stroops 123.0" in metrics


async def test_the_auto_harvester_leaves_the_block_that_just_closed_to_the_pooler(
    worker_world: tuple[Api, str], devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """With ``auto_harvest_lag_blocks`` 1 (the default) a block that just closed is the
    pooler's to harvest (and the next block's plants go first); one block later the
    auto-harvester takes what is still there."""
    from dataclasses import replace

    api, _ = worker_world
    pooler_id, key = await api.create_pooler(reward_share_bps=POOLER_SHARE_BPS)
    farmers = [await ready_farmer(api, devnet, pooler_id, kale=20 * KALE) for _ in range(2)]
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(api, controls, key, pooler_id, block)
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])
    pooler = devnet.new_account(xlm=1_000 * XLM)
    worked = await closing(
        controls,
        asyncio.gather(
            *(submit_work(dev_chain.gateway, pooler, f["custodial_wallet"], block, entropy) for f in farmers)
        ),
    )
    reported = [
        {"farmer_id": f["farmer_id"], "nonce": n, "hash": h.hex(), "zeros": o.zeros, "gap": o.gap}
        for f, (n, h, o) in zip(farmers, worked, strict=True)
    ]
    await work_complete(api, key, pooler_id, block, reported)
    lagging = AutoHarvester(
        replace(
            api.context.ops,
            settings=api.context.ops.settings.model_copy(update={"auto_harvest_lag_blocks": 1}),
        )
    )
    await new_block(controls, dev_chain, devnet)
    first = await closing(controls, lagging.run_once())
    assert first.claimed == 0 and first.harvested == 0  # the pooler's to ask for
    await new_block(controls, dev_chain, devnet)
    later = await closing(controls, lagging.run_once())
    assert later.harvested == 2


async def test_no_secret_leaves_custody_during_a_block(
    dev_api: Api,
    devnet: DevnetHandle,
    controls: Controls,
    dev_chain: GatewayChain,
    dev_keyring: Keyring,
    verbose_logs: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    pooler_id, key = await dev_api.create_pooler(reward_share_bps=POOLER_SHARE_BPS)
    farmers = [await ready_farmer(dev_api, devnet, pooler_id) for _ in range(2)]
    block = await open_block(controls, dev_chain, devnet)
    bodies = []
    planted = await plant(dev_api, controls, key, pooler_id, block)
    bodies.append(str(planted))
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])
    pooler = devnet.new_account(xlm=1_000 * XLM)
    nonce, h, out = await closing(
        controls, submit_work(dev_chain.gateway, pooler, farmers[0]["custodial_wallet"], block, entropy)
    )
    result = {"farmer_id": farmers[0]["farmer_id"], "nonce": nonce, "hash": h.hex(), "zeros": out.zeros}
    bodies.append(str(await work_complete(dev_api, key, pooler_id, block, [result])))
    await new_block(controls, dev_chain, devnet)
    bodies.append(
        str(await harvest(dev_api, controls, key, pooler_id, block, [f["farmer_id"] for f in farmers]))
    )
    for farmer in farmers:
        detail = await dev_api.client.get(
            f"/api/v1/farmers/{farmer['farmer_id']}", headers=dev_api.bearer(farmer["farmer_token"])
        )
        bodies.append(detail.text)
    bodies.append((await dev_api.client.get(f"/api/v1/blocks/{block}", headers=dev_api.admin)).text)

    forbidden = []
    async with dev_api.context.db.transaction() as s:
        for farmer in farmers:
            row = await s.get(Farmer, uuid.UUID(farmer["farmer_id"]))
            assert row is not None
            seed = dev_keyring.open(sealed_of(row), public_key=row.public_key)
            forbidden += [
                Keypair.from_raw_ed25519_seed(seed).secret,
                seed.hex(),
                base64.b64encode(seed).decode(),
            ]
    rendered = verbose_logs.getvalue()
    assert "plant request" in rendered and "harvest request" in rendered  # the logs were captured
    for secret in forbidden:
        for text in (*bodies, caplog.text, rendered):
            assert secret not in text


async def test_expired_pails_are_recorded_as_lost(
    worker_world: tuple[Api, str], devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """Last in the module: it moves the chain a day ahead."""
    api, _ = worker_world
    pooler_id, key = await api.create_pooler()
    farmers = [await ready_farmer(api, devnet, pooler_id) for _ in range(2)]
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(api, controls, key, pooler_id, block)
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])
    pooler = devnet.new_account(xlm=1_000 * XLM)
    works = await closing(
        controls,
        asyncio.gather(
            *(submit_work(dev_chain.gateway, pooler, f["custodial_wallet"], block, entropy) for f in farmers)
        ),
    )
    reported = [
        {"farmer_id": f["farmer_id"], "nonce": n, "hash": h.hex(), "zeros": o.zeros}
        for f, (n, h, o) in zip(farmers, works, strict=True)
    ]
    report = await work_complete(api, key, pooler_id, block, reported)
    assert report["work_recorded"] == 2
    (known,) = await rows(api, Pail, Pail.farmer_id == uuid.UUID(farmers[0]["farmer_id"]))
    assert known.live_until_ledger is not None
    async with api.context.db.transaction() as s:  # the second pail's TTL was never learnt
        await s.execute(
            update(Pail)
            .where(Pail.farmer_id == uuid.UUID(farmers[1]["farmer_id"]))
            .values(live_until_ledger=None)
        )
    await controls.close_ledgers(17_400)  # a day of ledgers: Block and Pail expire
    await new_block(controls, dev_chain, devnet)
    await controls.sent(clear=True)
    run = await closing(controls, AutoHarvester(api.context.ops).run_once())
    assert run.lost == 2 and run.harvested == 0
    failed = {str(h.farmer_id): (h.error_code, h.attributed_to) for h in await rows(api, Harvest)}
    assert failed == {
        farmers[0]["farmer_id"]: ("pail_expired", "backend"),  # known to be expired: nothing sent
        farmers[1]["farmer_id"]: ("block_missing", "backend"),  # the chain said so
    }
    assert len(await controls.sent()) <= 1
    states = {p.state for p in await rows(api, Pail, Pail.pooler_id == uuid.UUID(pooler_id))}
    assert states == {"lost"}
    answer = await harvest(api, controls, key, pooler_id, block, [f["farmer_id"] for f in farmers])
    assert {(f["error"], f["attributed_to"]) for f in answer["failed_harvests"]} == {
        ("pail_expired", "backend"),
        ("block_missing", "backend"),
    }
    assert len(await rows(api, Harvest)) == 2  # a lost pail is not tried again
