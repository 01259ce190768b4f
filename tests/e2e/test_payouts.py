"""Payouts across processes: farmers, their pooler and the platform paid, the books exact.

The backend runs as its own process with a short payout interval; after one block is
planted, worked and harvested, its payout worker sends the farmers' rewards to their
wallets, the pooler's share to the pooler's account and the platform's fee to the
platform wallet, each from the custodial accounts. Then every custodial account's KALE
on chain equals its journal, and what each destination received equals what was journaled
as paid to it.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from stellar_sdk import Keypair

from kalepool.demo import Cluster
from kalepool.demo.runner import _friendbot, build_report
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway

from .conftest import INTERVAL, Faults
from .helpers import close_and_harvest, fresh_pool, rows

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PAYOUT_ENV = {
    "KALEPOOL_BACKEND__PAYOUT_INTERVAL": "2",
    "KALEPOOL_BACKEND__PAYOUT_MIN_AMOUNT": "1",
    # every fee is sent on however small (by default under 1 KALE per account waits for
    # more), so the test can wait until none is left
    "KALEPOOL_BACKEND__FEE_PAYOUT_MIN_SOURCE": "1",
}


def platform_payouts(cluster: Cluster) -> tuple[int, int]:
    """(KALE of the confirmed platform payouts, how many are still open)."""
    ((paid, opened),) = rows(
        cluster,
        "select coalesce(sum(amount) filter (where status = 'confirmed'), 0),"
        " count(*) filter (where status in ('pending', 'submitted'))"
        " from payouts where account_type = 'platform'",
    )
    return int(paid), int(opened)


def payouts_of(cluster: Cluster, farmer_ids: list[str]) -> list[tuple[object, ...]]:
    """Every payout touching these farmers, for a failure's message."""
    return rows(
        cluster,
        "select account_type, status, amount, error from payouts"
        " where farmer_id::text = any(%s) or source_farmer_id::text = any(%s) order by created_at",
        farmer_ids,
        farmer_ids,
    )


def settled(cluster: Cluster, farmer_ids: list[str]) -> bool:
    """Both farmers paid, every fee they held sent on, and no payment touching them open."""
    (paid,) = rows(
        cluster,
        "select count(*) from payouts where status = 'confirmed' and farmer_id::text = any(%s)",
        farmer_ids,
    )
    (held,) = rows(
        cluster,
        "select coalesce(sum(amount), 0) from balance_changes where farmer_id::text = any(%s) and kind in"
        " ('pooler_fee', 'platform_fee', 'pooler_fee_settled', 'platform_fee_settled')",
        farmer_ids,
    )
    (open_,) = rows(
        cluster,
        "select count(*) from payouts where status in ('pending', 'submitted') and"
        " (farmer_id::text = any(%s) or source_farmer_id::text = any(%s))",
        farmer_ids,
        farmer_ids,
    )
    return paid[0] >= len(farmer_ids) and held[0] == 0 and open_[0] == 0


async def test_farmers_pooler_and_platform_are_paid_and_the_books_hold(
    cluster: Cluster, faults: Faults
) -> None:
    since = time.monotonic()
    # the platform's wallet exists, with its trustline, before the backend is told of it:
    # the worker pays the platform at once (other tests' farmers hold its fees), and a
    # payment to a missing account is a failed payout, tried again an hour later
    platform = Keypair.random()
    assert cluster.devnet is not None
    gateway = FarmGateway.from_settings(StellarSettings(network="devnet", rpc_urls=[cluster.rpc_url]))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            await _friendbot(http, cluster.devnet.friendbot_url, platform.public_key)
        await gateway.ensure_trustline(platform)
    finally:
        await gateway.close()
    cluster.stop_backend()
    env = {**PAYOUT_ENV, "KALEPOOL_BACKEND__PLATFORM_WALLET": platform.public_key}
    cluster.extra_backend_env.update(env)
    cluster.start_backend()
    pool = await fresh_pool(cluster, 2, deposits=(100, 200), stakes=(50, 25))
    pooler = pool.poolers[0]
    farmer_ids = [f.farmer_id for f in pool.farmers]
    try:
        await pool.gateway.ensure_trustline(pooler.keypair)
        cluster.start_pooler(pooler, blocks=1, threads=1)
        await close_and_harvest(pool, 1)

        deadline = time.monotonic() + 6 * INTERVAL
        while not settled(cluster, farmer_ids):  # the worker runs every 2 s until nothing is left
            late = time.monotonic() >= deadline
            assert not late, ("payouts not settled in time", payouts_of(cluster, farmer_ids))
            await asyncio.sleep(0.5)
        report = await build_report(pool, blocks_wanted=1, problems=[], started=since)
        # the platform's fees come from every farmer in this database, other tests' too:
        # compare the wallet with the journal at a moment when no platform payment is open
        while True:
            before = platform_payouts(cluster)
            platform_on_chain = (await pool.gateway.account(platform.public_key)).kale_balance or 0
            if before == platform_payouts(cluster) and before[1] == 0 and platform_on_chain == before[0]:
                break
            assert time.monotonic() < deadline, (before, platform_on_chain)
            await asyncio.sleep(0.5)
        platform_paid = before[0]
        wallets = [pooler.keypair.public_key, *(f.payout_wallet for f in pool.farmers)]
        on_chain = {address: (await pool.gateway.account(address)).kale_balance for address in wallets}
    finally:
        await pool.close()
        for key in env:
            cluster.extra_backend_env.pop(key, None)
        cluster.stop_backend()
        cluster.start_backend()

    assert report.reconciled, report.differences  # every custodial account: journal = chain
    assert len(report.blocks) == 1 and report.blocks[0].harvested == 2
    for farmer in pool.farmers:  # each wallet holds exactly the payouts confirmed to it
        (paid,) = rows(
            cluster,
            "select coalesce(sum(amount), 0) from payouts"
            " where status = 'confirmed' and farmer_id::text = %s",
            farmer.farmer_id,
        )
        assert paid[0] > 0 and on_chain[farmer.payout_wallet] == paid[0]
    (pooler_paid,) = rows(
        cluster,
        "select coalesce(sum(amount), 0) from payouts"
        " where status = 'confirmed' and pooler_id::text = %s",
        pooler.pooler_id,
    )
    (pooler_claim,) = rows(
        cluster,
        "select coalesce(sum(amount), 0) from balance_changes where account_type = 'pooler'"
        " and pooler_id::text = %s and asset = 'KALE'",
        pooler.pooler_id,
    )
    assert pooler_paid[0] > 0 and on_chain[pooler.keypair.public_key] == pooler_paid[0]
    assert pooler_claim[0] == 0  # its whole share was sent
    assert platform_on_chain > 0 and platform_on_chain == platform_paid
