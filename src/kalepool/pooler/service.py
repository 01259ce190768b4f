"""The pooler service: monitor → plant-request → mine → work → work-complete → harvest.

:class:`PoolerService` runs one loop that reads the farm every ``poll_interval`` seconds
and decides, from what it sees and from its state file, what to do next:

1. **Block monitor** (:mod:`~kalepool.pooler.monitor`): a new block, or a ripe one.
2. **Plant coordinator**: one ``plant-request`` per block, for the current block when
   there is still time to mine in it, else for the next one (a ripe block is rolled
   over by the plant). The pooler mines only for the farmers the backend says it
   planted, in the block index the backend reports. Never while its own works for the
   current block are still to be submitted: its plant would close that block.
3. **Work manager**: the miner's scheduler (:func:`kalepool.miner.mine_jobs`) in a worker
   thread, for every planted farmer, until the time :mod:`~kalepool.pooler.timing`
   chose; an optional early work at a fraction of the window, and a final one with
   strictly more zeros. Works go out from the pooler's channels
   (:mod:`~kalepool.pooler.channels`), each recorded in the state file before it is
   sent. Then ``work-complete`` with the outcomes read from the transactions.
4. **Harvest controller**: once the farm has moved past a reported block, a
   ``harvest-request`` for its worked pails (the backend's auto-harvester covers any
   the pooler misses).

Everything the pooler must not forget lives in :mod:`~kalepool.pooler.state`; a
restart resumes the current block from it (following in-flight transactions by hash,
never signing a work twice). :meth:`PoolerService.request_stop` (SIGINT/SIGTERM) ends
the loop gracefully: mining stops, the best works found are submitted if the block is
still open, in-flight transactions are followed, and the block is reported.

All state is changed on the event loop; the mining thread only posts results to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog
from stellar_sdk import Keypair

from kalepool.errors import KalePoolError
from kalepool.kale.errors import FarmError, FarmErrorCode
from kalepool.miner import FairSplit, MiningJob, ProgressEvent, RewardSplit, SplitPolicy, mine_jobs, search
from kalepool.miner.searcher import Searcher, Solution
from kalepool.pooler.channels import ChannelPool, derive_channels, ensure_channels
from kalepool.pooler.client import (
    BackendClient,
    BackendError,
    BackendRejected,
    BackendUnavailable,
    PlantAnswer,
    WorkReport,
)
from kalepool.pooler.monitor import BlockMonitor, ChainClock, NewBlock, RipeBlock
from kalepool.pooler.state import (
    BestFound,
    BlockState,
    HarvestPending,
    PlantedFarmer,
    PoolerState,
    StateError,
    StateStore,
    Submission,
)
from kalepool.pooler.timing import WorkPlan, plan_work
from kalepool.settings import PoolerSettings
from kalepool.stellar import (
    FarmGateway,
    FarmState,
    GatewayError,
    RaceLost,
    TxExpired,
    TxFailed,
    TxInDoubt,
    TxRejected,
    WorkOutcome,
    attempt_of,
)

__all__ = ["FarmerView", "PoolerService", "PoolerStatus", "discover_network_timing"]

log = structlog.get_logger("kalepool.pooler")

#: Seconds between tries to learn the fate of an in-doubt work before reporting without it.
SETTLE_PATIENCE = 90.0
#: Tries of a plant-request for one block that planted nobody for a retryable reason.
PLANT_ATTEMPTS = 3


# ------------------------------------------------------------------- status


@dataclass(frozen=True)
class FarmerView:
    """One planted farmer as the live status shows it."""

    farmer_id: str
    wallet: str
    stake: int
    best_zeros: int
    hashes: int
    submitted_zeros: int
    gap: int | None
    status: str


@dataclass(frozen=True)
class PoolerStatus:
    """A snapshot of the service for the terminal (``kalepool pooler run``)."""

    phase: str
    pooler_id: str | None
    account: str
    farm_index: int | None
    block_index: int | None
    ripe: bool
    time_left: float | None
    until_rollover: float | None
    hash_rate: float
    threads: int
    farmers: list[FarmerView]
    submissions: dict[str, int]
    blocks_worked: int
    rewards: int
    compensation: int
    rpc_errors: int
    events: list[str]


# ------------------------------------------------------------- the service


@dataclass
class _Active:
    """The block being worked: its plan, mining progress and control events."""

    block: BlockState
    plan: WorkPlan | None = None
    rush: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    submitted: asyncio.Event = field(default_factory=asyncio.Event)
    cancel: threading.Event = field(default_factory=threading.Event)
    hashes: dict[str, int] = field(default_factory=dict)
    start_nonce: dict[str, int] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    mining: bool = False
    salvage: bool = False  # planted (or resumed) too late for the plan: a short try anyway


async def discover_network_timing(
    gateway: FarmGateway, *, network: str, timeout: float = 10.0
) -> tuple[int, float]:
    """``(block_interval, ledger_seconds)`` of the network: the profile's, or what a
    devnet reports of itself (``devnet_info``)."""
    interval, ledger_seconds = gateway.profile.block_interval, 5.0
    if network != "devnet":
        return interval, ledger_seconds
    body = {"jsonrpc": "2.0", "id": 1, "method": "devnet_info"}
    async with httpx.AsyncClient(timeout=timeout) as http:
        for url in gateway.profile.rpc_urls:
            try:
                response = await http.post(url, json=body)
                info = response.json().get("result") or {}
            except (httpx.HTTPError, ValueError):
                continue
            if "block_interval" in info:
                return int(info["block_interval"]), float(info.get("ledger_seconds") or ledger_seconds)
    return interval, ledger_seconds


class PoolerService:
    """One pooler: its account, its backend, its miner and its state file.

    :param keypair: the pooler's own account (it pays every work's fee; never logged)
    :param interval: the block interval of the network, seconds
    :param max_blocks: stop after reporting this many blocks (and harvesting them)
    """

    def __init__(
        self,
        settings: PoolerSettings,
        *,
        gateway: FarmGateway,
        client: BackendClient,
        keypair: Keypair,
        interval: int,
        ledger_seconds: float = 5.0,
        threads: int | None = None,
        max_blocks: int | None = None,
        searcher: Searcher = search,
        hash_rate: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.gateway = gateway
        self.client = client
        self.keypair = keypair
        self.interval = interval
        self.threads = threads or settings.threads or 1
        self.max_blocks = max_blocks
        self.searcher = searcher
        self.hash_rate = hash_rate
        self.clock = clock
        self.store = StateStore(settings.state_file)
        self.state = PoolerState()
        self.monitor = BlockMonitor(interval, clock=ChainClock(default_ledger_seconds=ledger_seconds))
        self.channels = ChannelPool(derive_channels(keypair, settings.channels))
        self.farm: FarmState | None = None
        self.phase = "starting"
        self.active: _Active | None = None
        self.finished: set[int] = set()
        self.plant_task: asyncio.Task[None] | None = None
        self.plant_attempts: dict[int, int] = {}
        self.plant_retry_at = 0.0
        self.early_asks = 0
        self.harvest_task: asyncio.Task[None] | None = None
        self.harvest_retry_at = 0.0
        self.finish_tasks: dict[int, asyncio.Task[None]] = {}
        self.heartbeat_task: asyncio.Task[None] | None = None
        self.rewards = 0
        self.compensation = 0
        self.events: deque[str] = deque(maxlen=12)
        self._stop = asyncio.Event()
        self._done = asyncio.Event()
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=40)
        self._total_hashes = 0
        self._last: dict[int, BlockState] = {}

    # ================================================================= lifecycle

    def request_stop(self) -> None:
        """Stop gracefully (finish or hand back the block in flight, then return)."""
        if not self._stop.is_set():
            self._note("stop requested")
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(self) -> None:
        """Start, loop until stopped (or ``max_blocks`` done), then shut down."""
        try:
            await self.start()
            while not self._stop.is_set() and not self._done.is_set():
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.settings.poll_interval)
        finally:
            await self.shutdown()

    async def start(self) -> None:
        """Load the state, learn who we are, warm the miner, prepare the channels, and
        follow any work transaction left in flight by a previous run."""
        self.state = self.store.load()
        pooler_id = await self._until_ok("whoami", self.client.whoami)
        if self.state.pooler_id not in (None, pooler_id):
            raise StateError(
                f"the state file {self.store.path} belongs to pooler {self.state.pooler_id}, "
                f"this API key to {pooler_id}"
            )
        self.state.pooler_id = pooler_id
        self._save()
        if self.hash_rate is None:
            self.phase = "warming up"
            self.hash_rate = await asyncio.to_thread(self._measure_rate)
        log.info(
            "pooler.started",
            pooler_id=pooler_id,
            account=self.keypair.public_key,
            channels=len(self.channels),
            threads=self.threads,
            hash_rate=round(self.hash_rate),
            interval=self.interval,
            resumed_blocks=[b.index for b in self.state.unreported()],
        )
        await self._until_ok(
            "channels",
            lambda: ensure_channels(
                self.gateway, self.keypair, self.channels.channels, xlm=self.settings.channel_xlm
            ),
        )
        for block in self.state.unreported():
            await self._settle(block, patience=0.0)
        self.heartbeat_task = asyncio.create_task(self._heartbeats())
        self.phase = "waiting"

    async def shutdown(self) -> None:
        """Finish or hand back the work in flight, then release everything. A plant-request
        in flight is waited for first: farmers it planted are worked at once, not left to
        lose their stakes."""
        self.phase = "stopping"
        plant = self.plant_task
        if plant is not None and not plant.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(plant), timeout=30)
        active = self.active
        if active is not None and active.task is not None and not active.task.done():
            active.rush.set()  # stop mining; submit the best found while the block is open
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(active.task), timeout=SETTLE_PATIENCE)
        for task in (self.plant_task, self.harvest_task, *self.finish_tasks.values()):
            if task is not None and not task.done():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(asyncio.shield(task), timeout=30)
        if self.heartbeat_task is not None:
            self.heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.heartbeat_task
        if active is not None:
            active.cancel.set()
        self._save()
        log.info("pooler.stopped", blocks_worked=self.state.blocks_worked)
        self.phase = "stopped"

    async def _until_ok(self, what: str, call: Callable[[], Any]) -> Any:
        """Retry a start-up call until it answers or a stop is requested."""
        delay = 1.0
        while True:
            try:
                return await call()
            except (BackendUnavailable, GatewayError) as exc:
                log.warning("pooler.startup_retry", step=what, error=str(exc))
                if self._stop.is_set():
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                delay = min(delay * 2, 15.0)

    def _measure_rate(self) -> float:
        t0 = time.monotonic()
        sol = self.searcher(0, bytes(32), self.keypair.public_key, seconds=0.3, threads=self.threads)
        elapsed = max(time.monotonic() - t0, 1e-3)
        return max(1_000.0, sol.hashes_done / elapsed)

    # ================================================================= the loop

    async def tick(self) -> None:
        """Read the farm once and act on it."""
        try:
            farm = await self.gateway.farm_state()
        except GatewayError as exc:
            self.monitor.failed(exc)
            if self.monitor.errors in (1, 5) or self.monitor.errors % 20 == 0:
                log.warning("pooler.farm_read_failed", errors=self.monitor.errors, error=str(exc))
            return
        events = self.monitor.observe(farm, self.clock())
        if self.monitor.last is not farm:
            return  # stale snapshot: nothing new to act on
        self.farm = farm
        for event in events:
            if isinstance(event, NewBlock):
                log.info("pooler.new_block", index=event.index, first=event.first, ledger=event.ledger)
                self._note(f"block {event.index} open")
            elif isinstance(event, RipeBlock):
                log.info("pooler.ripe_block", index=event.index, ledger=event.ledger)
                self._note(f"block {event.index} ripe")
        self._reap()
        await self._reconcile(farm)

    def chain_now(self) -> float:
        return self.monitor.clock.chain_time(self.clock())

    def _reap(self) -> None:
        """Collect finished background tasks (their failures are logged, not fatal)."""
        for name in ("plant_task", "harvest_task"):
            task = getattr(self, name)
            if task is not None and task.done():
                setattr(self, name, None)
                _log_task_failure(name, task)
        for index, task in list(self.finish_tasks.items()):
            if task.done():
                del self.finish_tasks[index]
                _log_task_failure("finish", task)
        if self.active is not None and self.active.task is not None and self.active.task.done():
            _log_task_failure("work", self.active.task)
            self.finished.add(self.active.block.index)
            self.active = None

    async def _reconcile(self, farm: FarmState) -> None:
        index = farm.index
        ripe = self.monitor.ripe
        active = self.active
        # the block being worked
        if active is not None:
            if active.block.index < index:
                active.closed.set()
                if active.submitted.is_set() and active.task is not None:
                    # its report may take a while: let it finish aside, the new block waits not
                    self.finish_tasks[active.block.index] = active.task
                    self.finished.add(active.block.index)
                    self.active = active = None
            elif active.block.index == index and (ripe or self._due(active)) and not active.salvage:
                active.rush.set()
        # blocks left unreported (a restart, or a report that failed)
        for block in self.state.unreported():
            if active is not None and active.block.index == block.index:
                continue
            if block.index in self.finish_tasks:
                continue
            resumable = block.index == index and block.index not in self.finished and not self._stop.is_set()
            if resumable and active is None:
                self._start_work(block)
                active = self.active
            elif not resumable:
                self.finish_tasks[block.index] = asyncio.create_task(self._finish(block))
        # harvests of reported blocks the farm has moved past
        self._maybe_harvest(index)
        if self.max_blocks is not None and self.state.blocks_worked >= self.max_blocks:
            self.phase = "draining"
            if (
                not self.state.unreported()
                and not self.state.harvests
                and self.harvest_task is None
                and not self.finish_tasks
            ):
                log.info("pooler.done", blocks_worked=self.state.blocks_worked)
                self._done.set()
            return
        if self._stop.is_set() or self.plant_task is not None:
            return
        if active is not None and active.block.index >= index and not active.submitted.is_set():
            if active.block.index == index:
                self.phase = "mining" if active.mining else self.phase
            return  # our works for the current block come first: a plant would close it
        target = self._plant_target(farm)
        if target is not None and self.clock() >= self.plant_retry_at:
            self.plant_task = asyncio.create_task(self._plant(target))
        elif active is None and not self.finish_tasks:
            self.phase = "waiting"

    def _due(self, active: _Active) -> bool:
        return active.plan is not None and self.chain_now() >= active.plan.final_at

    def _plant_target(self, farm: FarmState) -> int | None:
        """The block to ask plantings for now, or None."""
        if self.state.plant_requested is not None:
            if self.state.plant_requested >= farm.index:
                return self.state.plant_requested  # unanswered before a restart: ask again
            self.state.plant_requested = None
        if self.monitor.ripe:
            target = farm.index + 1
            return None if self.state.knows(target) else target
        if self.state.knows(farm.index) or farm.block_start is None:
            return None
        plan = self._plan(farm.block_start, self.chain_now(), self._expected_farmers())
        return farm.index if plan.mining_seconds >= self.settings.min_mine_seconds else None

    def _expected_farmers(self) -> int:
        if self._last:
            return max(1, len(self._last[max(self._last)].planted))
        return self.settings.max_farmers or 1

    def _plan(self, block_start: int, mine_from: float, farmers: int) -> WorkPlan:
        s = self.settings
        return plan_work(
            block_start=block_start,
            interval=self.interval,
            mine_from=mine_from,
            ledger_seconds=self.monitor.clock.ledger_seconds,
            farmers=farmers,
            channels=len(self.channels),
            margin_ledgers=s.work_margin_ledgers,
            margin_seconds=s.work_margin_seconds,
            early_fraction=s.early_work_fraction,
        )

    # ================================================================ planting

    async def _plant(self, target: int) -> None:
        self.phase = "planting"
        self.state.plant_requested = target
        self._save()
        asked_at = self.chain_now()
        log.info("pooler.plant_request", block_index=target)
        try:
            answer = await self.client.plant_request(target, max_farmers=self.settings.max_farmers)
        except BackendUnavailable as exc:
            log.warning("pooler.plant_request_failed", block_index=target, error=str(exc))
            self.plant_retry_at = self.clock() + self.settings.poll_interval
            return
        except BackendRejected as exc:
            log.warning(
                "pooler.plant_request_rejected", block_index=target, status=exc.status, error=str(exc)
            )
            self.state.plant_requested = None
            self._skip_or_retry(target, retry=exc.status in (409, 425))
            self._save()
            return
        await self._planted(target, answer, asked_at)

    def _skip_or_retry(self, target: int, *, retry: bool) -> None:
        attempts = self.plant_attempts.get(target, 0) + 1
        self.plant_attempts[target] = attempts
        if retry and attempts < PLANT_ATTEMPTS:
            self.plant_retry_at = self.clock() + 2 * self.settings.poll_interval
        else:
            self.state.complete(target)  # nobody to mine for in this block

    async def _planted(self, target: int, answer: PlantAnswer, asked_at: float) -> None:
        for failed in answer.failed:
            log.info(
                "pooler.plant_failed",
                farmer_id=failed.farmer_id,
                error=failed.error,
                attributed_to=failed.attributed_to,
            )
        groups = answer.by_block()
        self.state.plant_requested = None
        if not groups:
            errors = {f.error for f in answer.failed}
            retry = "future_block" in errors or any(
                f.attributed_to in ("chain", "backend") for f in answer.failed
            )
            log.info(
                "pooler.nothing_planted", block_index=target, failed=len(answer.failed), errors=sorted(errors)
            )
            self._note(f"block {target}: nobody planted")
            if "future_block" in errors:  # asked too early (a clock or RPC lag): ask again later
                self.early_asks += 1
                delay = min(self.settings.poll_interval * 2**self.early_asks, self.interval / 4)
                self.plant_retry_at = self.clock() + delay
            else:
                self._skip_or_retry(target, retry=retry)
            self._save()
            return
        self.early_asks = 0
        index = max(groups)
        for stale in sorted(groups):
            if stale != index:
                log.warning(
                    "pooler.planted_in_closed_block", block_index=stale, farmers=len(groups[stale])
                )
        planted = groups[index]
        if self.settings.max_farmers is not None:
            planted = planted[: self.settings.max_farmers]
        block = self.state.blocks.get(index)
        if block is None:
            block = BlockState(index=index, entropy=planted[0].entropy)
            self.state.blocks[index] = block
        for p in planted:
            block.planted.setdefault(
                p.farmer_id, PlantedFarmer(p.farmer_id, p.custodial_wallet, p.stake_amount, p.plant_tx_hash)
            )
        if target < index:
            self.state.complete(target)  # the plant landed in a later block than asked
        block.block_start = await self._block_start(index, asked_at)
        self._save()
        log.info(
            "pooler.planted",
            block_index=index,
            farmers=len(block.planted),
            failed=len(answer.failed),
            block_start=block.block_start,
        )
        self._note(f"block {index}: {len(block.planted)} planted, {len(answer.failed)} failed")
        if self.active is None and index not in self.finished:
            started = self._start_work(block)
            if self._stop.is_set():  # planted while stopping: their stakes are at risk, so a
                started.rush.set()  # short search and the works at once, rather than nothing

    async def _block_start(self, index: int, fallback: float) -> int:
        """``FarmBlock.timestamp`` of block ``index`` (read again: the plant may have
        opened it); failing that, a cautious estimate (before the plant landed)."""
        for _ in range(5):
            try:
                farm = await self.gateway.farm_state()
            except GatewayError:
                await asyncio.sleep(1.0)
                continue
            self.monitor.observe(farm, self.clock())
            if farm.index == index and farm.block_start is not None:
                return farm.block_start
            if farm.index > index:
                break
            await asyncio.sleep(min(1.0, self.monitor.clock.ledger_seconds))
        return int(fallback)

    # ================================================================= working

    def _start_work(self, block: BlockState) -> _Active:
        active = _Active(block=block)
        self.active = active
        active.task = asyncio.create_task(self._work(active))
        return active

    async def _work(self, active: _Active) -> None:
        block = active.block
        start = block.block_start
        if start is None:
            start = int(self.chain_now())
        now = self.chain_now()
        plan = self._plan(start, now, len(block.planted))
        salvage = max(1.0, 2 * self.monitor.clock.ledger_seconds)
        if plan.mining_seconds < salvage:
            # Too late for the plan, yet the block takes works until someone plants: mine
            # briefly and submit at once (a work that loses the race costs only its fee).
            plan = dataclasses.replace(plan, mine_from=now, early_at=None, final_at=now + salvage)
            active.salvage = True
        active.plan = plan
        log.info(
            "pooler.mining",
            block_index=block.index,
            farmers=len(block.planted),
            seconds=round(plan.mining_seconds, 1),
            early=plan.early_at is not None,
            late=active.salvage,
        )
        loop = asyncio.get_running_loop()
        mining = asyncio.ensure_future(asyncio.to_thread(self._mine, active, loop))
        try:
            if plan.early_at is not None:
                await self._wait_until(active, plan.early_at, mining=None)
                if not active.closed.is_set() and not active.rush.is_set():
                    self.phase = "submitting"
                    await self._submit_all(active, early=True)
                    self.phase = "mining"
            await self._wait_until(active, plan.final_at, mining=mining)
            active.cancel.set()
            with contextlib.suppress(Exception):
                await mining
            if not active.closed.is_set():
                self.phase = "submitting"
                await self._fill_missing(active)
                await self._submit_all(active, early=False)
            active.submitted.set()
            self._save()
            await self._settle(block, patience=SETTLE_PATIENCE)
            await self._report(block)
        finally:
            active.cancel.set()
            active.submitted.set()
            active.mining = False
            if not mining.done():
                with contextlib.suppress(Exception):
                    await mining

    async def _wait_until(
        self, active: _Active, chain_time: float, *, mining: asyncio.Future[Any] | None
    ) -> None:
        """Sleep until the ledger time reaches ``chain_time`` (re-estimated as the clock
        estimate improves), or the block is rushed or closed, or mining ends."""
        while not (active.rush.is_set() or active.closed.is_set()):
            if mining is not None and mining.done():
                return
            left = self.monitor.clock.local_time(chain_time) - self.clock()
            if left <= 0:
                return
            waits: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(active.rush.wait()),
                asyncio.ensure_future(active.closed.wait()),
            ]
            if mining is not None:
                waits.append(mining)
            _, pending = await asyncio.wait(
                waits, timeout=min(left, 0.5), return_when=asyncio.FIRST_COMPLETED
            )
            for w in pending:
                if w is not mining:
                    w.cancel()

    def _mine(self, active: _Active, loop: asyncio.AbstractEventLoop) -> None:
        """The mining thread: every planted farmer until the plan's final time."""
        block = active.block
        plan = active.plan
        assert plan is not None
        deadline = self.monitor.clock.local_time(plan.final_at)
        policy: SplitPolicy = FairSplit()
        farm = self.farm
        if (
            self.settings.split == "reward"
            and farm is not None
            and farm.block is not None
            and farm.index == block.index
        ):
            policy = RewardSplit(default_range=(farm.block.min_zeros, farm.block.max_zeros))
        jobs = []
        for farmer_id, planted in block.planted.items():
            start = block.next_nonce.get(farmer_id, 0)
            active.start_nonce[farmer_id] = start
            jobs.append(
                MiningJob(
                    farmer=planted.wallet,
                    index=block.index,
                    entropy=block.entropy_bytes,
                    deadline=deadline,
                    start_nonce=start,
                    key=farmer_id,
                )
            )
        if not jobs or self.clock() >= deadline:
            return
        active.mining = True

        def on_event(event: ProgressEvent) -> None:
            name = event.job.name
            active.hashes[name] = event.hashes_done
            if event.kind == "improved" and event.best is not None:
                loop.call_soon_threadsafe(self._improved, active, name, event.best)
            elif event.kind == "slice":
                loop.call_soon_threadsafe(self._sample_rate)

        try:
            mine_jobs(
                jobs,
                hash_rate=self.hash_rate or 1e6,
                policy=policy,
                searcher=self.searcher,
                threads=self.threads,
                on_event=on_event,
                cancel=active.cancel,
                clock=self.clock,
            )
        finally:
            active.mining = False

    async def _fill_missing(self, active: _Active) -> None:
        """Every planted farmer gets a work: one the miner never reached (mining stopped
        early: a stop, a late plant) gets a short search now, so its stake is not lost."""
        block = active.block
        for farmer_id, planted in block.planted.items():
            if farmer_id in block.best:
                continue
            start = block.next_nonce.get(farmer_id, 0)
            try:
                sol = await asyncio.to_thread(
                    self.searcher,
                    block.index,
                    block.entropy_bytes,
                    planted.wallet,
                    start_nonce=start,
                    max_hashes=4096,
                    threads=1,
                )
            except Exception as exc:  # an external miner that fails: the others still go
                log.warning("pooler.quick_search_failed", farmer_id=farmer_id, error=str(exc))
                continue
            self._improved(active, farmer_id, sol)
            block.next_nonce[farmer_id] = start + sol.hashes_done

    def _improved(self, active: _Active, farmer_id: str, sol: Solution) -> None:
        block = active.block
        best = block.best.get(farmer_id)
        if best is None or sol.zeros > best.zeros:
            if best is not None:
                block.runner_up[farmer_id] = best  # fewer zeros: what an early work sends
            block.best[farmer_id] = BestFound(sol.nonce, sol.hash.hex(), sol.zeros)
            self._save()

    def _sample_rate(self) -> None:
        active = self.active
        if active is None:
            return
        self._rate_samples.append((time.monotonic(), sum(active.hashes.values())))

    def _remember_nonces(self, active: _Active) -> None:
        for farmer_id, start in active.start_nonce.items():
            active.block.next_nonce[farmer_id] = start + active.hashes.get(farmer_id, 0)

    # ============================================================== submitting

    async def _submit_all(self, active: _Active, *, early: bool) -> None:
        """Submit each farmer's work that beats what is applied or in flight. An early
        work sends the *runner-up* (the best before the current one, with fewer zeros):
        the final work then always has strictly more zeros, so it always replaces the
        early one and the farmer keeps the final, larger gap; the early work is insurance
        against a final one that cannot land."""
        block = active.block
        self._remember_nonces(active)
        chosen = block.runner_up if early else block.best
        todo = [
            (farmer_id, best)
            for farmer_id, best in chosen.items()
            if farmer_id in block.planted and best.zeros > block.committed_zeros(farmer_id)
        ]
        if not todo:
            return
        log.info("pooler.submitting", block_index=block.index, works=len(todo), early=early)
        await asyncio.gather(*(self._submit(active, f, best, early=early) for f, best in todo))
        self._save()

    async def _submit(self, active: _Active, farmer_id: str, best: BestFound, *, early: bool) -> None:
        block = active.block
        planted = block.planted[farmer_id]
        async with self.channels.lend() as channel:
            attempt = 0
            while True:
                attempt += 1
                if active.closed.is_set() or (self.monitor.index or 0) > block.index:
                    log.info("pooler.work_too_late", block_index=block.index, farmer_id=farmer_id)
                    return
                if best.zeros <= block.committed_zeros(farmer_id):
                    return  # something at least as good landed or is in flight

                async def record(tx_hash: str, envelope_xdr: str, *, _channel: Keypair = channel) -> None:
                    block.submissions[tx_hash] = Submission(
                        tx_hash=tx_hash,
                        farmer_id=farmer_id,
                        farmer=planted.wallet,
                        nonce=best.nonce,
                        hash=best.hash,
                        zeros=best.zeros,
                        source=_channel.public_key,
                        envelope_xdr=envelope_xdr,
                        early=early,
                    )
                    self._save()

                try:
                    outcome = await self.gateway.work(
                        channel,
                        planted.wallet,
                        best.nonce,
                        bytes.fromhex(best.hash),
                        index=block.index,
                        on_signed=record,
                    )
                except RaceLost as exc:
                    self._mark(block, exc, "missed")
                    log.warning("pooler.work_missed", block_index=block.index, farmer_id=farmer_id)
                    active.closed.set()
                    return
                except FarmError as exc:
                    if exc.code == FarmErrorCode.GAP_COUNT_TOO_LOW and attempt < 5:
                        self._mark(block, exc, "failed")
                        await asyncio.sleep(self.monitor.clock.ledger_seconds)
                        continue
                    status = "missed" if exc.code == FarmErrorCode.PAIL_MISSING else "failed"
                    self._mark(block, exc, status)
                    log.warning(
                        "pooler.work_failed", block_index=block.index, farmer_id=farmer_id, error=exc.name
                    )
                    return
                except TxInDoubt as exc:
                    log.warning("pooler.work_in_doubt", block_index=block.index, tx_hash=exc.tx_hash)
                    return  # followed by hash later; never signed again meanwhile
                except TxExpired as exc:
                    self._mark(block, exc, "expired")
                except (TxFailed, TxRejected) as exc:
                    self._mark(block, exc, "failed")
                    log.warning("pooler.work_error", block_index=block.index, error=str(exc))
                    if attempt >= 3:
                        return
                except (GatewayError, KalePoolError) as exc:
                    self._mark(block, exc, "failed")
                    log.warning("pooler.work_error", block_index=block.index, error=str(exc))
                else:
                    self._applied(block, outcome)
                    return
                await asyncio.sleep(min(2.0, self.monitor.clock.ledger_seconds))

    def _mark(self, block: BlockState, exc: BaseException, status: str) -> None:
        tx = attempt_of(exc)
        if tx is None or tx.tx_hash not in block.submissions:
            return
        sub = block.submissions[tx.tx_hash]
        sub.status = status  # type: ignore[assignment]
        sub.error = getattr(exc, "code", type(exc).__name__)
        if isinstance(exc, FarmError):
            sub.error = exc.name
        sub.ledger = tx.ledger
        sub.fee = tx.fee_charged
        self._save()

    def _applied(self, block: BlockState, outcome: WorkOutcome) -> None:
        sub = block.submissions.get(outcome.tx_hash)
        if sub is None:  # pragma: no cover - on_signed always records first
            return
        sub.status = "applied"
        sub.gap = outcome.gap
        sub.ledger = outcome.ledger
        sub.fee = outcome.fee_charged
        sub.zeros = outcome.zeros
        self._save()
        log.info(
            "pooler.work_applied",
            block_index=block.index,
            farmer_id=sub.farmer_id,
            zeros=sub.zeros,
            gap=sub.gap,
            early=sub.early,
            tx_hash=sub.tx_hash,
        )

    async def _settle(self, block: BlockState, *, patience: float) -> None:
        """Learn the fate of every work still ``signed`` (sent before a crash, or in
        doubt), following it by hash; give up after ``patience`` seconds."""
        deadline = self.clock() + patience
        while True:
            for sub in block.in_doubt():
                try:
                    outcome = await self.gateway.resume(sub.tx_hash, sub.envelope_xdr)
                except TxExpired:
                    sub.status = "expired"
                except RaceLost as exc:
                    sub.status, sub.error = "missed", exc.code
                except FarmError as exc:
                    sub.status, sub.error = "failed", exc.name
                except (TxFailed, TxRejected) as exc:
                    sub.status, sub.error = "failed", exc.code
                except GatewayError as exc:
                    log.info("pooler.settle_pending", tx_hash=sub.tx_hash, error=str(exc))
                    continue
                else:
                    if isinstance(outcome, WorkOutcome):
                        self._applied(block, outcome)
                    else:  # pragma: no cover - a work envelope resumes to a WorkOutcome
                        sub.status = "failed"
                self._save()
            if not block.in_doubt() or self.clock() >= deadline:
                return
            await asyncio.sleep(2.0)

    # =============================================================== reporting

    async def _finish(self, block: BlockState) -> None:
        """Report a block worked earlier (after a restart, or a failed report)."""
        self.phase = "reporting"
        await self._settle(block, patience=SETTLE_PATIENCE)
        await self._report(block)

    async def _report(self, block: BlockState) -> None:
        self.phase = "reporting"
        results = []
        for farmer_id in block.planted:
            sub = block.applied(farmer_id)
            if sub is not None and sub.gap is not None:
                results.append(WorkReport(farmer_id, sub.nonce, sub.hash, sub.zeros, sub.gap, sub.tx_hash))
        try:
            answer = await self.client.work_complete(block.index, results)
        except BackendUnavailable as exc:
            log.warning("pooler.report_failed", block_index=block.index, error=str(exc))
            return  # stays unreported: retried by the loop
        except BackendRejected as exc:
            log.error("pooler.report_rejected", block_index=block.index, status=exc.status, error=str(exc))
            block.report = {"error": exc.error_code, "status": exc.status}
        else:
            block.report = {
                "work_recorded": answer.work_recorded,
                "rejected": len(answer.rejected),
                "compensation": answer.compensation_amount,
            }
            self.compensation += answer.compensation_amount
            for rejected in answer.rejected:
                log.warning(
                    "pooler.work_rejected",
                    block_index=block.index,
                    farmer_id=rejected.farmer_id,
                    reason=rejected.reason,
                )
        block.reported = True
        worked = block.worked_farmers()
        if worked:
            self.state.harvests[block.index] = HarvestPending(farmer_ids=worked)
        self.state.blocks_worked += 1
        self._last[block.index] = block
        while len(self._last) > 4:
            self._last.pop(min(self._last))
        self.state.complete(block.index)
        self._save()
        zeros = [s.zeros for f in worked if (s := block.applied(f)) is not None]
        log.info(
            "pooler.reported",
            block_index=block.index,
            planted=len(block.planted),
            worked=len(worked),
            zeros_min=min(zeros, default=None),
            zeros_max=max(zeros, default=None),
            compensation=(block.report or {}).get("compensation"),
            blocks_worked=self.state.blocks_worked,
        )
        self._note(f"block {block.index}: {len(worked)}/{len(block.planted)} worked, reported")
        with contextlib.suppress(GatewayError, KalePoolError):
            await ensure_channels(
                self.gateway, self.keypair, self.channels.channels, xlm=self.settings.channel_xlm
            )

    # ================================================================ harvests

    def _maybe_harvest(self, farm_index: int) -> None:
        if self.harvest_task is not None or self.clock() < self.harvest_retry_at:
            return
        ready = {i: h for i, h in self.state.harvests.items() if i < farm_index}
        if ready:
            self.harvest_task = asyncio.create_task(self._harvest(ready))

    async def _harvest(self, ready: dict[int, HarvestPending]) -> None:
        blocks = {i: h.farmer_ids for i, h in ready.items()}
        log.info("pooler.harvest_request", blocks=sorted(blocks))
        try:
            answer = await self.client.harvest_request(blocks)
        except BackendError as exc:
            log.warning("pooler.harvest_request_failed", error=str(exc))
            self._harvest_attempted(ready, set())
            self.harvest_retry_at = self.clock() + 3 * self.settings.poll_interval
            return
        done = {(h.farmer_id, h.block_index) for h in answer.harvested}
        self.rewards += answer.total_rewards
        for failed in answer.failed:
            log.info(
                "pooler.harvest_failed",
                farmer_id=failed.farmer_id,
                block_index=failed.block_index,
                error=failed.error,
            )
        self._harvest_attempted(ready, done)
        if answer.failed:
            self.harvest_retry_at = self.clock() + 3 * self.settings.poll_interval
        log.info(
            "pooler.harvested",
            harvested=len(answer.harvested),
            failed=len(answer.failed),
            total_rewards=answer.total_rewards,
        )
        self._note(f"harvested {len(answer.harvested)}, reward {answer.total_rewards}")

    def _harvest_attempted(self, ready: dict[int, HarvestPending], done: set[tuple[str, int]]) -> None:
        for index in ready:
            current = self.state.harvests.get(index)
            if current is None:
                continue
            current.farmer_ids = [f for f in current.farmer_ids if (f, index) not in done]
            current.attempts += 1
            if not current.farmer_ids or current.attempts >= self.settings.harvest_attempts:
                if current.farmer_ids:
                    log.warning(
                        "pooler.harvest_left_to_backend", block_index=index, farmers=len(current.farmer_ids)
                    )
                del self.state.harvests[index]
        self._save()

    # =============================================================== heartbeats

    async def _heartbeats(self) -> None:
        from kalepool import __version__

        while True:
            active = self.active
            try:
                await self.client.heartbeat(
                    status=self.phase[:64],
                    hash_rate=round(self.current_rate(), 1),
                    current_block=active.block.index if active else None,
                    farmers_mining=len(active.block.planted) if active else 0,
                    version=__version__,
                )
            except BackendError:
                pass  # the backend is away: the next heartbeat says the same
            except Exception as exc:  # never let the loop die unseen (a closed client, say)
                log.warning("pooler.heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.heartbeat_interval)

    # ================================================================== status

    def current_rate(self) -> float:
        samples = self._rate_samples
        active = self.active
        if active is None or not active.mining or len(samples) < 2:
            return 0.0 if active is None or not active.mining else float(self.hash_rate or 0.0)
        (t0, h0), (t1, h1) = samples[0], samples[-1]
        if t1 - t0 > 10:
            while len(samples) > 2 and t1 - samples[0][0] > 10:
                samples.popleft()
            t0, h0 = samples[0]
        return (h1 - h0) / (t1 - t0) if t1 > t0 and h1 >= h0 else float(self.hash_rate or 0.0)

    def status(self) -> PoolerStatus:
        active = self.active
        block = active.block if active is not None else None
        if block is None and self._last:
            block = self._last[max(self._last)]
        farmers = []
        counts: dict[str, int] = {}
        if block is not None:
            for sub in block.submissions.values():
                counts[sub.status] = counts.get(sub.status, 0) + 1
            for farmer_id, planted in block.planted.items():
                best = block.best.get(farmer_id)
                applied = block.applied(farmer_id)
                in_flight = any(
                    s.farmer_id == farmer_id and s.status == "signed" for s in block.submissions.values()
                )
                state = "sending" if in_flight else "worked" if applied else "mining" if active else "-"
                farmers.append(
                    FarmerView(
                        farmer_id=farmer_id,
                        wallet=planted.wallet,
                        stake=planted.stake,
                        best_zeros=best.zeros if best else -1,
                        hashes=active.hashes.get(farmer_id, 0) if active and active.block is block else 0,
                        submitted_zeros=applied.zeros if applied else -1,
                        gap=applied.gap if applied else None,
                        status=state,
                    )
                )
        farm = self.farm
        plan = active.plan if active is not None else None
        submitted = active is None or active.submitted.is_set()
        now = self.chain_now()
        rollover = self.monitor.rollover_time
        return PoolerStatus(
            phase=self.phase,
            pooler_id=self.state.pooler_id,
            account=self.keypair.public_key,
            farm_index=farm.index if farm else None,
            block_index=block.index if block else None,
            ripe=self.monitor.ripe,
            time_left=plan.time_left(now) if plan is not None and not submitted else None,
            until_rollover=(rollover - now) if rollover is not None else None,
            hash_rate=self.current_rate(),
            threads=self.threads,
            farmers=farmers,
            submissions=counts,
            blocks_worked=self.state.blocks_worked,
            rewards=self.rewards,
            compensation=self.compensation,
            rpc_errors=self.monitor.errors,
            events=list(self.events),
        )

    # ================================================================= helpers

    def _save(self) -> None:
        if self.active is not None:
            self._remember_nonces(self.active)
        self.store.save(self.state)

    def _note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")


def _log_task_failure(name: str, task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("pooler.task_failed", task=name, error=f"{type(exc).__name__}: {exc}")
