"""The block monitor: a state machine fed farm snapshots, reporting new and ripe blocks.

The pooler reads the farm every ``poll_interval`` seconds (:meth:`FarmGateway.farm_state`)
and feeds each snapshot to :meth:`BlockMonitor.observe`, or a failed read to
:meth:`BlockMonitor.failed`. The monitor answers what changed:

* :class:`NewBlock` when ``FarmIndex`` went up (or on the first snapshot, with
  ``first=True``): a plant has opened block ``index``;
* :class:`RipeBlock` once the ledger time has passed ``FarmBlock.timestamp + interval``:
  the next plant, by anyone, rolls the farm over to ``index + 1``.

No false positives: a snapshot older than one already seen (a lagging RPC behind a
failover, a stale cache) is ignored; so is an index going *down*, which the contract
never does. A failed read changes nothing. Each block is reported new once and ripe
once. The monitor also keeps a :class:`ChainClock`, the link between ledger time and
this machine's clock that the work timing needs.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kalepool.stellar.outcomes import FarmState

__all__ = ["BlockMonitor", "ChainClock", "MonitorEvent", "NewBlock", "RipeBlock"]


@dataclass(frozen=True, slots=True)
class NewBlock:
    """Block ``index`` is the farm's current block (it started at ``block_start``)."""

    index: int
    block_start: int | None
    entropy: bytes | None
    ledger: int
    first: bool = False


@dataclass(frozen=True, slots=True)
class RipeBlock:
    """Block ``index`` is over: the next plant rolls the farm over to ``index + 1``."""

    index: int
    block_start: int
    ledger: int


MonitorEvent = NewBlock | RipeBlock


@dataclass
class ChainClock:
    """Ledger time against this machine's clock, and the ledger duration, from snapshots.

    Each snapshot gives a pair (local time of the read, close time of the latest ledger);
    the close time lags the true ledger time by up to one ledger, so the estimate takes
    the *largest* over the last ``window`` pairs (a read right after a close is the
    tightest, and a later chain is the cautious side for deadlines). ``rate`` is how
    fast ledger time runs against this clock: 1 on a real network (snapped to 1 within
    ``snap``), faster on a devnet with sub-second ledgers (close times step at least 1 s),
    measured over everything observed once ``min_span`` local seconds have passed.
    ``ledger_seconds`` is measured between snapshots ledgers apart, falling back to
    ``default_ledger_seconds``.
    """

    default_ledger_seconds: float = 5.0
    window: int = 12
    min_span: float = 10.0
    snap: float = 0.05
    _pairs: deque[tuple[float, int]] = field(default_factory=deque)
    _ledgers: deque[tuple[int, int]] = field(default_factory=deque)
    _first: tuple[float, int] | None = None

    def observe(self, ledger: int, close_time: int, local_time: float) -> None:
        if self._first is None:
            self._first = (local_time, close_time)
        self._pairs.append((local_time, close_time))
        if not self._ledgers or ledger > self._ledgers[-1][0]:
            self._ledgers.append((ledger, close_time))
        while len(self._pairs) > self.window:
            self._pairs.popleft()
        while len(self._ledgers) > self.window:
            self._ledgers.popleft()

    @property
    def known(self) -> bool:
        return bool(self._pairs)

    @property
    def rate(self) -> float:
        """Ledger seconds per local second."""
        if self._first is None or not self._pairs:
            return 1.0
        (l0, c0), (l1, c1) = self._first, self._pairs[-1]
        if l1 - l0 < self.min_span or c1 <= c0:
            return 1.0
        rate = (c1 - c0) / (l1 - l0)
        return 1.0 if abs(rate - 1.0) <= self.snap else min(max(rate, 0.25), 8.0)

    @property
    def offset(self) -> float:
        """``chain_time(t) - t`` now (at rate 1, the largest ``close_time - read time``)."""
        if not self._pairs:
            return 0.0
        now = self._pairs[-1][0]
        return self.chain_time(now) - now

    @property
    def ledger_seconds(self) -> float:
        if len(self._ledgers) >= 2:
            (l0, t0), (l1, t1) = self._ledgers[0], self._ledgers[-1]
            if l1 > l0 and t1 > t0:
                return (t1 - t0) / (l1 - l0) / self.rate
        return self.default_ledger_seconds

    def chain_time(self, local_time: float) -> float:
        """The ledger time it (cautiously) is at ``local_time``."""
        if not self._pairs:
            return local_time
        rate = self.rate
        return max(c + rate * (local_time - t) for t, c in self._pairs)

    def local_time(self, chain_time: float) -> float:
        """The local time at which the ledger time reaches ``chain_time``."""
        if not self._pairs:
            return chain_time
        rate = self.rate
        return min(t + (chain_time - c) / rate for t, c in self._pairs)


class BlockMonitor:
    """Turns farm snapshots into :class:`NewBlock` / :class:`RipeBlock` events.

    :param interval: the block interval in seconds (the network's, or the devnet's own)
    """

    def __init__(self, interval: int, *, clock: ChainClock | None = None) -> None:
        if interval < 1:
            raise ValueError(f"interval: must be at least 1 second, got {interval}")
        self.interval = interval
        self.clock = clock or ChainClock()
        self.index: int | None = None
        self.block_start: int | None = None
        self.latest_ledger = 0
        self.close_time = 0
        self.ripe_reported: int | None = None
        self.last: FarmState | None = None
        self.errors = 0  # consecutive failed reads
        self.stale = 0  # snapshots ignored as older than one already seen

    @property
    def ripe(self) -> bool:
        """Whether the current block is ripe, as of the latest snapshot accepted."""
        return (
            self.block_start is not None
            and self.index is not None
            and self.close_time >= self.block_start + self.interval
        )

    @property
    def rollover_time(self) -> int | None:
        """The ledger time from which a plant opens the next block."""
        return None if self.block_start is None else self.block_start + self.interval

    def observe(self, state: FarmState, local_time: float) -> list[MonitorEvent]:
        """Take one snapshot read at ``local_time``; return what it tells that is new."""
        if state.latest_ledger < self.latest_ledger or (
            state.latest_ledger == self.latest_ledger and state.close_time < self.close_time
        ):
            self.stale += 1
            return []
        if self.index is not None and state.index < self.index:
            self.stale += 1  # FarmIndex never goes down: a lagging or inconsistent answer
            return []
        self.errors = 0
        self.clock.observe(state.latest_ledger, state.close_time, local_time)
        self.latest_ledger = state.latest_ledger
        self.close_time = max(self.close_time, state.close_time)
        self.last = state
        events: list[MonitorEvent] = []
        start = state.block_start
        if self.index is None or state.index > self.index:
            first = self.index is None
            self.index = state.index
            self.block_start = start
            events.append(NewBlock(state.index, start, state.entropy, state.latest_ledger, first=first))
        elif start is not None and (self.block_start is None or start > self.block_start):
            # same index, a later accumulator: the farm's own view of the block start moved
            # (an evicted-block rollover keeps it; a normal one comes with a new index)
            self.block_start = start
        if self.ripe and self.ripe_reported != self.index:
            assert self.index is not None and self.block_start is not None
            self.ripe_reported = self.index
            events.append(RipeBlock(self.index, self.block_start, state.latest_ledger))
        return events

    def failed(self, error: BaseException) -> None:
        """A read failed: nothing is concluded from it."""
        self.errors += 1
