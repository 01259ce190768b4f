"""Poolers' fees: sent from the custodial accounts holding them to the pooler's account,
once; never staked while they wait there. And an intent written only by the claim's holder.

The pooler's share of a reward stays in the farmer's custodial account until the payout
worker sends it. Each test harvests a block of its own (see ``test_payouts``).
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from kalepool.backend import journal
from kalepool.backend.accounting import held_fees, platform_fees_held, pooler_fees_held, stake_for
from kalepool.backend.chain import ChainUnavailable
from kalepool.backend.db.models import BalanceChange, Farmer, Pail, Payout, Planting, Pooler
from kalepool.backend.enums import Asset, JournalKind
from kalepool.backend.services.planting import plant_request
from kalepool.backend.stellar_chain import GatewayChain
from kalepool.backend.workers import AutoHarvester, Payouts, Reconciler
from kalepool.devnet.testing import DevnetHandle
from kalepool.pooler.client import BackendClient, format_earnings
from tests.backend.conftest import Api
from tests.backend.devnet_env import KALE, XLM, Controls, closing, ready_farmer, submit_work
from tests.backend.test_chain_cycle import new_block, open_block, work_complete
from tests.backend.test_chain_plant import plant, rows
from tests.backend.test_payouts import (
    CrashAfterSigning,
    expected_owed,
    harvested_farmer,
    kale_of,
    payout_world,
)

__all__ = ["payout_world"]  # the fixture, used by name


async def sums_of(api: Api, farmer: dict[str, Any]) -> dict[JournalKind, int]:
    async with api.context.db.transaction() as session:
        fid = uuid.UUID(farmer["farmer_id"])
        return (await journal.kale_by_kind(session, [fid]))[fid]


async def pooler_claim(api: Api, pooler_id: str) -> int:
    async with api.context.db.transaction() as session:
        return (await journal.pooler_balances(session, uuid.UUID(pooler_id)))[Asset.KALE]


async def give_pooler_account(api: Api, pooler_id: str, public_key: str) -> None:
    async with api.context.db.transaction() as session:
        await session.execute(
            update(Pooler).where(Pooler.id == uuid.UUID(pooler_id)).values(public_key=public_key)
        )


async def farmer_of_a_paid_pooler(
    api: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> tuple[dict[str, Any], Any, int]:
    """A farmer with a harvested reward whose pooler has an account with a KALE trustline;
    that account, and the pooler's share of the reward."""
    farmer, _ = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    account = devnet.new_account(xlm=10 * XLM, kale=1)
    await give_pooler_account(api, farmer["pooler_id"], account.public_key)
    return farmer, account, await pooler_claim(api, farmer["pooler_id"])


