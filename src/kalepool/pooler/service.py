"""The pooler service: monitor → plant-request → mine → work → work-complete → harvest.

:class:`PoolerService` reads the farm every ``poll_interval`` seconds, asks the pure
core (:func:`kalepool.pooler.decide.decide`) what to do given what it sees and what its
state holds, and runs the answer:

1. **Block monitor** (:mod:`~kalepool.pooler.monitor`): a new block, or a ripe one.
2. **Plant coordinator**: one ``plant-request`` per block (and again for farmers whose
   plant failed for the chain's or the backend's reason, while the block can be worked).
   The pooler mines only for the farmers the backend says it planted, in the block the
   backend reports.
3. **Work manager**: :class:`~kalepool.pooler.mining.BlockMiner` mines every planted
   farmer until the time :mod:`~kalepool.pooler.timing` chose; an optional early work at
   a fraction of the window, and a final one with strictly more zeros, sent from the
   pooler's channels (:mod:`~kalepool.pooler.channels`, sized from the farmer count) by
   :class:`~kalepool.pooler.submitter.WorkSubmitter`, each recorded before it is sent.
   Then ``work-complete`` with the outcomes read from the transactions.
4. **Harvest controller**: once the farm has moved past a reported block, a
   ``harvest-request`` for its worked pails (the backend's auto-harvester covers any
   the pooler misses).

Everything the pooler must not forget lives in its state journal
(:mod:`~kalepool.pooler.state`); a restart resumes the current block from it (following
in-flight transactions by hash, never signing a work twice). :meth:`request_stop`
(SIGINT/SIGTERM) ends the loop gracefully: mining stops, the best works found are
submitted if the block is still open, in-flight transactions are followed, and the
block is reported. With ``max_blocks``, the service stops once that many blocks are
reported and harvested, or after waiting ``drain_timeout`` for the rollover their
harvests need (the backend's auto-harvester then covers them).

All state changes happen on the event loop; the mining thread only posts results to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from stellar_sdk import Keypair

from kalepool.errors import KalePoolError
from kalepool.miner import search
from kalepool.miner.searcher import Searcher, Solution
from kalepool.pooler.channels import ChannelPool, channels_for, derive_channels, ensure_channels
from kalepool.pooler.client import BackendCallError, BackendClient, BackendUnavailable, NetworkRefused
from kalepool.pooler.decide import (
    Action,
    ActiveBlock,
    AskPlant,
    CloseBlock,
    Done,
    Finish,
    Harvest,
    Phase,
    PlanParams,
    Rush,
    Situation,
    StartWork,
    decide,
    expected_farmers,
)
from kalepool.pooler.mining import BlockMiner, HashRate
from kalepool.pooler.monitor import BlockMonitor, ChainClock, NewBlock, RipeBlock
from kalepool.pooler.planting import PlantRequests
from kalepool.pooler.reports import Reports
from kalepool.pooler.state import BlockState, HarvestPending, StateError, StateJournal
from kalepool.pooler.status import PoolerStatus, status_of
from kalepool.pooler.submitter import WorkSubmitter
from kalepool.pooler.timing import WorkPlan, plan_work
from kalepool.settings import PoolerSettings
from kalepool.stellar import FarmGateway, FarmState, GatewayError
from kalepool.wire import pooler as w

__all__ = ["PoolerService"]

log = structlog.get_logger("kalepool.pooler")

#: Seconds between tries to learn the fate of an in-doubt work before reporting without it.
SETTLE_PATIENCE = 90.0
#: The final works are planned to take this much longer than the measured rate says.
SUBMIT_SAFETY = 1.3
#: Seconds between "waiting for the rollover" log lines while draining.
DRAIN_LOG_EVERY = 30.0


@dataclass
class _Active:
    """The block being worked: its plan, miner and control events."""

    block: BlockState
    plan: WorkPlan | None = None
    rush: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    submitted: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Event = field(default_factory=asyncio.Event)  # farmers planted late
    miner: BlockMiner | None = None
    task: asyncio.Task[None] | None = None
    salvage: bool = False  # planted (or resumed) too late for the plan: a short try anyway
    rushed: bool = False


class PoolerService:
    """One pooler: its account, its backend, its miner and its state journal.

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
        self.journal = StateJournal(settings.state_file)
        self.monitor = BlockMonitor(interval, clock=ChainClock(default_ledger_seconds=ledger_seconds))
        self.channels = ChannelPool(derive_channels(keypair, settings.channels))
        self.submitter = WorkSubmitter(
            gateway,
            self.channels,
            self.journal,
            farm_index=lambda: self.monitor.index,
            ledger_seconds=lambda: self.monitor.clock.ledger_seconds,
            clock=clock,
        )
        self.reports = Reports(client, self.journal, settings, clock=clock)
        self.farm: FarmState | None = None
        self.phase = Phase.STARTING
        self.active: _Active | None = None
        self.finished: set[int] = set()
        self.finish_tasks: dict[int, asyncio.Task[None]] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}  # plant, harvest, heartbeat, channels
        self.planting = PlantRequests(
            client,
            self.journal,
            settings,
            interval=interval,
            farm_index=lambda: self.monitor.index,
            clock=clock,
        )
        self.plantable: int | None = None  # the backend's count, from heartbeats
        self.last_planted: deque[int] = deque(maxlen=4)
        self.recent: dict[int, BlockState] = {}  # the last blocks reported, as they ended
        self.submit_rate: float | None = None  # works sent and applied per second, as measured
        self.events: deque[str] = deque(maxlen=12)
        self.draining_since: float | None = None
        self._drain_logged = 0.0
        self._stop = asyncio.Event()
        #: why the service cannot go on (raised by :meth:`run` once it has shut down)
        self.fatal: KalePoolError | None = None
        self._done = asyncio.Event()
        self.rate = HashRate()

    @property
    def state(self) -> Any:
        return self.journal.state


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
        if self.fatal is not None:
            raise self.fatal

    def _refused(self, exc: NetworkRefused) -> None:
        """The backend works on another network than ours: nothing can be planted; stop."""
        log.error("pooler.network_mismatch", error=str(exc))
        self.fatal = exc
        self.request_stop()

    async def start(self) -> None:
        """Load the state, learn who we are and how many farmers to expect, warm the
        miner, prepare the channels, and follow any work left in flight by a previous run."""
        self.journal.open()
        pooler_id = await self._until_ok("whoami", self.client.whoami)
        if self.state.pooler_id not in (None, pooler_id):
            raise StateError(
                f"the state file {self.journal.path} belongs to pooler {self.state.pooler_id}, "
                f"this API key to {pooler_id}"
            )
        if self.state.pooler_id is None:
            self.journal.record("pooler", id=pooler_id)
        await self._heartbeat()
        if self.hash_rate is None:
            self.phase = Phase.WARMING_UP
            self.hash_rate = await asyncio.to_thread(self._measure_rate)
        log.info(
            "pooler.started",
            pooler_id=pooler_id,
            account=self.keypair.public_key,
            threads=self.threads,
            hash_rate=round(self.hash_rate),
            interval=self.interval,
            plantable_farmers=self.plantable,
            resumed_blocks=[b.block_index for b in self.state.unreported()],
        )
        await self._until_ok("channels", lambda: self._size_channels(self._expected()))
        for block in self.state.unreported():
            await self.submitter.settle(block, patience=0.0)
        self.tasks["heartbeat"] = asyncio.create_task(self._heartbeats())
        self.phase = Phase.WAITING

    async def shutdown(self) -> None:
        """Finish or hand back the work in flight, then release everything. A plant-request
        in flight is waited for first: farmers it planted are worked at once, not left to
        lose their stakes."""
        self.phase = Phase.STOPPING
        plant = self.tasks.get("plant")
        if plant is not None and not plant.done():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(plant), timeout=30)
        active = self.active
        if active is not None and active.task is not None and not active.task.done():
            active.rush.set()  # stop mining; submit the best found while the block is open
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(active.task), timeout=SETTLE_PATIENCE)
        for name, task in [*self.tasks.items(), *(("finish", t) for t in self.finish_tasks.values())]:
            if name == "heartbeat" or task.done():
                continue
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(task), timeout=30)
        heartbeat = self.tasks.get("heartbeat")
        if heartbeat is not None:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heartbeat
        if active is not None and active.miner is not None:
            await active.miner.stop()
            self._record_nonces(active)
        self.journal.close()
        log.info("pooler.stopped", blocks_worked=self.state.blocks_worked)
        self.phase = Phase.STOPPED

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


    async def tick(self) -> None:
        """Read the farm once and act on what :func:`decide` answers."""
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
                log.info("pooler.new_block", block_index=event.index, first=event.first, ledger=event.ledger)
                self._note(f"block {event.index} open")
            elif isinstance(event, RipeBlock):
                log.info("pooler.ripe_block", block_index=event.index, ledger=event.ledger)
                self._note(f"block {event.index} ripe")
        self._reap()
        decision = decide(self.situation(farm))
        if decision.phase is not None and (self.active is None or decision.phase is Phase.DRAINING):
            self.phase = decision.phase
        for action in decision.actions:
            self._execute(action)
        draining = self.phase is Phase.DRAINING and self.state.harvests and not self._done.is_set()
        if draining and self.clock() - self._drain_logged > DRAIN_LOG_EVERY:
            self._drain_logged = self.clock()
            log.info("pooler.waiting_for_rollover", blocks=sorted(self.state.harvests))

    def situation(self, farm: FarmState) -> Situation:
        """What :func:`decide` needs, from the farm as read and this service's state."""
        s = self.settings
        active = self.active
        enough = self.max_blocks is not None and self.state.blocks_worked >= self.max_blocks
        if enough and self.draining_since is None:
            self.draining_since = self.clock()
        return Situation(
            now=self.clock(),
            chain_now=self.chain_now(),
            farm_index=farm.index,
            block_start=farm.block_start,
            ripe=self.monitor.ripe,
            plan=self._plan_params(),
            min_mine_seconds=s.min_mine_seconds,
            expected_farmers=self._expected(),
            known=frozenset(self.state.blocks) | frozenset(self.state.completed),
            unreported=tuple(b.block_index for b in self.state.unreported()),
            finishing=frozenset(self.finish_tasks),
            finished=frozenset(self.finished),
            active=None
            if active is None
            else ActiveBlock(
                block_index=active.block.block_index,
                final_at=active.plan.final_at if active.plan is not None else None,
                submitted=active.submitted.is_set(),
                salvage=active.salvage,
                rushed=active.rushed,
            ),
            replant=self.planting.replant,
            plant_requested=self.state.plant_requested,
            plant_in_flight="plant" in self.tasks,
            plant_retry_at=self.planting.retry_at,
            harvests_pending=tuple(sorted(self.state.harvests)),
            harvest_in_flight="harvest" in self.tasks,
            harvest_retry_at=self.reports.harvest_retry_at,
            stopping=self._stop.is_set(),
            blocks_worked=self.state.blocks_worked,
            max_blocks=self.max_blocks,
            draining_since=self.draining_since,
            drain_timeout=s.drain_timeout if s.drain_timeout is not None else 2.0 * self.interval,
        )

    def _execute(self, action: Action) -> None:
        active = self.active
        if isinstance(action, CloseBlock):
            if active is not None and active.block.block_index == action.block_index:
                active.closed.set()
                if active.submitted.is_set() and active.task is not None:
                    # its report may take a while: let it finish aside, the new block waits not
                    self.finish_tasks[action.block_index] = active.task
                    self.finished.add(action.block_index)
                    self.active = None
        elif isinstance(action, Rush):
            if active is not None and active.block.block_index == action.block_index:
                active.rushed = True
                active.rush.set()
        elif isinstance(action, StartWork):
            block = self.state.blocks.get(action.block_index)
            if block is not None:
                self._start_work(block)
        elif isinstance(action, Finish):
            block = self.state.blocks.get(action.block_index)
            if block is not None:
                self.finish_tasks[action.block_index] = asyncio.create_task(self._finish(block))
        elif isinstance(action, Harvest):
            ready = {i: self.state.harvests[i] for i in action.blocks if i in self.state.harvests}
            self.tasks["harvest"] = asyncio.create_task(self._harvest(ready))
        elif isinstance(action, AskPlant):
            self.tasks["plant"] = asyncio.create_task(self._plant(action.block_index, retry=action.retry))
        elif isinstance(action, Done):
            if action.harvests_left:
                log.warning(
                    "pooler.done_without_harvests",
                    blocks=sorted(self.state.harvests),
                    note="the farm did not move on in time; the backend's auto-harvester harvests them",
                )
            log.info("pooler.done", blocks_worked=self.state.blocks_worked)
            self._done.set()

    def chain_now(self) -> float:
        return self.monitor.clock.chain_time(self.clock())

    def _reap(self) -> None:
        """Collect finished background tasks (their failures are logged, not fatal)."""
        for name, task in list(self.tasks.items()):
            if task.done() and name != "heartbeat":
                del self.tasks[name]
                _log_task_failure(name, task)
        for index, task in list(self.finish_tasks.items()):
            if task.done():
                del self.finish_tasks[index]
                _log_task_failure("finish", task)
        if self.active is not None and self.active.task is not None and self.active.task.done():
            _log_task_failure("work", self.active.task)
            self.finished.add(self.active.block.block_index)
            self.active = None

    def _expected(self) -> int:
        return expected_farmers(
            plantable=self.plantable,
            last_planted=list(self.last_planted),
            max_farmers=self.settings.max_farmers,
        )

    def _plan_params(self) -> PlanParams:
        s = self.settings
        return PlanParams(
            interval=self.interval,
            ledger_seconds=self.monitor.clock.ledger_seconds,
            channels=len(self.channels),
            margin_ledgers=s.work_margin_ledgers,
            margin_seconds=s.work_margin_seconds,
            early_fraction=s.early_work_fraction,
        )

    def _plan(self, block_start: int, mine_from: float, farmers: int) -> WorkPlan:
        p = self._plan_params()
        rate = self.submit_rate
        return plan_work(
            submit_seconds=SUBMIT_SAFETY * farmers / rate if rate else 0.0,
            block_start=block_start,
            interval=p.interval,
            mine_from=mine_from,
            ledger_seconds=p.ledger_seconds,
            farmers=farmers,
            channels=p.channels,
            margin_ledgers=p.margin_ledgers,
            margin_seconds=p.margin_seconds,
            early_fraction=p.early_fraction,
        )


    async def _size_channels(self, farmers: int) -> None:
        """Have enough channels for ``farmers`` works in ``submit_rounds`` ledgers: create
        and fund the missing ones, top up the low ones (all paid by the pooler's account)."""
        s = self.settings
        need = channels_for(farmers, rounds=s.submit_rounds, minimum=s.channels, maximum=s.max_channels)
        wanted = derive_channels(self.keypair, max(need, len(self.channels)))
        await ensure_channels(self.gateway, self.keypair, wanted, xlm=s.channel_xlm)
        if len(wanted) > len(self.channels):
            log.info("pooler.channels", channels=len(wanted), farmers=farmers)
        self.channels.add(wanted)

    def _grow_channels(self, farmers: int) -> None:
        s = self.settings
        need = channels_for(farmers, rounds=s.submit_rounds, minimum=s.channels, maximum=s.max_channels)
        if need > len(self.channels) and "channels" not in self.tasks:
            self.tasks["channels"] = asyncio.create_task(self._size_channels(farmers))


    async def _plant(self, target: int, *, retry: bool = False) -> None:
        if not retry:
            self.phase = Phase.PLANTING
        asked_at = self.chain_now()
        try:
            mine = await self.planting.ask(target, retry=retry)
        except NetworkRefused as exc:
            self._refused(exc)
            return
        for index in sorted(mine):
            await self._take_planted(index, mine[index], asked_at)
        if mine:
            self._grow_channels(max(len(b.planted) for b in self.state.blocks.values()))

    async def _take_planted(self, index: int, farmers: list[w.PlantedFarmer], asked_at: float) -> None:
        block = self.state.blocks.get(index)
        start = block.block_start if block is not None else None
        if start is None:
            start = await self._block_start(index, asked_at)
        self.journal.record("block", b=index, entropy=farmers[0].entropy, block_start=start)
        block = self.state.blocks[index]
        new = [f for f in farmers if str(f.farmer_id) not in block.planted]
        if new:
            self.journal.record("planted", b=index, farmers=[f.model_dump(mode="json") for f in new])
        log.info(
            "pooler.planted", block_index=index, farmers=len(block.planted), new=len(new), block_start=start
        )
        self._note(f"block {index}: {len(block.planted)} planted")
        active = self.active
        if active is not None and active.block.block_index == index:
            if new:
                active.joined.set()  # the work task adds them to the plan and the miner
        elif active is None and index not in self.finished:
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


    def _start_work(self, block: BlockState) -> _Active:
        active = _Active(block=block)
        self.active = active
        active.task = asyncio.create_task(self._work(active))
        return active

    def _new_plan(self, active: _Active, now: float) -> WorkPlan:
        block = active.block
        start = block.block_start if block.block_start is not None else int(now)
        return self._plan(start, now, len(block.planted))

    async def _work(self, active: _Active) -> None:
        block = active.block
        now = self.chain_now()
        plan = self._new_plan(active, now)
        salvage = max(1.0, 2 * self.monitor.clock.ledger_seconds)
        if plan.mining_seconds < salvage:
            # Too late for the plan, yet the block takes works until someone plants: mine
            # briefly and submit at once (a work that loses the race costs only its fee).
            plan = dataclasses.replace(plan, mine_from=now, early_at=None, final_at=now + salvage)
            active.salvage = True
        active.plan = plan
        self.phase = Phase.MINING
        log.info(
            "pooler.mining",
            block_index=block.block_index,
            farmers=len(block.planted),
            seconds=round(plan.mining_seconds, 1),
            early=plan.early_at is not None,
            late=active.salvage,
        )
        miner = active.miner = self._miner(active)
        miner.start(self.monitor.clock.local_time(plan.final_at))
        try:
            if plan.early_at is not None:
                await self._wait_until(active, plan.early_at)
                if not active.closed.is_set() and not active.rush.is_set():
                    self.phase = Phase.SUBMITTING
                    self._record_nonces(active)
                    await self._submit_measured(active, early=True)
                    self.phase = Phase.MINING
                    await self._replan(active)
            await self._wait_until(active, lambda: active.plan.final_at if active.plan else now)
            await miner.stop()
            self._record_nonces(active)
            if not active.closed.is_set():
                self.phase = Phase.SUBMITTING
                await self._fill_missing(active)
                await self._submit_measured(active, early=False)
            active.submitted.set()
            await self.journal.commit()
            await self.submitter.settle(block, patience=SETTLE_PATIENCE)
            await self._report(block)
        finally:
            active.submitted.set()
            await miner.stop()

    def _miner(self, active: _Active) -> BlockMiner:
        farm = self.farm
        zeros_range = None
        if farm is not None and farm.block is not None and farm.index == active.block.block_index:
            zeros_range = (farm.block.min_zeros, farm.block.max_zeros)
        return BlockMiner(
            active.block,
            searcher=self.searcher,
            threads=self.threads,
            hash_rate=self.hash_rate or 1e6,
            split=self.settings.split,
            zeros_range=zeros_range,
            clock=self.clock,
            on_best=lambda farmer_id, sol: self._improved(active, farmer_id, sol),
            on_slice=self._sample_rate,
        )

    async def _wait_until(self, active: _Active, chain_time: float | Callable[[], float]) -> None:
        """Sleep until the ledger time reaches ``chain_time`` (re-estimated as the clock
        estimate improves and as late farmers re-plan the block), or the block is rushed
        or closed. Late farmers join the plan and the miner on the way."""
        while not (active.rush.is_set() or active.closed.is_set()):
            if active.joined.is_set():
                active.joined.clear()
                await self._replan(active, joined=True)
            target = chain_time() if callable(chain_time) else chain_time
            left = self.monitor.clock.local_time(target) - self.clock()
            if left <= 0:
                return
            waits = [
                asyncio.ensure_future(active.rush.wait()),
                asyncio.ensure_future(active.closed.wait()),
                asyncio.ensure_future(active.joined.wait()),
            ]
            _, pending = await asyncio.wait(
                waits, timeout=min(left, 0.5), return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()

    async def _submit_measured(self, active: _Active, *, early: bool) -> None:
        """Send the block's works and learn how fast this machine sends them (the next
        plans reserve that much time for the final works)."""
        started = time.monotonic()
        sent = await self.submitter.submit_all(active.block, active.closed, early=early)
        elapsed = time.monotonic() - started
        if sent >= 8 and elapsed > 0 and not active.closed.is_set():
            self.submit_rate = sent / elapsed
            rate = round(sent / elapsed, 1)
            log.info("pooler.submit_rate", works=sent, seconds=round(elapsed, 1), per_second=rate)

    async def _replan(self, active: _Active, *, joined: bool = False) -> None:
        """Plan the block again: after a measured sending rate (the final works may need
        more time), or for farmers planted after mining began (``joined``: the miner takes
        them in). The final time only ever moves earlier; the miner follows it."""
        old = active.plan
        if old is None or active.miner is None or (active.salvage and not joined):
            return
        plan = self._new_plan(active, old.mine_from)
        final_at = min(plan.final_at, old.final_at)
        if not joined and final_at >= old.final_at - 0.5:
            return
        final_at = max(final_at, self.chain_now())
        active.plan = dataclasses.replace(plan, early_at=old.early_at, final_at=final_at)
        active.miner.deadline = self.monitor.clock.local_time(final_at)
        self._record_nonces(active)
        await active.miner.restart()
        log.info(
            "pooler.farmers_joined" if joined else "pooler.replanned",
            block_index=active.block.block_index,
            farmers=len(active.block.planted),
            seconds_left=round(final_at - self.chain_now(), 1),
        )

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
                    block.block_index,
                    block.entropy_bytes,
                    planted.custodial_wallet,
                    start_nonce=start,
                    max_hashes=4096,
                    threads=1,
                )
            except Exception as exc:  # an external miner that fails: the others still go
                log.warning("pooler.quick_search_failed", farmer_id=farmer_id, error=str(exc))
                continue
            self._improved(active, farmer_id, sol)
            self.journal.record("nonces", b=block.block_index, next={farmer_id: start + sol.hashes_done})

    def _improved(self, active: _Active, farmer_id: str, sol: Solution) -> None:
        block = active.block
        best = block.best.get(farmer_id)
        if block.block_index in self.state.blocks and (best is None or sol.zeros > best.zeros):
            self.journal.record(
                "best",
                b=block.block_index,
                f=farmer_id,
                nonce=sol.nonce,
                hash=sol.hash.hex(),
                zeros=sol.zeros,
            )

    def _record_nonces(self, active: _Active) -> None:
        if active.miner is None or active.block.block_index not in self.state.blocks:
            return
        moved = {f: n for f, n in active.miner.remember_nonces().items()}
        if moved:
            self.journal.record("nonces", b=active.block.block_index, next=moved)

    def _sample_rate(self) -> None:
        active = self.active
        if active is None or active.miner is None:
            return
        self.rate.sample(active.miner.total_hashes())


    async def _finish(self, block: BlockState) -> None:
        """Report a block worked earlier (after a restart, or a failed report)."""
        self.phase = Phase.REPORTING
        await self.submitter.settle(block, patience=SETTLE_PATIENCE)
        await self._report(block)

    async def _report(self, block: BlockState) -> None:
        self.phase = Phase.REPORTING
        if await self.reports.report(block) is None:
            return  # stays unreported: retried by the loop
        self.last_planted.append(len(block.planted))
        self.recent[block.block_index] = block
        while len(self.recent) > 4:
            self.recent.pop(min(self.recent))
        worked = len(block.worked_farmers())
        self._note(f"block {block.block_index}: {worked}/{len(block.planted)} worked, reported")
        with contextlib.suppress(GatewayError, KalePoolError):
            await ensure_channels(
                self.gateway, self.keypair, self.channels.channels, xlm=self.settings.channel_xlm
            )

    async def _harvest(self, ready: dict[int, HarvestPending]) -> None:
        answer = await self.reports.harvest(ready)
        if answer is not None:
            self._note(f"harvested {len(answer.harvest_results)}, reward {answer.total_rewards}")


    async def _heartbeat(self) -> None:
        from kalepool import __version__

        active = self.active
        try:
            answer = await self.client.heartbeat(
                status=str(self.phase)[:64],
                hash_rate=round(self.current_rate(), 1),
                current_block=active.block.block_index if active else None,
                farmers_mining=len(active.block.planted) if active else 0,
                version=__version__,
            )
        except BackendCallError:
            return  # the backend is away: the next heartbeat says the same
        self.plantable = answer.plantable_farmers

    async def _heartbeats(self) -> None:
        while True:
            try:
                await self._heartbeat()
            except NetworkRefused as exc:
                self._refused(exc)
                return
            except Exception as exc:  # never let the loop die unseen (a closed client, say)
                log.warning("pooler.heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(self.settings.heartbeat_interval)


    def current_rate(self) -> float:
        active = self.active
        mining = active is not None and active.miner is not None and active.miner.running
        return self.rate.current(mining=mining, fallback=float(self.hash_rate or 0.0))

    def status(self) -> PoolerStatus:
        return status_of(self)

    def _note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")


def _log_task_failure(name: str, task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("pooler.task_failed", task=name, error=f"{type(exc).__name__}: {exc}")
