"""The live status of a pooler: what ``kalepool pooler run`` shows in the terminal."""

from __future__ import annotations

from dataclasses import dataclass

from kalepool.pooler.state import BlockState

__all__ = ["FarmerView", "PoolerStatus", "farmer_views"]


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
