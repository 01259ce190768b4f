"""The payout worker against the devnet: paid once, resumed by hash, no trustline.

Each test harvests a block of its own for one farmer (plant, work, harvest through the
backend), on a database of its own so the worker sees only that farmer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import update
from stellar_sdk import Keypair

from kalepool.backend import journal
from kalepool.backend.chain import Chain, ChainError, OnSigned, PaymentOutcome
from kalepool.backend.custody import Keyring
from kalepool.backend.db.models import BalanceChange, Farmer, Payout
from kalepool.backend.db.session import Database
from kalepool.backend.enums import Asset, JournalKind
from kalepool.backend.services.payouts import owed_to
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.backend.workers import AutoHarvester, Payouts, Reconciler
from kalepool.devnet.testing import DevnetHandle
from tests.backend.conftest import DEVNET_BACKEND, Api, make_api
from tests.backend.devnet_env import KALE, XLM, Controls, closing, ready_farmer, submit_work
from tests.backend.test_chain_cycle import new_block, open_block, work_complete
from tests.backend.test_chain_plant import plant, rows

POOLER_SHARE_BPS = 1_000


@pytest.fixture
async def payout_world(
    fresh_database_url: str, dev_keyring: Keyring, dev_chain: GatewayChain
) -> AsyncIterator[Api]:
    db = Database(fresh_database_url, pool_size=10)
    api = await make_api(db, dev_keyring, dev_chain, **DEVNET_BACKEND, payout_min_amount=1)
    async with api.client:
        yield api
    await db.dispose()


async def harvested_farmer(
    api: Api, devnet: DevnetHandle, controls: Controls, chain: GatewayChain, *, wallet_kale: int | None
) -> tuple[dict[str, Any], str]:
    """A farmer with one harvested reward, and its payout wallet (a devnet account, with a
    KALE trustline unless ``wallet_kale`` is None)."""
    pooler_id, key = await api.create_pooler(reward_share_bps=POOLER_SHARE_BPS)
    farmer = await ready_farmer(api, devnet, pooler_id, kale=20 * KALE)
    block = await open_block(controls, chain, devnet)
    planted = await plant(api, controls, key, pooler_id, block)
    assert planted["summary"]["planted"] == 1
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])
    pooler = devnet.new_account(xlm=1_000 * XLM)
    nonce, h, out = await closing(
        controls, submit_work(chain.gateway, pooler, farmer["custodial_wallet"], block, entropy)
    )
    result = {
        "farmer_id": farmer["farmer_id"],
        "nonce": nonce,
        "hash": h.hex(),
        "zeros": out.zeros,
        "gap": out.gap,
    }
    await work_complete(api, key, pooler_id, block, [result])
    await new_block(controls, chain, devnet)
    run = await closing(controls, AutoHarvester(api.context.ops).run_once())
    assert run.harvested == 1, run
    wallet = (
        devnet.new_account(xlm=10 * XLM)
        if wallet_kale is None
        else devnet.new_account(xlm=10 * XLM, kale=wallet_kale)
    )
    async with api.context.db.transaction() as session:
        await session.execute(
            update(Farmer)
            .where(Farmer.id == uuid.UUID(farmer["farmer_id"]))
            .values(payout_wallet=wallet.public_key)
        )
    return {**farmer, "pooler_id": pooler_id, "pooler_key": key}, wallet.public_key


async def expected_owed(api: Api, farmer: dict[str, Any]) -> int:
    async with api.context.db.transaction() as session:
        figures = await owed_to(session, uuid.UUID(farmer["farmer_id"]))
    owed = figures.owed(leaving=False)
    assert owed > 0
    return owed


async def kale_of(chain: GatewayChain, account: str) -> int:
    info = await chain.account(account)
    assert info.kale_balance is not None
    return info.kale_balance


async def payout_lines(api: Api, farmer: dict[str, Any]) -> list[BalanceChange]:
    return await rows(
        api,
        BalanceChange,
        BalanceChange.farmer_id == uuid.UUID(farmer["farmer_id"]),
        BalanceChange.kind.in_([JournalKind.PAYOUT.value, JournalKind.XLM_FEE.value]),
        BalanceChange.usage.like("%payout%"),
    )


async def test_a_harvested_reward_is_paid_once(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, wallet = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    owed = await expected_owed(api, farmer)
    before = await kale_of(dev_chain, wallet)
    custodial_before = await kale_of(dev_chain, farmer["custodial_wallet"])
    await controls.sent(clear=True)

    worker = Payouts(api.context.ops)
    run = await closing(controls, worker.run_once())
    assert (run.paid, run.amount, run.failed, run.errors) == (1, owed, 0, 0)
    again = await closing(controls, worker.run_once())
    assert (again.paid, again.failed, again.errors) == (0, 0, 0)
    assert len(await controls.sent()) == 1  # one payment transaction in all

    assert await kale_of(dev_chain, wallet) == before + owed
    assert await kale_of(dev_chain, farmer["custodial_wallet"]) == custodial_before - owed
    (payout,) = await rows(api, Payout)
    assert payout.status == "confirmed" and payout.amount == owed and payout.destination == wallet
    lines = await payout_lines(api, farmer)
    debit = [line for line in lines if line.kind == JournalKind.PAYOUT.value]
    fee = [line for line in lines if line.kind == JournalKind.XLM_FEE.value]
    assert [(d.amount, d.asset, d.reference) for d in debit] == [(-owed, Asset.KALE.value, payout.tx_hash)]
    assert len(fee) == 1 and fee[0].amount < 0 and fee[0].reference == payout.tx_hash
    assert (await expected_owed_or_zero(api, farmer)) == 0

    report = await Reconciler(api.context.ops).run_once()
    assert report.mismatches == [] and report.deposits == 0 and report.checked == 1

    detail = await api.client.get(
        f"/api/v1/farmers/{farmer['farmer_id']}", headers=api.bearer(farmer["farmer_token"])
    )
    (shown,) = detail.json()["recent_payouts"]  # the farmer sees its payout
    assert (shown["amount"], shown["status"], shown["tx_hash"]) == (owed, "confirmed", payout.tx_hash)
    assert shown["destination"] == wallet and "envelope_xdr" not in shown


async def test_several_farmers_are_paid_at_once(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """A run sends the payouts of ``payout_concurrency`` farmers before the first is
    confirmed (one at a time, 1,000 farmers at 5 s ledgers took 83 minutes a run); each is
    paid once, from its own account."""
    api = payout_world
    paid = [await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1) for _ in range(3)]
    owed = {f["farmer_id"]: await expected_owed(api, f) for f, _ in paid}
    await controls.sent(clear=True)
    run = asyncio.create_task(Payouts(api.context.ops).run_once())
    try:
        pending = await controls.wait_pending(3)  # all three in flight, no ledger closed yet
    finally:
        finished = await closing(controls, run)
    assert len(pending) == 3 and len(await controls.sent()) == 3
    assert (finished.paid, finished.amount, finished.failed, finished.errors) == (3, sum(owed.values()), 0, 0)
    for farmer, wallet in paid:
        assert await kale_of(dev_chain, wallet) == 1 + owed[farmer["farmer_id"]]


async def expected_owed_or_zero(api: Api, farmer: dict[str, Any]) -> int:
    async with api.context.db.transaction() as session:
        return (await owed_to(session, uuid.UUID(farmer["farmer_id"]))).owed(leaving=False)


class Crash(Exception):
    """The process dies right after the intent (envelope and hash) is recorded."""


class CrashAfterSigning:
    def __init__(self, inner: Chain) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def pay(
        self, keypair: Keypair, destination: str, amount: int, *, on_signed: OnSigned | None = None
    ) -> PaymentOutcome:
        async def record_then_crash(tx_hash: str, envelope_xdr: str) -> None:
            assert on_signed is not None
            await on_signed(tx_hash, envelope_xdr)
            raise Crash(tx_hash)

        return await self.inner.pay(keypair, destination, amount, on_signed=record_then_crash)


async def test_a_crash_after_signing_is_resumed_by_hash(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, wallet = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    owed = await expected_owed(api, farmer)
    before = await kale_of(dev_chain, wallet)
    await controls.sent(clear=True)

    crashing = Payouts(replace(api.context.ops, chain=CrashAfterSigning(dev_chain)))  # type: ignore[arg-type]
    run = await closing(controls, crashing.run_once())
    assert (run.paid, run.errors) == (0, 1)
    assert await controls.sent() == []  # nothing was sent
    (intent,) = await rows(api, Payout)
    assert intent.status == "submitted" and intent.tx_hash and intent.envelope_xdr and intent.amount == owed
    assert await payout_lines(api, farmer) == []

    resumed = await closing(controls, Payouts(api.context.ops).run_once())
    assert (resumed.resumed, resumed.paid, resumed.errors) == (1, 1, 0)
    assert set(await controls.sent()) == {intent.envelope_xdr}  # the recorded envelope, never re-signed
    (payout,) = await rows(api, Payout)
    assert payout.status == "confirmed" and payout.tx_hash == intent.tx_hash
    assert await kale_of(dev_chain, wallet) == before + owed
    debit = [line for line in await payout_lines(api, farmer) if line.kind == JournalKind.PAYOUT.value]
    assert [(d.amount, d.reference) for d in debit] == [(-owed, intent.tx_hash)]
    assert (await closing(controls, Payouts(api.context.ops).run_once())).paid == 0
    report = await Reconciler(api.context.ops).run_once()
    assert report.mismatches == [] and report.deposits == 0


async def test_a_payout_wallet_without_trustline_fails_and_backs_off(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, wallet = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=None)
    custodial_before = await kale_of(dev_chain, farmer["custodial_wallet"])
    await controls.sent(clear=True)

    worker = Payouts(api.context.ops)
    run = await closing(controls, worker.run_once())
    assert (run.paid, run.failed, run.errors) == (0, 1, 0)
    (failed,) = await rows(api, Payout)
    assert failed.status == "failed" and failed.error and failed.error.startswith("no_trustline")
    assert failed.tx_hash is None and failed.destination == wallet
    assert await payout_lines(api, farmer) == []
    assert await controls.sent() == []
    assert await kale_of(dev_chain, farmer["custodial_wallet"]) == custodial_before

    backing_off = await closing(controls, worker.run_once())
    assert (backing_off.failed, backing_off.skipped) == (0, 1)
    assert len(await rows(api, Payout)) == 1

    settings = api.context.ops.settings.model_copy(update={"payout_retry_seconds": 0})
    retried = await closing(controls, Payouts(replace(api.context.ops, settings=settings)).run_once())
    assert retried.failed == 1 and len(await rows(api, Payout)) == 2
    assert await payout_lines(api, farmer) == [] and await controls.sent() == []


class _SequenceTakenOnce:
    """The chain as seen while another process uses the account: the first payment is
    refused ``bad_sequence`` (twice, so even the gateway's rebuild lost), nothing sent."""

    def __init__(self, inner: Chain) -> None:
        self.inner = inner
        self.refused = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def pay(
        self, keypair: Keypair, destination: str, amount: int, *, on_signed: OnSigned | None = None
    ) -> PaymentOutcome:
        if not self.refused:
            self.refused += 1
            raise ChainError("txBAD_SEQ twice", code="bad_sequence")
        return await self.inner.pay(keypair, destination, amount, on_signed=on_signed)


async def test_a_payout_refused_for_its_sequence_is_tried_again_in_seconds(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    _farmer, wallet = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    flaky = _SequenceTakenOnce(dev_chain)
    settings = api.context.ops.settings.model_copy(
        update={"payout_retry_seconds": 3600, "payout_transient_retry_seconds": 0}
    )
    ops = replace(api.context.ops, chain=flaky, settings=settings)
    first = await closing(controls, Payouts(ops).run_once())
    assert (first.paid, first.failed) == (0, 1)
    (failed,) = await rows(api, Payout)
    assert failed.error and failed.error.startswith("bad_sequence")
    before = await kale_of(dev_chain, wallet)
    second = await closing(controls, Payouts(ops).run_once())  # not an hour later: now
    assert second.paid == 1 and await kale_of(dev_chain, wallet) > before


async def test_a_transient_failure_still_waits_its_own_backoff(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    settings = api.context.ops.settings.model_copy(
        update={"payout_retry_seconds": 0, "payout_transient_retry_seconds": 3600}
    )
    ops = replace(api.context.ops, chain=_SequenceTakenOnce(dev_chain), settings=settings)
    assert (await closing(controls, Payouts(ops).run_once())).failed == 1
    again = await closing(controls, Payouts(ops).run_once())
    assert (again.paid, again.skipped) == (0, 1)


async def test_a_leaving_farmer_is_paid_everything_it_owns_then_departs(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, wallet = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    token = api.bearer(farmer["farmer_token"])
    left = await api.client.post(f"/api/v1/farmers/{farmer['farmer_id']}/leave", headers=token)
    assert left.status_code == 200 and left.json()["status"] == "leaving"
    again = await api.client.post(f"/api/v1/farmers/{farmer['farmer_id']}/leave", headers=token)
    assert again.status_code == 200 and again.json()["status"] == "leaving"  # asking twice is fine
    other = await api.client.post(f"/api/v1/farmers/{farmer['farmer_id']}/leave", headers=api.admin)
    assert other.status_code in (401, 403)

    block = await open_block(controls, dev_chain, devnet)  # a leaving farmer is not planted
    planted = await plant(api, controls, farmer["pooler_key"], farmer["pooler_id"], block)
    assert planted["planted_farmers"] == [] and planted["summary"]["planted"] == 0

    async with api.context.db.transaction() as session:
        figures = await owed_to(session, uuid.UUID(farmer["farmer_id"]))
    custodial = await kale_of(dev_chain, farmer["custodial_wallet"])
    everything = custodial - figures.held  # deposit left after staking, plus its rewards
    assert figures.net == everything > figures.owed(leaving=False)
    before = await kale_of(dev_chain, wallet)
    run = await closing(controls, Payouts(api.context.ops).run_once())
    assert (run.paid, run.amount, run.departed) == (1, everything, 0)
    assert await kale_of(dev_chain, wallet) == before + everything
    assert await kale_of(dev_chain, farmer["custodial_wallet"]) == figures.held  # the fees stay

    done = await closing(controls, Payouts(api.context.ops).run_once())
    assert (done.paid, done.departed) == (0, 1)
    async with api.context.db.transaction() as session:
        row = await session.get(Farmer, uuid.UUID(farmer["farmer_id"]))
    assert row is not None and row.status == "departed"
    gone = await api.client.post(f"/api/v1/farmers/{farmer['farmer_id']}/leave", headers=token)
    assert gone.status_code == 409 and gone.json()["error"]["code"] == "farmer_departed"
    assert (await closing(controls, Payouts(api.context.ops).run_once())).considered == 0


async def test_a_leaving_farmer_owed_a_compensation_waits_for_it(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """Its pooler missed its work and has no fees yet to pay the compensation from: the
    farmer is paid what is in its account, and stays ``leaving`` (not departed) for the rest."""
    api = payout_world
    pooler_id, key = await api.create_pooler()
    farmer = await ready_farmer(api, devnet, pooler_id, kale=20 * KALE)
    wallet = devnet.new_account(xlm=10 * XLM, kale=1)
    async with api.context.db.transaction() as session:
        await session.execute(
            update(Farmer)
            .where(Farmer.id == uuid.UUID(farmer["farmer_id"]))
            .values(payout_wallet=wallet.public_key)
        )
    block = await open_block(controls, dev_chain, devnet)
    (row,) = (await plant(api, controls, key, pooler_id, block))["planted_farmers"]
    await work_complete(api, key, pooler_id, block, [])  # the pooler missed it
    await new_block(controls, dev_chain, devnet)
    await closing(controls, AutoHarvester(api.context.ops).run_once())  # its pail: unworked
    token = api.bearer(farmer["farmer_token"])
    leave = await api.client.post(f"/api/v1/farmers/{farmer['farmer_id']}/leave", headers=token)
    assert leave.status_code == 200

    first = await closing(controls, Payouts(api.context.ops).run_once())
    assert (first.paid, first.amount) == (1, 20 * KALE - row["stake_amount"])  # what its account holds
    later = await closing(controls, Payouts(api.context.ops).run_once())
    assert (later.paid, later.departed) == (0, 0)
    async with api.context.db.transaction() as session:
        left = await session.get(Farmer, uuid.UUID(farmer["farmer_id"]))
        due = await journal.compensations_due(session, uuid.UUID(pooler_id))
    assert left is not None and left.status == "leaving"
    assert due == {uuid.UUID(farmer["farmer_id"]): row["stake_amount"]}
