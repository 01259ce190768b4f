"""Mining one block for every planted farmer, in a worker thread; farmers may join late.

:class:`BlockMiner` runs the miner's scheduler (:func:`kalepool.miner.mine_jobs`) over
the block's planted farmers until a deadline (this machine's clock), on a thread, and
posts each improvement to the event loop (``on_best``). Farmers planted later (a replant
in the same block) join by :meth:`BlockMiner.restart`: the current run is cancelled and a
new one starts with everyone, each search resuming where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kalepool.miner import FairSplit, MiningJob, ProgressEvent, RewardSplit, SplitPolicy, mine_jobs
from kalepool.miner.searcher import Searcher, Solution
from kalepool.pooler.state import BlockState

__all__ = ["BlockMiner", "HashRate"]


class BlockMiner:
    """The mining thread of one block.

    :param on_best: called on the event loop with ``(farmer_id, solution)`` for each improvement
    :param on_slice: called on the event loop after each slice (hash-rate samples)
    """

    def __init__(
        self,
        block: BlockState,
        *,
        searcher: Searcher,
        threads: int,
        hash_rate: float,
        split: str,
        zeros_range: tuple[int, int] | None,
        clock: Callable[[], float],
        on_best: Callable[[str, Solution], None],
        on_slice: Callable[[], None],
    ) -> None:
        self.block = block
        self.searcher = searcher
        self.threads = threads
        self.hash_rate = hash_rate
        self.split = split
        self.zeros_range = zeros_range
        self.clock = clock
        self.on_best = on_best
        self.on_slice = on_slice
        self.hashes: dict[str, int] = {}  # this run's hashes per farmer
        self.start_nonce: dict[str, int] = {}
        self._cancel = threading.Event()
        self._future: asyncio.Future[Any] | None = None
        self.deadline = 0.0

    @property
    def running(self) -> bool:
        return self._future is not None and not self._future.done()

    @property
    def done(self) -> asyncio.Future[Any] | None:
        return self._future

    def start(self, deadline: float) -> None:
        """Mine every planted farmer until ``deadline`` (local clock)."""
        self.deadline = deadline
        self._cancel = threading.Event()
        loop = asyncio.get_running_loop()
        self._future = asyncio.ensure_future(asyncio.to_thread(self._run, loop, self._cancel))

    def cancel(self) -> None:
        """Ask the thread to stop (without waiting for it)."""
        self._cancel.set()

    async def stop(self) -> None:
        """Cancel the run and wait for the thread to end; remember how far each search got."""
        self._cancel.set()
        if self._future is not None:
            with contextlib.suppress(Exception):
                await self._future
        self.remember_nonces()

    async def restart(self) -> None:
        """Stop, then start again with every farmer planted now (same deadline)."""
        await self.stop()
        self.hashes = {}
        self.start(self.deadline)

    def remember_nonces(self) -> dict[str, int]:
        """Where each farmer's search goes on from (written to ``block.next_nonce``)."""
        for farmer_id, start in self.start_nonce.items():
            self.block.next_nonce[farmer_id] = max(
                self.block.next_nonce.get(farmer_id, 0), start + self.hashes.get(farmer_id, 0)
            )
        return dict(self.block.next_nonce)

    def _run(self, loop: asyncio.AbstractEventLoop, cancel: threading.Event) -> None:
        block = self.block
        policy: SplitPolicy = FairSplit()
        if self.split == "reward" and self.zeros_range is not None:
            policy = RewardSplit(default_range=self.zeros_range)
        jobs = []
        for farmer_id, planted in list(block.planted.items()):
            start = block.next_nonce.get(farmer_id, 0)
            self.start_nonce[farmer_id] = start
            jobs.append(
                MiningJob(
                    farmer=planted.custodial_wallet,
                    index=block.block_index,
                    entropy=block.entropy_bytes,
                    deadline=self.deadline,
                    start_nonce=start,
                    key=farmer_id,
                )
            )
        if not jobs or self.clock() >= self.deadline:
            return

        def on_event(event: ProgressEvent) -> None:
            name = event.job.name
            self.hashes[name] = event.hashes_done
            if event.kind == "improved" and event.best is not None:
                loop.call_soon_threadsafe(self.on_best, name, event.best)
            elif event.kind == "slice":
                loop.call_soon_threadsafe(self.on_slice)

        mine_jobs(
            jobs,
            hash_rate=self.hash_rate or 1e6,
            policy=policy,
            searcher=self.searcher,
            threads=self.threads,
            on_event=on_event,
            cancel=cancel,
            clock=self.clock,
        )

    def total_hashes(self) -> int:
        return sum(self.hashes.values())


class HashRate:
    """The rate the miner hashes at, over its last ~10 s (``fallback``, the measured or
    configured rate, until two samples are in; 0 while nothing is mined)."""

    WINDOW = 10.0  # seconds

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque(maxlen=40)

    def sample(self, hashes_done: int) -> None:
        self.samples.append((self.clock(), hashes_done))

    def current(self, *, mining: bool, fallback: float) -> float:
        samples = self.samples
        if not mining:
            return 0.0
        if len(samples) < 2:
            return fallback
        t1, h1 = samples[-1]
        while len(samples) > 2 and t1 - samples[0][0] > self.WINDOW:
            samples.popleft()
        t0, h0 = samples[0]
        return (h1 - h0) / (t1 - t0) if t1 > t0 and h1 >= h0 else fallback
