"""``kalepool demo``: the whole pool on one machine, K blocks end to end.

1. PostgreSQL (embedded, or a fresh database on ``KALEPOOL_DATABASE__URL``), the devnet
   (fast timing, wall clock) and the backend (a child process) start.
2. The operator registers P poolers (``POST /poolers``); each pooler account is funded
   by the friendbot.
3. N farmers register (``POST /farmers``), get their custodial account funded with XLM
   by the friendbot, confirm the funding (the backend adds the KALE trustline), receive
   a mix of KALE from the devnet's KALE issuer and confirm again (the deposit is
   journaled). Stake percentages vary from 0 to 100 %.
4. The poolers start (``kalepool pooler run --blocks K``, one child process each) and
   run K blocks: plant-request, mining, works, work-complete, harvest-request.
5. Once every pooler has worked its K blocks, the demo rolls the farm over itself (a
   zero-stake plant from an outside account once the block is ripe), so the last block
   can be harvested; the poolers harvest it and exit.
6. The report is read from the backend's database and the chain; the reconciliation
   compares each farmer's custodial journal balance with its on-chain KALE.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
from stellar_sdk import Keypair

from kalepool.demo.cluster import Cluster, ClusterError, PoolerProcess
from kalepool.demo.report import DemoReport, FarmerRow, collect
from kalepool.devnet import issuer_keypair
from kalepool.pool_api import PoolApi, RegisteredFarmer
from kalepool.settings import StellarSettings
from kalepool.stellar import FarmGateway, FarmState, Payment

__all__ = ["DemoOptions", "Pool", "run_demo", "serve_pool", "setup_pool", "sign_in_lines"]

KALE = 10_000_000
#: The mix of KALE deposits and stake percentages the farmers get, in turn.
DEPOSITS_KALE = (0, 100, 250, 500, 1_000, 50, 2_000, 750)
STAKE_PERCENTAGES = (0, 100, 50, 25, 10, 100, 5, 60)
POOLER_SHARE_BPS = 1_000
#: XLM each custodial account and payout wallet is created with (stroops)
CUSTODIAL_XLM = 100 * KALE
PAYOUT_XLM = 5 * KALE
#: accounts one friendbot-funded funder creates (10,000 XLM each: at most 100 accounts a transaction)
FUNDER_ACCOUNTS = 50
#: registrations, trustlines and confirmations in flight at once during the set-up
SETUP_CONCURRENCY = 64

T = TypeVar("T")

Progress = Callable[[str], None]


@dataclass
class DemoOptions:
    farmers: int = 8
    blocks: int = 3
    poolers: int = 1
    block_interval: int = 30
    ledger_seconds: float = 1.0
    work_dir: Path | None = None
    database_url: str | None = None
    timeout: float | None = None
    threads: int | None = None
    #: after the report, keep the pool running (poolers without a block limit) until cancelled
    serve: bool = False

    def deadline_seconds(self) -> float:
        if self.timeout is not None:
            return self.timeout
        return 180 + (self.blocks + 3) * self.block_interval * 2 + self.farmers


@dataclass
class Pool:
    """A running pool: the cluster, the operator's API, a gateway, the farmers."""

    cluster: Cluster
    api: PoolApi
    gateway: FarmGateway
    farmers: list[RegisteredFarmer] = field(default_factory=list)
    poolers: list[PoolerProcess] = field(default_factory=list)

    async def close(self) -> None:
        await self.api.close()
        await self.gateway.close()


def _say(progress: Progress | None, text: str) -> None:
    if progress is not None:
        progress(text)


async def _friendbot(http: httpx.AsyncClient, url: str, address: str) -> None:
    for attempt in range(5):
        response = await http.get(url, params={"addr": address})
        if response.status_code == 200:
            return
        if attempt == 4:
            raise ClusterError(f"friendbot refused {address}: {response.text[:200]}")
        await asyncio.sleep(0.5)