async def test_the_poolers_fees_are_sent_to_its_account_once(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, account, share = await farmer_of_a_paid_pooler(api, devnet, controls, dev_chain)
    sums = await sums_of(api, farmer)
    assert share > 0 and pooler_fees_held(sums) == share  # all of it still in the custodial account
    owed = await expected_owed(api, farmer)
    custodial_before = await kale_of(dev_chain, farmer["custodial_wallet"])
    await controls.sent(clear=True)
    before = await earnings(api, farmer)
    assert (before["claim"], before["held_in_custody"], before["recent_payouts"]) == (share, share, [])
    assert before["account"] == account.public_key and before["kale_by_kind"] == {"pooler_share": share}

    worker = Payouts(api.context.ops)
    run = await closing(controls, worker.run_once())
    assert run.poolers is not None
    assert (run.paid, run.amount, run.errors) == (1, owed, 0)
    assert (run.poolers.paid, run.poolers.amount, run.poolers.errors) == (1, share, 0)
    again = await closing(controls, worker.run_once())
    assert again.poolers is not None and (again.paid, again.poolers.paid) == (0, 0)
    assert len(await controls.sent()) == 2  # the farmer's payout and the pooler's, nothing more

    assert await kale_of(dev_chain, account.public_key) == 1 + share
    assert await kale_of(dev_chain, farmer["custodial_wallet"]) == custodial_before - owed - share
    payouts = {p.account_type: p for p in await rows(api, Payout)}
    sent = payouts["pooler"]
    assert (sent.status, sent.amount, sent.destination) == ("confirmed", share, account.public_key)
    assert sent.source_farmer_id == uuid.UUID(farmer["farmer_id"]) and sent.farmer_id is None
    assert await pooler_claim(api, farmer["pooler_id"]) == 0
    after = await sums_of(api, farmer)
    assert after[JournalKind.POOLER_FEE_SENT] == -share and after[JournalKind.POOLER_FEE_SETTLED] == share
    assert pooler_fees_held(after) == 0 and held_fees(after) == -after[JournalKind.PLATFORM_FEE]
    assert sum(after.values()) == sum(sums.values()) - owed  # the farmer's own KALE: only its payout left
    lines = await rows(api, BalanceChange, BalanceChange.reference == sent.tx_hash)
    assert sorted((line.account_type, line.kind, line.amount) for line in lines if line.asset == "KALE") == [
        ("farmer", "pooler_fee_sent", -share),
        ("farmer", "pooler_fee_settled", share),
        ("pooler", "payout", -share),
    ]
    report = await Reconciler(api.context.ops).run_once()  # the journal still equals the chain
    assert report.mismatches == [] and report.deposits == 0
    seen = await earnings(api, farmer)
    assert (seen["claim"], seen["held_in_custody"]) == (0, 0)
    assert seen["kale_by_kind"] == {"pooler_share": share, "payout": -share}
    (listed,) = seen["recent_payouts"]
    assert (listed["status"], listed["amount"], listed["tx_hash"]) == ("confirmed", share, sent.tx_hash)
    assert "source_farmer_id" not in listed and "envelope_xdr" not in listed
    other_pooler, other_key = await api.create_pooler()
    theirs = await api.client.get("/api/v1/pooler/earnings", headers=api.bearer(other_key))
    assert theirs.status_code == 200 and theirs.json()["pooler_id"] == other_pooler
    assert theirs.json()["claim"] == 0 and theirs.json()["recent_payouts"] == []
    anonymous = await api.client.get("/api/v1/pooler/earnings")
    assert anonymous.status_code == 401

    # the pooler's own client and CLI text, on the same answer
    transport = api.client._transport  # the app in process (ASGI)
    async with BackendClient("http://backend.test", farmer["pooler_key"], transport=transport) as client:
        parsed = await client.earnings()
    assert parsed.model_dump(mode="json") == seen
    text = format_earnings(parsed)
    assert f"paid            -{share / 10**7:,.7f} KALE" in text and "owed now        0.0000000 KALE" in text
    assert f"payout {listed['id']}:" in text and sent.tx_hash in text


async def earnings(api: Api, farmer: dict[str, Any]) -> Any:
    response = await api.client.get("/api/v1/pooler/earnings", headers=api.bearer(farmer["pooler_key"]))
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_pooler_account_without_trustline_is_a_failed_payout(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, _ = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    account = devnet.new_account(xlm=10 * XLM)  # no KALE trustline
    await give_pooler_account(api, farmer["pooler_id"], account.public_key)
    share = await pooler_claim(api, farmer["pooler_id"])
    await controls.sent(clear=True)

    run = await closing(controls, Payouts(api.context.ops).run_once())
    assert run.poolers is not None and (run.poolers.paid, run.poolers.failed) == (0, 1)
    (failed,) = [p for p in await rows(api, Payout) if p.account_type == "pooler"]
    assert failed.status == "failed" and failed.error and failed.error.startswith("no_trustline")
    assert failed.tx_hash is None
    assert await pooler_claim(api, farmer["pooler_id"]) == share  # nothing journaled
    backed_off = await closing(controls, Payouts(api.context.ops).run_once())
    assert backed_off.poolers is not None and backed_off.poolers.failed == 0  # not retried at once
    sent_farmer_payout_only = await controls.sent()
    assert len(sent_farmer_payout_only) == 1

    devnet.fund(account.public_key, kale=1)  # the pooler adds the trustline; the backoff ends
    async with api.context.db.transaction() as session:
        earlier = failed.updated_at - timedelta(days=1)
        await session.execute(update(Payout).where(Payout.id == failed.id).values(updated_at=earlier))
    paid = await closing(controls, Payouts(api.context.ops).run_once())
    assert paid.poolers is not None and (paid.poolers.paid, paid.poolers.amount) == (1, share)
    assert await kale_of(dev_chain, account.public_key) == 1 + share


async def test_fees_held_for_others_are_never_staked(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, _ = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    async with api.context.db.transaction() as session:  # the farmer now stakes everything it has
        await session.execute(
            update(Farmer).where(Farmer.id == uuid.UUID(farmer["farmer_id"])).values(stake_bps=10_000)
        )
    held = held_fees(await sums_of(api, farmer))
    assert held > 0
    balance = await kale_of(dev_chain, farmer["custodial_wallet"])
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(api, controls, farmer["pooler_key"], farmer["pooler_id"], block)
    (row,) = planted["planted_farmers"]
    assert row["stake_amount"] == stake_for(balance - held, 10_000) == balance - held
    assert await kale_of(dev_chain, farmer["custodial_wallet"]) == held  # the fees stay


class CrashPaying(CrashAfterSigning):
    """The process dies right after recording the intent of a payment to ``destination``."""

    def __init__(self, inner: Any, destination: str) -> None:
        super().__init__(inner)
        self.destination = destination

    async def pay(self, keypair: Any, destination: str, amount: int, *, on_signed: Any = None) -> Any:
        if destination == self.destination:
            return await super().pay(keypair, destination, amount, on_signed=on_signed)
        return await self.inner.pay(keypair, destination, amount, on_signed=on_signed)


class Unreachable:
    """The chain as seen during an outage: every payment call fails before anything is sent."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def resume_payment(self, tx_hash: str, envelope_xdr: str) -> Any:
        raise ChainUnavailable("rpc down")


async def test_a_pooler_payout_in_doubt_blocks_any_other_until_its_fate_is_known(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, account, share = await farmer_of_a_paid_pooler(api, devnet, controls, dev_chain)
    await controls.sent(clear=True)

    crashing = Payouts(replace(api.context.ops, chain=CrashPaying(dev_chain, account.public_key)))
    run = await closing(controls, crashing.run_once())  # the pooler's: signed, recorded, never sent
    assert run.paid == 1 and run.poolers is not None and run.poolers.errors == 1
    (intent,) = [p for p in await rows(api, Payout) if p.account_type == "pooler"]
    assert intent.status == "submitted" and intent.amount == share

    outage = Payouts(replace(api.context.ops, chain=Unreachable(dev_chain)))  # type: ignore[arg-type]
    blocked = await closing(controls, outage.run_once())
    assert blocked.poolers is not None and (blocked.poolers.resumed, blocked.poolers.paid) == (1, 0)
    assert [p.id for p in await rows(api, Payout) if p.account_type == "pooler"] == [intent.id]  # no new one
    assert len(await controls.sent()) == 1  # the farmer's payout of the first run, nothing since

    done = await closing(controls, Payouts(api.context.ops).run_once())
    assert done.poolers is not None and (done.poolers.resumed, done.poolers.paid) == (1, 1)
    assert (await controls.sent())[1:] == [intent.envelope_xdr]  # the recorded envelope, not a new one
    assert await kale_of(dev_chain, account.public_key) == 1 + share
    assert await pooler_claim(api, farmer["pooler_id"]) == 0
    assert len([p for p in await rows(api, Payout) if p.account_type == "pooler"]) == 1


async def test_an_intent_is_refused_once_the_claim_was_taken_over(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """A holder that lost its claim (it could not renew it) sends nothing for that pail."""
    api = payout_world
    pooler_id, _ = await api.create_pooler()
    farmer = await ready_farmer(api, devnet, pooler_id, kale=10 * KALE)
    block = await open_block(controls, dev_chain, devnet)
    await controls.sent(clear=True)

    class TakenOverBeforeSigning:
        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def plant(self, keypair: Any, stake: int, *, on_signed: Any = None) -> Any:
            async with api.context.db.transaction() as session:  # another request took the pail
                await session.execute(update(Pail).values(claimed_by="plant@other"))
            return await self.inner.plant(keypair, stake, on_signed=on_signed)

    ops = replace(api.context.ops, chain=TakenOverBeforeSigning(dev_chain))
    report = await closing(controls, plant_request(ops, pooler_id=uuid.UUID(pooler_id), block_index=block))
    assert [(f.error, f.attributed_to.value) for f in report.failed] == [("plant_in_progress", "backend")]
    assert report.planted == [] and await controls.sent() == []
    (pail,) = await rows(api, Pail, Pail.farmer_id == uuid.UUID(farmer["farmer_id"]))
    assert pail.claimed_by == "plant@other" and pail.plant_tx_hash is None and pail.state == "planting"
    assert await rows(api, Planting, Planting.farmer_id == uuid.UUID(farmer["farmer_id"])) == []


async def test_the_platform_fees_go_to_the_platform_wallet_once(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    api = payout_world
    farmer, _ = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    wallet = devnet.new_account(xlm=10 * XLM, kale=1)
    api.context.ops.settings.platform_wallet = wallet.public_key
    async with api.context.db.transaction() as session:
        income = (await journal.platform_balances(session))[Asset.KALE]
    sums = await sums_of(api, farmer)
    assert income > 0 and platform_fees_held(sums) == income
    pooler_part = pooler_fees_held(sums)  # the pooler has no account: its fees stay
    await controls.sent(clear=True)

    run = await closing(controls, Payouts(api.context.ops).run_once())
    assert run.platform is not None and (run.platform.paid, run.platform.amount) == (1, income)
    assert run.poolers is not None and run.poolers.paid == 0
    again = await closing(controls, Payouts(api.context.ops).run_once())
    assert again.platform is not None and again.platform.paid == 0
    assert len(await controls.sent()) == 2  # the farmer's payout and the platform's

    assert await kale_of(dev_chain, wallet.public_key) == 1 + income
    (sent,) = [p for p in await rows(api, Payout) if p.account_type == "platform"]
    assert (sent.status, sent.pooler_id, sent.farmer_id) == ("confirmed", None, None)
    assert sent.source_farmer_id == uuid.UUID(farmer["farmer_id"])
    after = await sums_of(api, farmer)
    assert platform_fees_held(after) == 0 and held_fees(after) == pooler_part
    lines = await rows(api, BalanceChange, BalanceChange.reference == sent.tx_hash)
    assert sorted((line.account_type, line.kind, line.amount) for line in lines if line.asset == "KALE") == [
        ("farmer", "platform_fee_sent", -income),
        ("farmer", "platform_fee_settled", income),
        ("platform", "payout", -income),
    ]
    async with api.context.db.transaction() as session:
        assert (await journal.platform_balances(session))[Asset.KALE] == 0
    report = await Reconciler(api.context.ops).run_once()
    assert report.mismatches == [] and report.deposits == 0


async def test_fees_below_the_per_account_minimum_wait(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """One transaction per account: an account holding less than
    ``fee_payout_min_source`` of a pooler's fees is not sent from until it holds more."""
    api = payout_world
    farmer, account, share = await farmer_of_a_paid_pooler(api, devnet, controls, dev_chain)
    settings = api.context.ops.settings
    settings.fee_payout_min_source = share + 1
    waiting = await closing(controls, Payouts(api.context.ops).run_once())
    assert waiting.poolers is not None and (waiting.poolers.paid, waiting.poolers.failed) == (0, 0)
    assert [p for p in await rows(api, Payout) if p.account_type == "pooler"] == []
    assert await pooler_claim(api, farmer["pooler_id"]) == share

    settings.fee_payout_min_source = share
    sent = await closing(controls, Payouts(api.context.ops).run_once())
    assert sent.poolers is not None and (sent.poolers.paid, sent.poolers.amount) == (1, share)
    assert await kale_of(dev_chain, account.public_key) == 1 + share


async def due_to(api: Api, pooler_id: str) -> dict[uuid.UUID, int]:
    async with api.context.db.transaction() as session:
        return await journal.compensations_due(session, uuid.UUID(pooler_id))


async def test_a_compensation_is_paid_out_of_the_poolers_fees_before_the_pooler(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """The pooler worked one farmer and missed the other: the missed one's lost stake is
    sent to its account out of the pooler's fees (held by the worked one), then the pooler
    is paid the rest of its share."""
    api = payout_world
    pooler_id, key = await api.create_pooler(reward_share_bps=1_000)
    worked, missed = [await ready_farmer(api, devnet, pooler_id, kale=20 * KALE) for _ in range(2)]
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(api, controls, key, pooler_id, block)
    stakes = {p["farmer_id"]: p["stake_amount"] for p in planted["planted_farmers"]}
    entropy = bytes.fromhex(planted["planted_farmers"][0]["entropy"])
    miner = devnet.new_account(xlm=1_000 * XLM)
    nonce, h, out = await closing(
        controls, submit_work(dev_chain.gateway, miner, worked["custodial_wallet"], block, entropy)
    )
    result = {"farmer_id": worked["farmer_id"], "nonce": nonce, "hash": h.hex(), "zeros": out.zeros}
    report = await work_complete(api, key, pooler_id, block, [result])
    stake = stakes[missed["farmer_id"]]
    assert [(c["farmer_id"], c["amount"]) for c in report["compensations"]] == [(missed["farmer_id"], stake)]
    await new_block(controls, dev_chain, devnet)
    harvested = await closing(controls, AutoHarvester(api.context.ops).run_once())
    assert harvested.harvested == 1
    assert await due_to(api, pooler_id) == {uuid.UUID(missed["farmer_id"]): stake}  # its pail ended unworked
    share = await pooler_claim(api, pooler_id) + stake  # the claim is the share less the compensation
    account = devnet.new_account(xlm=10 * XLM, kale=1)
    await give_pooler_account(api, pooler_id, account.public_key)
    missed_before = await kale_of(dev_chain, missed["custodial_wallet"])
    await controls.sent(clear=True)

    run = await closing(controls, Payouts(api.context.ops).run_once())
    assert run.poolers is not None and run.poolers.paid == 2  # the compensation, then the pooler
    assert await kale_of(dev_chain, missed["custodial_wallet"]) == missed_before + stake
    assert await kale_of(dev_chain, account.public_key) == 1 + share - stake
    assert await due_to(api, pooler_id) == {} and await pooler_claim(api, pooler_id) == 0
    got = await sums_of(api, missed)
    assert got[JournalKind.COMPENSATION_RECEIVED] == stake and got[JournalKind.COMPENSATION_SETTLED] == -stake
    (paid,) = [p for p in await rows(api, Payout) if p.recipient_farmer_id is not None]
    assert (paid.account_type, paid.amount, paid.destination) == ("pooler", stake, missed["custodial_wallet"])
    assert paid.source_farmer_id == uuid.UUID(worked["farmer_id"]) and paid.status == "confirmed"
    assert pooler_fees_held(await sums_of(api, worked)) == 0  # all of its share has left the account
    again = await closing(controls, Payouts(api.context.ops).run_once())
    assert again.poolers is not None and again.poolers.paid == 0
    report_ = await Reconciler(api.context.ops).run_once()
    assert report_.mismatches == [] and report_.deposits == 0


async def test_a_compensation_is_settled_in_place_from_fees_in_the_farmers_own_account(
    payout_world: Api, devnet: DevnetHandle, controls: Controls, dev_chain: GatewayChain
) -> None:
    """The farmer's own account holds the pooler's fees from an earlier reward: they become
    its own, without a transaction, as far as they go; the rest of the compensation waits
    for more of the pooler's fees (the pooler has no account: nothing else is paid)."""
    api = payout_world
    farmer, _ = await harvested_farmer(api, devnet, controls, dev_chain, wallet_kale=1)
    block = await open_block(controls, dev_chain, devnet)
    planted = await plant(api, controls, farmer["pooler_key"], farmer["pooler_id"], block)
    (row,) = planted["planted_farmers"]
    stake = row["stake_amount"]
    await work_complete(api, farmer["pooler_key"], farmer["pooler_id"], block, [])  # missed
    await new_block(controls, dev_chain, devnet)
    await closing(controls, AutoHarvester(api.context.ops).run_once())
    held_before = pooler_fees_held(await sums_of(api, farmer))
    fid = uuid.UUID(farmer["farmer_id"])
    assert await due_to(api, farmer["pooler_id"]) == {fid: stake} and 0 < held_before < stake
    custodial = await kale_of(dev_chain, farmer["custodial_wallet"])
    await controls.sent(clear=True)

    await closing(controls, Payouts(api.context.ops).run_once())
    after = await sums_of(api, farmer)
    assert pooler_fees_held(after) == 0  # all the pooler's fees there became the farmer's own
    assert after[JournalKind.COMPENSATION_SETTLED] == -held_before
    assert JournalKind.COMPENSATION_RECEIVED not in after
    assert await due_to(api, farmer["pooler_id"]) == {fid: stake - held_before}  # the rest waits for fees
    sent = await controls.sent()  # the farmer's own payout only: nothing for the compensation
    assert all(p.recipient_farmer_id is None for p in await rows(api, Payout))
    assert await kale_of(dev_chain, farmer["custodial_wallet"]) <= custodial and len(sent) <= 1
    report = await Reconciler(api.context.ops).run_once()
    assert report.mismatches == [] and report.deposits == 0
