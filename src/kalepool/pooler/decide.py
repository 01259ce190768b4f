"""What the pooler does next: a pure function of what it knows.

:func:`decide` takes a :class:`Situation` (the farm as last read, the chain and local
times, the state's blocks, what is in flight) and answers a :class:`Decision`: the
actions to start now and the phase to show. :func:`after_plant` decides what a
plant-request's answer leaves to do. Neither does I/O nor reads a clock, so every rule is
a row of a table test (``tests/pooler/test_decide.py``). The service
(:mod:`~kalepool.pooler.service`) builds the situation, runs the actions, and feeds back
what they did.

The rules, in order:

1. **The block being worked**: the farm moved past it → :class:`CloseBlock`; it is ripe or
   its final time has come → :class:`Rush` (stop mining, submit the best now).
2. **Blocks owed a report** (a restart, a failed report): the current or a later one is
   worked (:class:`StartWork`) when nothing else is; an older one is reported as it is
   (:class:`Finish`).
3. **Harvests** of reported blocks the farm has moved past (:class:`Harvest`), once no
   plant-request is in flight (the plants of the new block come first).
4. **Enough blocks** (``max_blocks``): no plant for one more than that, counting the
   blocks being worked; :class:`Done` once they are reported and nothing is owed, or once
   the wait for the rollover that the last harvests need is over.
5. **Replanting**: farmers of the block being worked whose plant failed for the chain's
   or the backend's reason are asked for again (:class:`AskPlant` with ``retry``) while the
   block is not ripe and leaves them ``min_mine_seconds`` of mining.
6. **Planting** a new block, never while this pooler's own works for the current block
   are still to be submitted (its plant would close that block): the next one when the
   current is ripe, the current one while enough of it is left to mine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from kalepool.pooler.timing import plan_work
from kalepool.wire import ErrorCode
from kalepool.wire import pooler as w

__all__ = [
    "Action",
    "ActiveBlock",
    "AskPlant",
    "CloseBlock",
    "Decision",
    "Done",
    "Finish",
    "Harvest",
    "Phase",
    "PlanParams",
    "PlantFollowUp",
    "Replant",
    "Rush",
    "Situation",
    "StartWork",
    "after_plant",
    "decide",
]


class Phase(StrEnum):
    """What the pooler is doing, as its status and heartbeats say."""

    STARTING = "starting"
    WARMING_UP = "warming up"
    WAITING = "waiting"
    PLANTING = "planting"
    MINING = "mining"
    SUBMITTING = "submitting"
    REPORTING = "reporting"
    DRAINING = "draining"
    STOPPING = "stopping"
    STOPPED = "stopped"


# ------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class AskPlant:
    """Send a plant-request for ``block_index`` (``retry``: for farmers that failed)."""

    block_index: int
    retry: bool = False


@dataclass(frozen=True, slots=True)
class StartWork:
    """Mine and submit works for ``block_index`` (planted, not yet worked this run)."""

    block_index: int


@dataclass(frozen=True, slots=True)
class Rush:
    """Stop mining ``block_index`` and submit the best found now."""

    block_index: int


@dataclass(frozen=True, slots=True)
class CloseBlock:
    """The farm moved past ``block_index``: no work can land in it any more."""

    block_index: int


@dataclass(frozen=True, slots=True)
class Finish:
    """Report ``block_index`` as it is (its works followed by hash first)."""

    block_index: int


@dataclass(frozen=True, slots=True)
class Harvest:
    """Ask the backend to harvest the worked pails of these reported blocks."""

    blocks: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Done:
    """``max_blocks`` are reported and harvested (or the wait for that is over): stop."""

    harvests_left: int = 0


Action = AskPlant | StartWork | Rush | CloseBlock | Finish | Harvest | Done


# ----------------------------------------------------------------- situation


@dataclass(frozen=True, slots=True)
class PlanParams:
    """What :func:`~kalepool.pooler.timing.plan_work` needs besides the block."""

    interval: int
    ledger_seconds: float
    channels: int
    margin_ledgers: int
    margin_seconds: float
    early_fraction: float | None


@dataclass(frozen=True, slots=True)
class ActiveBlock:
    """The block being worked."""

    block_index: int
    final_at: float | None  # chain time of the final works (None: not planned yet)
    submitted: bool  # its final works went out (or it gave up)
    salvage: bool  # planted too late for a plan: a short search, works at once
    rushed: bool


@dataclass(frozen=True, slots=True)
class Replant:
    """Farmers of the block being worked to ask for again, and when."""

    block_index: int
    farmers: int
    retry_at: float  # local clock


@dataclass(frozen=True, slots=True)
class Situation:
    now: float  # local clock, seconds
    chain_now: float  # ledger time, seconds
    farm_index: int
    block_start: int | None
    ripe: bool
    plan: PlanParams
    min_mine_seconds: float
    expected_farmers: int
    known: frozenset[int] = frozenset()  # blocks in the state or completed
    unreported: tuple[int, ...] = ()  # blocks whose report is owed
    finishing: frozenset[int] = frozenset()  # reports running aside
    finished: frozenset[int] = frozenset()  # worked by this run already
    active: ActiveBlock | None = None
    replant: Replant | None = None
    plant_requested: int | None = None  # sent before a restart, never answered
    plant_in_flight: bool = False
    plant_retry_at: float = 0.0
    harvests_pending: tuple[int, ...] = ()
    harvest_in_flight: bool = False
    harvest_retry_at: float = 0.0
    stopping: bool = False
    blocks_worked: int = 0
    max_blocks: int | None = None
    draining_since: float | None = None  # local clock: max_blocks reached at
    drain_timeout: float = 600.0


@dataclass(frozen=True, slots=True)
class Decision:
    actions: tuple[Action, ...] = ()
    phase: Phase | None = None  # None: keep the current one


def decide(s: Situation) -> Decision:
    """The actions to start now (see the module docstring for the rules)."""
    actions: list[Action] = []
    active = s.active
    closing: int | None = None
    # 1. the block being worked
    if active is not None:
        if active.block_index < s.farm_index:
            actions.append(CloseBlock(active.block_index))
            closing = active.block_index  # its task reports it
            active = None if active.submitted else active
        elif (
            active.block_index == s.farm_index
            and not active.salvage
            and not active.rushed
            and not active.submitted
            and (s.ripe or (active.final_at is not None and s.chain_now >= active.final_at))
        ):
            actions.append(Rush(active.block_index))
    # 2. blocks owed a report
    for index in s.unreported:
        if index in (closing, active.block_index if active else None) or index in s.finishing:
            continue
        resumable = index >= s.farm_index and index not in s.finished and not s.stopping
        if resumable and active is None and not any(isinstance(a, StartWork) for a in actions):
            actions.append(StartWork(index))
        elif not resumable:
            actions.append(Finish(index))
    working = active is not None or any(isinstance(a, StartWork) for a in actions)
    # 3. harvests (not while a plant-request runs: the backend plants first)
    ready = tuple(i for i in s.harvests_pending if i < s.farm_index)
    if ready and not s.harvest_in_flight and not s.plant_in_flight and s.now >= s.harvest_retry_at:
        actions.append(Harvest(ready))
    # 4. enough blocks (worked, or being worked: no plant for one more)
    if s.max_blocks is not None and s.blocks_worked >= s.max_blocks:
        owed = bool(s.unreported) or bool(s.finishing) or working
        if not owed and not s.harvest_in_flight and not s.plant_in_flight:
            if not s.harvests_pending:
                actions.append(Done())
            elif s.draining_since is not None and s.now - s.draining_since >= s.drain_timeout:
                actions.append(Done(harvests_left=len(s.harvests_pending)))
        return Decision(tuple(actions), Phase.DRAINING)
    if s.stopping or s.plant_in_flight:
        return Decision(tuple(actions))
    # 5. replanting the block being worked
    if active is not None and active.block_index >= s.farm_index and not active.submitted:
        replant = s.replant
        if (
            replant is not None
            and replant.block_index == active.block_index == s.farm_index
            and not s.ripe
            and s.now >= replant.retry_at
            and active.final_at is not None
            and s.chain_now + s.min_mine_seconds <= active.final_at
        ):
            actions.append(AskPlant(active.block_index, retry=True))
            return Decision(tuple(actions), Phase.PLANTING)
        return Decision(tuple(actions), Phase.MINING if active.block_index == s.farm_index else None)
    # 6. planting a new block (not one more than max_blocks, counting those being worked)
    started = s.blocks_worked + len(set(s.unreported) | ({active.block_index} if active else set()))
    if s.max_blocks is not None and started >= s.max_blocks:
        return Decision(tuple(actions))
    target = _plant_target(s)
    if target is not None and s.now >= s.plant_retry_at:
        actions.append(AskPlant(target))
        return Decision(tuple(actions), Phase.PLANTING)
    if active is None and not working and not s.finishing:
        return Decision(tuple(actions), Phase.WAITING)
    return Decision(tuple(actions))


def _plant_target(s: Situation) -> int | None:
    if s.plant_requested is not None and s.plant_requested >= s.farm_index:
        return s.plant_requested  # unanswered before a restart: ask again (idempotent)
    if s.ripe:
        target = s.farm_index + 1
        return None if target in s.known else target
    if s.farm_index in s.known or s.block_start is None:
        return None
    p = s.plan
    plan = plan_work(
        block_start=s.block_start,
        interval=p.interval,
        mine_from=s.chain_now,
        ledger_seconds=p.ledger_seconds,
        farmers=s.expected_farmers,
        channels=p.channels,
        margin_ledgers=p.margin_ledgers,
        margin_seconds=p.margin_seconds,
        early_fraction=p.early_fraction,
    )
    return s.farm_index if plan.mining_seconds >= s.min_mine_seconds else None


# ------------------------------------------------------------- plant answers


@dataclass(frozen=True, slots=True)
class PlantFollowUp:
    """What a plant-request's answer leaves to do.

    ``mine``: the farmers to mine, by the block their plant landed in; ``give_up``: the
    asked block has nobody to mine (forget it); ``retry_in``: ask again (the same block)
    after this many seconds (None: not); ``replant``: how many failed farmers that retry
    is for (0 when the whole request is retried).
    """

    mine: dict[int, list[w.PlantedFarmer]] = field(default_factory=dict)
    give_up: bool = False
    retry_in: float | None = None
    replant: int = 0
    errors: tuple[str, ...] = ()


def after_plant(
    answer: w.PlantResponse,
    *,
    asked: int,
    attempts: int,
    max_attempts: int,
    poll_interval: float,
    interval: int,
    early_asks: int = 0,
    max_farmers: int | None = None,
) -> PlantFollowUp:
    """Decide from a plant-request's answer (``attempts``: requests sent for this block,
    this one included; ``early_asks``: ``future_block`` answers in a row before it)."""
    groups = answer.by_block()
    if max_farmers is not None:
        groups = _capped(groups, max_farmers)
    errors = tuple(sorted({str(f.error) for f in answer.failed_plants}))
    retryable = [f for f in answer.failed_plants if f.retryable]
    if not groups:
        if ErrorCode.FUTURE_BLOCK in errors:  # asked too early (a clock or RPC lag)
            delay = min(poll_interval * 2 ** (early_asks + 1), interval / 4)
            return PlantFollowUp(retry_in=delay, errors=errors)
        if retryable and attempts < max_attempts:
            return PlantFollowUp(retry_in=2 * poll_interval, errors=errors)
        return PlantFollowUp(give_up=True, errors=errors)
    if retryable and attempts < max_attempts and asked in groups:
        return PlantFollowUp(mine=groups, retry_in=2 * poll_interval, replant=len(retryable), errors=errors)
    return PlantFollowUp(mine=groups, errors=errors)


def _capped(groups: dict[int, list[w.PlantedFarmer]], limit: int) -> dict[int, list[w.PlantedFarmer]]:
    return {index: farmers[:limit] for index, farmers in groups.items()}


def expected_farmers(
    *, plantable: int | None, last_planted: Sequence[int], max_farmers: int | None
) -> int:
    """Farmers to size the first plan for: what the backend says is plantable (its
    heartbeat answer), else the last block's, else ``max_farmers``, else 1; never more
    than ``max_farmers``."""
    if plantable is not None and plantable > 0:
        count = plantable
    elif last_planted:
        count = max(1, last_planted[-1])
    else:
        count = max_farmers or 1
    return min(count, max_farmers) if max_farmers is not None else count