async def setup_pool(
    cluster: Cluster,
    *,
    farmers: int,
    poolers: int,
    progress: Progress | None = None,
    deposits: tuple[int, ...] = DEPOSITS_KALE,
    stakes: tuple[int, ...] = STAKE_PERCENTAGES,
) -> Pool:
    """Register and fund poolers and farmers on a started cluster (steps 2 and 3).

    Built for a thousand farmers as well as eight: registrations and confirmations run
    side by side (a bounded number at a time); the friendbot funds a few funder accounts
    only, which create the custodial and payout accounts a hundred per transaction, all
    funders in the same ledger."""
    assert cluster.devnet is not None
    api = PoolApi(cluster.backend_url, cluster.admin_token)
    gateway = FarmGateway.from_settings(
        StellarSettings(network="devnet", rpc_urls=[cluster.rpc_url], poll_interval=0.25)
    )
    pool = Pool(cluster, api, gateway)
    await gateway.learn_network()  # the devnet's block interval: ripeness as the farm judges it
    friendbot = cluster.devnet.friendbot_url
    async with httpx.AsyncClient(timeout=90) as http:
        _say(progress, f"registering {poolers} pooler(s)")
        for _ in range(poolers):
            keypair = Keypair.random()
            await _friendbot(http, friendbot, keypair.public_key)
            created = await api.create_pooler(
                f"demo-pooler-{len(cluster.poolers) + 1}", keypair.public_key, POOLER_SHARE_BPS
            )
            pooler_id, api_key = str(created["pooler"]["pooler_id"]), str(created["api_key"])
            pool.poolers.append(cluster.add_pooler(keypair, pooler_id, api_key))
        _say(progress, f"registering {farmers} farmer(s)")
        payouts = [Keypair.random() for _ in range(farmers)]

        async def register(i: int) -> RegisteredFarmer:
            pooler = pool.poolers[i % poolers]
            pct = stakes[i % len(stakes)]
            data = await api.register_farmer(pooler.pooler_id, payouts[i].public_key, pct)
            return RegisteredFarmer(
                farmer_id=str(data["farmer_id"]),
                custodial_wallet=str(data["custodial_wallet"]),
                token=str(data["farmer_token"]),
                pooler_index=pooler.index,
                stake_percentage=float(pct),
                deposit=deposits[i % len(deposits)] * KALE,
                payout_wallet=payouts[i].public_key,
            )

        pool.farmers = await _bounded(SETUP_CONCURRENCY, [register(i) for i in range(farmers)])
        _say(progress, "funding the custodial accounts and the payout wallets (friendbot-funded funders)")
        accounts = [Payment(f.custodial_wallet, CUSTODIAL_XLM) for f in pool.farmers]
        accounts += [Payment(p.public_key, PAYOUT_XLM) for p in payouts]
        per = FUNDER_ACCOUNTS
        funders = [Keypair.random() for _ in range(0, len(accounts), per)]
        await asyncio.gather(*(_friendbot(http, friendbot, f.public_key) for f in funders))
        batches = [accounts[i : i + per] for i in range(0, len(accounts), per)]
        await asyncio.gather(*(gateway.create_accounts(f, b) for f, b in zip(funders, batches, strict=True)))
    _say(progress, "adding the payout wallets' KALE trustlines")
    await _bounded(SETUP_CONCURRENCY, [gateway.ensure_trustline(p) for p in payouts])
    _say(progress, "confirming the funding (the backend adds each KALE trustline)")
    await _bounded(SETUP_CONCURRENCY, [api.confirm_funding(f.farmer_id, f.token) for f in pool.farmers])
    paid = [Payment(f.custodial_wallet, f.deposit, "KALE") for f in pool.farmers if f.deposit > 0]
    if paid:
        _say(progress, f"depositing {sum(p.amount for p in paid) / KALE:,.0f} KALE to {len(paid)} farmer(s)")
        for start in range(0, len(paid), 100):
            await gateway.pay_many(issuer_keypair(), paid[start : start + 100])
        # confirming again journals the deposit
        funded = [f for f in pool.farmers if f.deposit > 0]
        await _bounded(SETUP_CONCURRENCY, [api.confirm_funding(f.farmer_id, f.token) for f in funded])
    for pooler in pool.poolers:
        ready = await api.pooler_ready_farmers(pooler.api_key)
        mine = sum(1 for f in pool.farmers if f.pooler_index == pooler.index)
        if ready != mine:
            raise ClusterError(f"pooler {pooler.index + 1}: {ready} of {mine} farmers are ready to plant")
    return pool


