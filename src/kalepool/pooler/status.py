"""The live status of a pooler: what ``kalepool pooler run`` shows in the terminal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from kalepool.pooler.state import BlockState

if TYPE_CHECKING:
    from kalepool.pooler.service import PoolerService

__all__ = ["FarmerView", "PoolerStatus", "farmer_views", "status_of"]


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
    channels: int
    farmers: list[FarmerView]
    submissions: dict[str, int]
    blocks_worked: int
    rewards: int
    compensation: int
    rpc_errors: int
    events: list[str]


def farmer_views(
    block: BlockState, hashes: dict[str, int], *, mining: bool
) -> tuple[list[FarmerView], dict[str, int]]:
    """Each planted farmer of ``block`` as a row, and the block's submissions by status."""
    counts: dict[str, int] = {}
    in_flight: set[str] = set()
    for sub in block.submissions.values():
        counts[sub.status] = counts.get(sub.status, 0) + 1
        if sub.status == "signed":
            in_flight.add(sub.farmer_id)
    rows = []
    for farmer_id, planted in block.planted.items():
        best = block.best.get(farmer_id)
        applied = block.applied(farmer_id)
        state = "sending" if farmer_id in in_flight else "worked" if applied else "mining" if mining else "-"
        rows.append(
            FarmerView(
                farmer_id=farmer_id,
                wallet=planted.custodial_wallet,
                stake=planted.stake_amount,
                best_zeros=best.zeros if best else -1,
                hashes=hashes.get(farmer_id, 0),
                submitted_zeros=applied.zeros if applied else -1,
                gap=applied.gap if applied else None,
                status=state,
            )
        )
    return rows, counts


def status_of(service: PoolerService) -> PoolerStatus:
    """The service as the terminal shows it: the block being worked (or the last reported)."""
    active = service.active
    block = active.block if active is not None else None
    if block is None and service.recent:
        block = service.recent[max(service.recent)]
    miner = active.miner if active is not None else None
    farmers, counts = (
        farmer_views(block, miner.hashes if miner else {}, mining=bool(miner and miner.running))
        if block is not None
        else ([], {})
    )
    farm = service.farm
    plan = active.plan if active is not None else None
    submitted = active is None or active.submitted.is_set()
    now = service.chain_now()
    rollover = service.monitor.rollover_time
    return PoolerStatus(
        phase=str(service.phase),
        pooler_id=service.state.pooler_id,
        account=service.keypair.public_key,
        farm_index=farm.index if farm else None,
        block_index=block.block_index if block else None,
        ripe=service.monitor.ripe,
        time_left=plan.time_left(now) if plan is not None and not submitted else None,
        until_rollover=(rollover - now) if rollover is not None else None,
        hash_rate=service.current_rate(),
        threads=service.threads,
        channels=len(service.channels),
        farmers=farmers,
        submissions=counts,
        blocks_worked=service.state.blocks_worked,
        rewards=service.reports.rewards,
        compensation=service.reports.compensation,
        rpc_errors=service.monitor.errors,
        events=list(service.events),
    )
