"""Mining for many farmers at once: share the machine's time until each farmer's deadline.

Each farmer is a separate search (the farmer's key is in the preimage), so the pooler
gives the whole machine to one farmer at a time, in short *slices*, and a
:class:`SplitPolicy` decides who gets the next slice:

* :class:`FairSplit` gives every active farmer the same number of hashes.
* :class:`RewardSplit` maximises the expected reward under the farm's normalisation
  (``kale-contract.md`` §5.3): zeros are clamped to the previous block's
  ``[min_zeros, max_zeros]``, so each zero above the minimum and up to the maximum is
  worth the same, for every farmer, and zeros beyond the maximum earn nothing. The next
  slice goes to the farmer whose best is most likely to gain value from it; a farmer
  that reached ``max_zeros`` stops.

:func:`mine_jobs` runs the slices, reports :class:`ProgressEvent`\\ s (a farmer's new best,
a finished slice, a farmer finished with its final best) and returns every farmer's
best at or before its deadline. Nonces continue where the previous slice stopped, so no
nonce is hashed twice for a farmer.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from kalepool.kale import pow as kale_pow
from kalepool.miner.searcher import Searcher, Solution, default_threads, search

FinishReason = Literal["deadline", "target", "no_value", "exhausted", "cancelled"]
EventKind = Literal["improved", "slice", "finished"]


@dataclass(frozen=True)
class MiningJob:
    """One farmer's work for one block.

    ``deadline`` is on the scheduler's clock (``time.time()`` by default): the best found
    by then is final. ``zeros_range`` is the farm's frozen ``(min_zeros, max_zeros)`` for
    this block (the previous block's range), used by :class:`RewardSplit`.
    ``target_zeros`` stops this farmer early once reached. ``weight`` is the relative
    value of this farmer's reward (1.0 = the same as everyone's).
    """

    farmer: str
    index: int
    entropy: bytes
    deadline: float
    start_nonce: int = 0
    zeros_range: tuple[int, int] | None = None
    target_zeros: int | None = None
    weight: float = 1.0
    key: str | None = None  # defaults to the farmer address; must be unique per run

    @property
    def name(self) -> str:
        return self.key or self.farmer

    def __post_init__(self) -> None:
        kale_pow.check_index(self.index)
        kale_pow.check_entropy(self.entropy)
        kale_pow.farmer_key_bytes(self.farmer)
        kale_pow.check_nonce(self.start_nonce)
        if self.zeros_range is not None:
            lo, hi = self.zeros_range
            if not 0 <= lo <= 64 or not 0 <= hi <= 64:
                raise ValueError(f"zeros_range: must lie within [0, 64], got {self.zeros_range}")
        if self.weight < 0 or not math.isfinite(self.weight):
            raise ValueError(f"weight: must be a finite number >= 0, got {self.weight}")


@dataclass
class JobState:
    """A job's progress, as the policies see it."""

    job: MiningJob
    next_nonce: int
    best: Solution | None = None
    hashes_done: int = 0
    seconds: float = 0.0
    slices: int = 0
    finished: FinishReason | None = None

    @property
    def zeros(self) -> int:
        """Best zeros so far (-1 before the first hash)."""
        return -1 if self.best is None else self.best.zeros


@dataclass(frozen=True)
class ProgressEvent:
    """Something happened to one job: a new best, a finished slice, or the job is done."""

    kind: EventKind
    job: MiningJob
    best: Solution | None
    hashes_done: int
    seconds: float
    reason: FinishReason | None = None


@dataclass(frozen=True)
class JobResult:
    """A job's final best (``None`` only when the machine never got to it in time)."""

    job: MiningJob
    best: Solution | None
    hashes_done: int
    seconds: float
    reason: FinishReason


class SplitPolicy(Protocol):
    """Decides who mines next. Both methods must be cheap (called once per slice)."""

    def target_zeros(self, state: JobState) -> int | None:
        """Zeros at which mining this job stops adding value (None: never)."""
        ...

    def pick(self, active: Sequence[JobState], *, now: float, slice_hashes: int) -> JobState | None:
        """The job to mine for the next ``slice_hashes`` hashes; None if none is worth it."""
        ...


def _by_deadline(state: JobState) -> tuple[float, str]:
    return state.job.deadline, state.job.name