async def _bounded(limit: int, calls: list[Coroutine[Any, Any, T]]) -> list[T]:
    """Await ``calls`` with at most ``limit`` running at once; results in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Coroutine[Any, Any, T]) -> T:
        async with semaphore:
            return await call

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def roll_over_when_ripe(gateway: FarmGateway, interval: int, closer: Keypair, *, timeout: float) -> int:
    """Plant a zero stake from ``closer`` once the current block is ripe: the farm opens
    the next block (so the last one can be harvested). Returns the new index."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        farm = await gateway.farm_state()
        if farm.block_start is not None and farm.close_time >= farm.block_start + interval:
            outcome = await gateway.plant(closer, 0)
            return outcome.index
        await asyncio.sleep(0.5)
    raise ClusterError("the farm did not become ripe in time")


def _describe(pooler: int, event: dict[str, Any], poolers: int) -> str | None:
    name = event.get("event")
    who = f"pooler {pooler + 1}: " if poolers > 1 else ""
    kale = 1e7
    if name == "pooler.started":
        return f"{who}started ({event.get('threads')} thread(s), {event.get('hash_rate', 0) / 1e6:.2f} MH/s)"
    if name == "pooler.planted":
        failed = f", {event['failed']} failed" if event.get("failed") else ""
        return f"{who}block {event.get('block_index')}: {event.get('farmers')} farmer(s) planted{failed}"
    if name == "pooler.mining":
        return f"{who}block {event.get('block_index')}: mining for {event.get('seconds')} s"
    if name == "pooler.reported":
        return (
            f"{who}block {event.get('block_index')}: {event.get('worked')}/{event.get('planted')} worked, "
            f"zeros {event.get('zeros_min')}–{event.get('zeros_max')}, reported"
        )
    if name == "pooler.harvested":
        blocks = ", ".join(str(b) for b in event.get("blocks") or []) or "?"
        return (
            f"{who}block {blocks}: {event.get('harvested')} pail(s) harvested, reward "
            f"{(event.get('total_rewards') or 0) / kale:,.4f} KALE"
        )
    if name == "pooler.new_block":
        return f"{who}block {event.get('block_index')} opened"
    if name == "pooler.waiting_for_rollover":
        return f"{who}waiting for the next block to open, to harvest block(s) {event.get('blocks')}"
    if name in ("pooler.work_missed", "pooler.plant_failed", "pooler.harvest_failed", "pooler.task_failed"):
        detail = event.get("error") or ""
        what = name.removeprefix("pooler.").replace("_", " ")
        return f"{who}{what} {event.get('block_index', '')} {detail}"
    return None


def first_block_wait(farm: FarmState, waited: float) -> str:
    """A progress line while the poolers wait for a block they can mine in."""
    due = farm.next_rollover_time
    if farm.block_start is None or due is None:
        timing = "no block started yet"
    elif farm.ripe:
        timing = f"block {farm.index} is ripe: the next plant opens block {farm.index + 1}"
    else:
        timing = f"block {farm.index} is open, ripe in {due - farm.close_time} s"
    return f"waiting for a block to plant and mine in ({waited:.0f} s so far): {timing}"


