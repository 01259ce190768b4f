"""Fee policy: the inclusion fee from ``getFeeStats``, at a percentile, capped.

A Soroban transaction pays ``inclusion fee + resource fee``; the resource fee comes
from simulation and is not negotiable, the inclusion fee is the bid for a place in
the ledger. :class:`FeePolicy` picks it from the network's recent distribution
(``sorobanInclusionFee`` for contract calls, ``inclusionFee`` per operation for classic
transactions) and :class:`FeeOracle` caches the distribution for a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from kalepool.stellar.errors import GatewayError

__all__ = ["BASE_FEE", "PERCENTILES", "FeeDistribution", "FeeOracle", "FeePolicy", "FeeStats"]

#: The network's minimum fee per operation, in stroops.
BASE_FEE = 100
#: The percentiles getFeeStats reports.
PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 99)


class _Distribution(Protocol):
    """The shape of ``stellar_sdk.soroban_rpc.FeeDistribution`` we read."""

    max: int
    min: int
    mode: int
    p10: int
    p20: int
    p30: int
    p40: int
    p50: int
    p60: int
    p70: int
    p80: int
    p90: int
    p95: int
    p99: int
    transaction_count: int


@dataclass(frozen=True, slots=True)
class FeeDistribution:
    """Recent inclusion fees per operation, in stroops, by percentile."""

    percentiles: Mapping[int, int]
    max: int
    min: int
    mode: int
    transaction_count: int

    @classmethod
    def from_rpc(cls, dist: _Distribution) -> FeeDistribution:
        return cls(
            percentiles={p: int(getattr(dist, f"p{p}")) for p in PERCENTILES},
            max=int(dist.max),
            min=int(dist.min),
            mode=int(dist.mode),
            transaction_count=int(dist.transaction_count),
        )

    def at(self, percentile: int) -> int:
        """The fee at ``percentile``, rounded up to the next reported percentile."""
        for p in PERCENTILES:
            if p >= percentile:
                return self.percentiles[p]
        return self.max


@dataclass(frozen=True, slots=True)
class FeeStats:
    soroban: FeeDistribution
    classic: FeeDistribution
    latest_ledger: int


@dataclass(frozen=True, slots=True)
class FeePolicy:
    """Bid the ``percentile`` of recent inclusion fees, never more than ``max_inclusion_fee``
    per operation and never less than the network minimum."""

    percentile: int = 90
    max_inclusion_fee: int = 10_000

    def __post_init__(self) -> None:
        if not 1 <= self.percentile <= 100:
            raise ValueError(f"percentile: must be in [1, 100], got {self.percentile}")
        if self.max_inclusion_fee < BASE_FEE:
            raise ValueError(f"max_inclusion_fee: must be at least {BASE_FEE} stroops")

    def inclusion_fee(self, dist: FeeDistribution | None) -> int:
        """The per-operation bid for a distribution (the minimum when there is none)."""
        if dist is None:
            return BASE_FEE
        return max(BASE_FEE, min(self.max_inclusion_fee, dist.at(self.percentile)))

    def soroban_fee(self, stats: FeeStats | None) -> int:
        return self.inclusion_fee(stats.soroban if stats else None)

    def classic_fee(self, stats: FeeStats | None) -> int:
        return self.inclusion_fee(stats.classic if stats else None)


class FeeOracle:
    """Fee stats fetched at most every ``ttl`` seconds; concurrent callers share one fetch.

    ``fetch`` returns the stats, or raises; a failed fetch falls back to the last known
    stats (or None: the minimum fee) so a flaky ``getFeeStats`` never blocks an action.
    """

    def __init__(
        self,
        fetch: Callable[[], Awaitable[FeeStats]],
        policy: FeePolicy,
        *,
        ttl: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.policy = policy
        self._ttl = ttl
        self._clock = clock
        self._stats: FeeStats | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def stats(self) -> FeeStats | None:
        if self._clock() - self._fetched_at < self._ttl:
            return self._stats
        async with self._lock:
            if self._clock() - self._fetched_at < self._ttl:
                return self._stats
            try:
                self._stats = await self._fetch()
            except GatewayError:  # keep the last known stats
                if self._stats is None:
                    self._fetched_at = self._clock() - self._ttl / 2  # retry sooner
                    return None
            self._fetched_at = self._clock()
            return self._stats

    async def soroban_fee(self) -> int:
        return self.policy.soroban_fee(await self.stats())

    async def classic_fee(self) -> int:
        return self.policy.classic_fee(await self.stats())