@dataclass(frozen=True)
class FairSplit:
    """Equal hashes for every active farmer (the one with the fewest goes next)."""

    def target_zeros(self, state: JobState) -> int | None:
        return state.job.target_zeros

    def pick(self, active: Sequence[JobState], *, now: float, slice_hashes: int) -> JobState | None:
        if not active:
            return None
        return min(active, key=lambda s: (s.hashes_done, *_by_deadline(s)))


def prob_at_least(zeros: int, hashes: float) -> float:
    """P(the best of ``hashes`` fresh hashes has at least ``zeros`` leading zero digits)."""
    if zeros <= 0:
        return 1.0
    if hashes <= 0:
        return 0.0
    p = 16.0**-zeros
    return -math.expm1(hashes * math.log1p(-p))


def zero_value(zeros: int, zeros_range: tuple[int, int] | None) -> float:
    """Value of a zero count in units of one normalised zero: clamp(z, lo, hi) - lo."""
    if zeros < 0:
        return 0.0
    if zeros_range is None:
        return float(zeros)
    lo, hi = zeros_range
    if hi <= lo:
        return 0.0  # the previous block had no spread: every zero count normalises alike
    return float(min(max(zeros, lo), hi) - lo)


def expected_gain(best_zeros: int, hashes: float, zeros_range: tuple[int, int] | None) -> float:
    """Expected increase of :func:`zero_value` from ``hashes`` more hashes."""
    top = 64 if zeros_range is None else zeros_range[1]
    gain = 0.0
    for k in range(max(best_zeros, 0) + 1, top + 1):
        step = zero_value(k, zeros_range) - zero_value(k - 1, zeros_range)
        if step <= 0:
            continue
        p = prob_at_least(k, hashes)
        if p < 1e-12:
            break
        gain += step * p
    return gain


@dataclass(frozen=True)
class RewardSplit:
    """Maximise the pool's expected reward under the farm's zero normalisation.

    The next slice goes to the job with the largest ``weight`` × expected value gain
    (:func:`expected_gain`); ties go to the fewest hashes, then the earliest deadline.
    A job whose best reached ``max_zeros`` (or its own ``target_zeros``) is done.
    ``default_range`` applies to jobs without a ``zeros_range``.
    """

    default_range: tuple[int, int] | None = None

    def _range(self, state: JobState) -> tuple[int, int] | None:
        return state.job.zeros_range if state.job.zeros_range is not None else self.default_range

    def target_zeros(self, state: JobState) -> int | None:
        rng = self._range(state)
        cap = None if rng is None else max(rng[1], 0)
        own = state.job.target_zeros
        if cap is None:
            return own
        return cap if own is None else min(cap, own)

    def pick(self, active: Sequence[JobState], *, now: float, slice_hashes: int) -> JobState | None:
        best: tuple[float, int, float, str] | None = None
        chosen: JobState | None = None
        for s in active:
            gain = s.job.weight * expected_gain(s.zeros, slice_hashes, self._range(s))
            if gain <= 0:
                continue
            key = (-gain, s.hashes_done, *_by_deadline(s))
            if best is None or key < best:
                best, chosen = key, s
        return chosen


@dataclass
class _Run:
    states: list[JobState]
    on_event: Callable[[ProgressEvent], None] | None
    results: dict[str, JobResult] = field(default_factory=dict)

    def emit(self, kind: EventKind, s: JobState, reason: FinishReason | None = None) -> None:
        if self.on_event is not None:
            self.on_event(ProgressEvent(kind, s.job, s.best, s.hashes_done, s.seconds, reason))

    def finish(self, s: JobState, reason: FinishReason) -> None:
        if s.finished is None:
            s.finished = reason
            self.results[s.job.name] = JobResult(s.job, s.best, s.hashes_done, s.seconds, reason)
            self.emit("finished", s, reason)


def measure_hash_rate(seconds: float = 0.5, threads: int | None = None) -> float:
    """The machine's hash rate (hashes per second on ``threads`` threads), measured now.

    A short :func:`~kalepool.miner.searcher.search` on a fixed job, for sizing
    :func:`mine_jobs`' slices (the kernel is loaded first, outside the measurement).
    """
    from kalepool.miner.kernel import load

    load()
    entropy = bytes(range(32))
    farmer = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"
    search(0, entropy, farmer, seconds=0.02, threads=threads)  # start the threads once
    t0 = time.monotonic()
    sol = search(0, entropy, farmer, start_nonce=1 << 40, seconds=seconds, threads=threads)
    return sol.hashes_done / max(time.monotonic() - t0, 1e-9)