async def run_blocks(
    pool: Pool,
    *,
    blocks: int,
    threads: int,
    progress: Progress | None,
    timeout: float,
    on_started: Callable[[], None] | None = None,
) -> list[str]:
    """Steps 4 and 5: the poolers run ``blocks`` blocks, then the farm is rolled over and
    they harvest and exit. Returns the problems seen (empty when all went well).
    ``on_started`` is called once the pooler processes are started."""
    cluster = pool.cluster
    problems: list[str] = []
    started = time.monotonic()
    deadline = started + timeout
    for pooler in pool.poolers:
        cluster.start_pooler(pooler, blocks=blocks, threads=threads)
    if on_started is not None:
        on_started()
    _say(progress, f"started {len(pool.poolers)} pooler(s): {blocks} block(s) each")

    def worked(p: PoolerProcess) -> int:
        last = p.last("pooler.reported")
        return int(last.get("blocks_worked", 0)) if last else 0

    note_every = max(5.0, min(10.0, cluster.block_interval / 2))
    next_note = time.monotonic()
    while any(worked(p) < blocks for p in pool.poolers):
        if time.monotonic() >= next_note and not any(p.last("pooler.mining") for p in pool.poolers):
            _say(progress, first_block_wait(await pool.gateway.farm_state(), time.monotonic() - started))
            next_note = time.monotonic() + note_every
        for p in pool.poolers:
            if not p.running and worked(p) < blocks:
                raise ClusterError(
                    f"pooler {p.index + 1} exited early (code {p.process.returncode if p.process else '?'}); "
                    f"see {p.log_file}"
                )
        if time.monotonic() > deadline:
            raise ClusterError("the blocks did not complete in time")
        await asyncio.sleep(0.5)
    closer = Keypair.random()
    async with httpx.AsyncClient(timeout=60) as http:
        assert cluster.devnet is not None
        await _friendbot(http, cluster.devnet.friendbot_url, closer.public_key)
    index = await roll_over_when_ripe(
        pool.gateway, cluster.block_interval, closer, timeout=max(5.0, deadline - time.monotonic())
    )
    _say(progress, f"block {index} opened by an outside plant: the last block can be harvested")
    for p in pool.poolers:
        code = await asyncio.to_thread(cluster.wait_pooler, p, max(5.0, deadline - time.monotonic()))
        if code is None:
            problems.append(f"pooler {p.index + 1} did not finish in time")
            cluster.stop_pooler(p)
        elif code != 0:
            problems.append(f"pooler {p.index + 1} exited with code {code}")
    return problems


async def wait_harvested(pool: Pool, *, timeout: float) -> None:
    """Wait until no worked pail of the pool's farmers is left to harvest (the poolers'
    requests, or the backend's auto-harvester for any they missed): each is harvested,
    or lost."""
    from sqlalchemy import create_engine, func, select

    from kalepool.backend.db.embedded import sqlalchemy_url
    from kalepool.backend.db.models import Pail
    from kalepool.backend.enums import PailState

    assert pool.cluster.database_url is not None
    engine = create_engine(sqlalchemy_url(pool.cluster.database_url))
    ids = [f.farmer_id for f in pool.farmers]
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                open_pails = conn.execute(
                    select(func.count()).where(
                        Pail.farmer_id.in_(ids),
                        Pail.state.in_([PailState.WORKED.value, PailState.HARVESTING.value]),
                    )
                ).scalar_one()
            if open_pails == 0:
                return
            await asyncio.sleep(1.0)
    finally:
        engine.dispose()


async def build_report(pool: Pool, *, blocks_wanted: int, problems: list[str], started: float) -> DemoReport:
    infos = await asyncio.gather(*(pool.gateway.account(f.custodial_wallet) for f in pool.farmers))
    chain_kale = {i.address: i.kale_balance for i in infos}
    chain_xlm = {i.address: i.xlm_balance for i in infos}
    rows = [
        FarmerRow(
            farmer_id=f.farmer_id,
            public_key=f.custodial_wallet,
            pooler=f.pooler_index + 1,
            stake_percentage=f.stake_percentage,
            deposit=f.deposit,
        )
        for f in pool.farmers
    ]
    assert pool.cluster.database_url is not None
    blocks, farmers, differences = await asyncio.to_thread(
        collect, pool.cluster.database_url, rows, chain_kale, chain_xlm
    )
    report = DemoReport(
        blocks=blocks,
        farmers=farmers,
        differences=differences,
        blocks_wanted=blocks_wanted,
        problems=list(problems),
        wall_seconds=time.monotonic() - started,
    )
    for b in blocks:
        if not b.complete:
            report.problems.append(
                f"block {b.index}: {b.planted} planted, {b.worked} worked, {b.harvested} harvested"
            )
    if len(blocks) < blocks_wanted:
        report.problems.append(f"{len(blocks)} block(s) ran, {blocks_wanted} wanted")
    return report


