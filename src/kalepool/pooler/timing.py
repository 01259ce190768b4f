"""When to submit work: a large gap, yet applied before the block can roll over.

The gap (ledgers between plant and work) grows with every ledger the work waits, and
the reward with it; but once a plant is applied in a ledger closing at or after
``block_start + interval`` (anyone's plant), block ``i`` is over and its work can no
longer land (``kale-contract.md`` §3.2, §9.7). So the final work is submitted at

    final_at = block_start + interval - (rounds + margin_ledgers) × ledger_seconds - margin_seconds

where ``rounds`` is how many ledgers the submissions themselves need (one transaction
per source account per ledger: ``ceil(farmers / channels)``), or longer when this
machine was measured sending works more slowly (``submit_seconds``: building, simulating
and signing a thousand works takes a while), ``ledger_seconds`` is measured on the
chain, and the margins are settings. A first, early work can go at a
fraction of the mining window, as insurance against a final work that cannot land. A
re-work must have strictly more zeros (the contract's rule) and takes the later gap, so
the early work sends the farmer's *runner-up* (the best before the current best): the
final work always beats it and the farmer keeps the full gap.

Everything here is pure arithmetic on ledger (chain) times, in seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["WorkPlan", "plan_work", "submission_rounds"]


def submission_rounds(farmers: int, channels: int) -> int:
    """Ledgers needed to apply one work per farmer from ``channels`` source accounts."""
    if farmers <= 0:
        return 0
    return math.ceil(farmers / max(1, channels))


@dataclass(frozen=True, slots=True)
class WorkPlan:
    """The times (ledger time, seconds) of one block's works.

    ``mine_from``: mining starts (the plant landed); ``early_at``: the first works go
    out (None: no early work); ``final_at``: the final works go out, mining stops;
    ``deadline``: ``block_start + interval``, the first close time at which a plant rolls
    the block over, before which every work must be applied.
    """

    block_start: int
    interval: int
    mine_from: float
    early_at: float | None
    final_at: float
    deadline: int

    @property
    def mining_seconds(self) -> float:
        return max(0.0, self.final_at - self.mine_from)

    def time_left(self, now: float) -> float:
        """Seconds of ledger time until the final works must go out."""
        return self.final_at - now

    def phase(self, now: float) -> str:
        """``mining`` → ``final`` (submit now) → ``closed`` (too late to land safely)."""
        if now >= self.deadline:
            return "closed"
        if now >= self.final_at:
            return "final"
        return "mining"


def plan_work(
    *,
    block_start: int,
    interval: int,
    mine_from: float,
    ledger_seconds: float,
    farmers: int,
    channels: int = 1,
    margin_ledgers: int = 3,
    margin_seconds: float = 2.0,
    early_fraction: float | None = 0.5,
    submit_seconds: float = 0.0,
) -> WorkPlan:
    """Plan one block's works (see the module docstring).

    ``final_at`` is never before ``mine_from`` (a late plant mines nothing and submits at
    once); the early work is dropped when it would come less than two ledgers after the
    plant (the contract rejects a gap of 0) or too close to the final one.
    """
    if interval < 1:
        raise ValueError(f"interval: must be >= 1, got {interval}")
    if ledger_seconds <= 0:
        raise ValueError(f"ledger_seconds: must be > 0, got {ledger_seconds}")
    if early_fraction is not None and not 0 < early_fraction < 1:
        raise ValueError(f"early_fraction: must lie in (0, 1), got {early_fraction}")
    deadline = block_start + interval
    sending = max(submission_rounds(farmers, channels) * ledger_seconds, submit_seconds)
    reserve = sending + margin_ledgers * ledger_seconds + margin_seconds
    start = max(float(block_start), mine_from)
    final_at = max(start, deadline - reserve)
    early_at: float | None = None
    if early_fraction is not None:
        candidate = start + early_fraction * (final_at - start)
        if candidate - start >= 2 * ledger_seconds and final_at - candidate >= sending + ledger_seconds:
            early_at = candidate
    return WorkPlan(
        block_start=block_start,
        interval=interval,
        mine_from=start,
        early_at=early_at,
        final_at=final_at,
        deadline=deadline,
    )