def mine_jobs(
    jobs: Sequence[MiningJob],
    *,
    hash_rate: float,
    policy: SplitPolicy | None = None,
    searcher: Searcher = search,
    threads: int | None = None,
    slice_seconds: float = 0.25,
    seed_hashes: int = 256,
    on_event: Callable[[ProgressEvent], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, JobResult]:
    """Mine every job until its deadline (or until more mining is worthless); return the bests.

    ``hash_rate`` is the machine's measured rate (hashes per second, all threads), used
    to size slices of about ``slice_seconds``; the rate observed in the slices refines
    it. Every job first gets ``seed_hashes`` hashes (so each farmer has a valid work
    early), then the ``policy`` (default :class:`FairSplit`) picks who mines next. A
    slice never runs past the earliest active deadline, so "finished" events come on
    time. Returns ``{job.name: JobResult}``.
    """
    if hash_rate <= 0 or not math.isfinite(hash_rate):
        raise ValueError(f"hash_rate: must be a positive number of hashes per second, got {hash_rate}")
    if slice_seconds <= 0:
        raise ValueError(f"slice_seconds: must be > 0, got {slice_seconds}")
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ValueError("jobs: two jobs have the same key (farmer); give them distinct keys")
    policy = policy or FairSplit()
    n_threads = threads or default_threads()
    run = _Run([JobState(job=j, next_nonce=j.start_nonce) for j in jobs], on_event)
    rate = float(hash_rate)

    def mine(s: JobState, hashes: int, seconds: float) -> None:
        nonlocal rate
        target = policy.target_zeros(s)
        before = s.hashes_done

        def improved(sol: Solution) -> None:
            if sol.better_than(s.best):
                s.best = Solution(sol.nonce, sol.hash, sol.zeros, before + sol.hashes_done)
                run.emit("improved", s)

        t0 = time.monotonic()
        sol = searcher(
            s.job.index,
            s.job.entropy,
            s.job.farmer,
            start_nonce=s.next_nonce,
            max_hashes=min(hashes, kale_pow.MAX_U64 + 1 - s.next_nonce),
            seconds=max(seconds, 0.0),
            target_zeros=target,
            threads=n_threads,
            on_improvement=improved,
            cancel=cancel,
        )
        elapsed = time.monotonic() - t0
        s.slices += 1
        s.seconds += elapsed
        s.hashes_done += sol.hashes_done
        s.next_nonce += sol.hashes_done
        if elapsed > 0.05 and sol.hashes_done > 0:
            rate = 0.7 * rate + 0.3 * (sol.hashes_done / elapsed)
        improved(Solution(sol.nonce, sol.hash, sol.zeros, sol.hashes_done))
        run.emit("slice", s)
        if target is not None and s.zeros >= target:
            run.finish(s, "target")
        elif s.next_nonce > kale_pow.MAX_U64:
            run.finish(s, "exhausted")

    def active(now: float) -> list[JobState]:
        out = []
        for s in run.states:
            if s.finished is not None:
                continue
            if cancel is not None and cancel.is_set():
                run.finish(s, "cancelled")
            elif now >= s.job.deadline:
                run.finish(s, "deadline")
            else:
                out.append(s)
        return out

    # Seed pass: a few hashes for everyone, earliest deadline first.
    for s in sorted(run.states, key=_by_deadline):
        now = clock()
        if s.finished is None and now < s.job.deadline and not (cancel is not None and cancel.is_set()):
            mine(s, seed_hashes, s.job.deadline - now)
    while True:
        now = clock()
        live = active(now)
        if not live:
            break
        slice_hashes = max(1, int(rate * slice_seconds))
        chosen = policy.pick(live, now=now, slice_hashes=slice_hashes)
        if chosen is None:
            for s in live:
                run.finish(s, "no_value")
            break
        horizon = min(s.job.deadline for s in live) - now
        mine(chosen, slice_hashes, min(horizon, 2 * slice_seconds))
    return {s.job.name: run.results[s.job.name] for s in run.states}