def sign_in_lines(pool: Pool) -> list[str]:
    """What a person needs to look around the dashboard of a served demo."""
    cluster = pool.cluster
    lines = [f"dashboard: {cluster.backend_url}/", f"operator (admin token): {cluster.admin_token}"]
    lines += [f"pooler {p.index + 1} (API key): {p.api_key}" for p in pool.poolers]
    for i, farmer in enumerate(pool.farmers):
        lines.append(f"farmer {i + 1} (token, stake {farmer.stake_percentage:g} %): {farmer.token}")
    return lines


async def serve_pool(pool: Pool, *, threads: int, announce: Callable[[list[str]], None]) -> None:
    """Keep the pool farming (each pooler restarted without a block limit) and wait until
    cancelled (Ctrl-C, SIGTERM); the caller's ``finally`` stops everything."""
    for pooler in pool.poolers:
        if not pooler.running:
            pool.cluster.start_pooler(pooler, threads=threads)
    announce(sign_in_lines(pool))
    await asyncio.Event().wait()


async def run_demo(
    options: DemoOptions,
    progress: Progress | None = None,
    *,
    on_report: Callable[[DemoReport], None] | None = None,
    announce: Callable[[list[str]], None] | None = None,
) -> DemoReport:
    """Run the demo end to end (see the module docstring); never raises for a failed
    run: the report's ``problems`` say what went wrong and ``ok`` is False.

    With ``options.serve`` a completed run's report goes to ``on_report``, then the pool
    keeps running and ``announce`` gets the dashboard's address and the sign-in tokens;
    the call ends only when cancelled (it then raises ``CancelledError``)."""
    started = time.monotonic()
    threads = options.threads or max(1, ((os.cpu_count() or 2) - 1) // options.poolers)
    settings = {
        "farmers": options.farmers,
        "blocks": options.blocks,
        "poolers": options.poolers,
        "block_interval": options.block_interval,
        "ledger_seconds": options.ledger_seconds,
        "threads_per_pooler": threads,
    }

    def on_event(pooler: int, event: dict[str, Any]) -> None:
        text = _describe(pooler, event, options.poolers)
        if text is not None:
            _say(progress, text)

    cluster = Cluster(
        block_interval=options.block_interval,
        ledger_seconds=options.ledger_seconds,
        work_dir=options.work_dir,
        database_url=options.database_url,
        on_event=on_event,
    )
    pool: Pool | None = None
    timeout = options.deadline_seconds()
    try:
        _say(progress, "starting PostgreSQL")
        await asyncio.to_thread(cluster.start_database)
        _say(
            progress,
            f"starting the devnet ({options.ledger_seconds:g} s ledgers, {options.block_interval} s blocks)",
        )
        cluster.start_devnet()
        _say(progress, "starting the backend")
        await asyncio.to_thread(cluster.start_backend)
        pool = await setup_pool(cluster, farmers=options.farmers, poolers=options.poolers, progress=progress)
        problems = await run_blocks(
            pool,
            blocks=options.blocks,
            threads=threads,
            progress=progress,
            timeout=max(30.0, timeout - (time.monotonic() - started)),
        )
        _say(progress, "waiting for the last harvests")
        await wait_harvested(pool, timeout=2 * options.block_interval + 10)
        report = await build_report(pool, blocks_wanted=options.blocks, problems=problems, started=started)
        if options.serve:
            report.settings, report.wall_seconds = settings, time.monotonic() - started
            if on_report is not None:
                on_report(report)
            await serve_pool(pool, threads=threads, announce=announce or (lambda lines: None))
    except Exception as exc:  # a failed run is a report, not a traceback
        report = DemoReport(blocks_wanted=options.blocks, problems=[f"{type(exc).__name__}: {exc}"])
        if pool is not None:
            try:
                partial = await build_report(pool, blocks_wanted=options.blocks, problems=[], started=started)
                report.blocks, report.farmers, report.differences = (
                    partial.blocks,
                    partial.farmers,
                    partial.differences,
                )
            except Exception as inner:
                report.problems.append(f"no report: {type(inner).__name__}: {inner}")
    finally:
        if pool is not None:
            await pool.close()
        await asyncio.to_thread(cluster.stop)
    report.settings = settings
    report.wall_seconds = time.monotonic() - started
    return report
