"""The multi-farmer scheduler: fair and reward-maximising splits, deadlines, events."""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from kalepool.kale import pow as kale_pow
from kalepool.miner import (
    ExternalMiner,
    FairSplit,
    JobState,
    MiningJob,
    ProgressEvent,
    RewardSplit,
    Solution,
    expected_gain,
    measure_hash_rate,
    mine_jobs,
)
from kalepool.miner.scheduler import prob_at_least, zero_value

from .conftest import C_FARM, G_KALE, G_NULL, V3_ENTROPY

FARMERS = [G_NULL, G_KALE, C_FARM]


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


class FakeSearcher:
    """Simulates a miner of ``rate`` hashes/s on the fake clock; zeros drawn at random."""

    def __init__(self, clock: FakeClock, rate: float, seed: int = 1) -> None:
        self.clock = clock
        self.rate = rate
        self.rng = random.Random(seed)
        self.calls: list[dict[str, object]] = []

    def __call__(self, index, entropy, farmer, *, start_nonce=0, max_hashes=None, seconds=None,  # type: ignore[no-untyped-def]
                 target_zeros=None, threads=None, on_improvement=None, cancel=None) -> Solution:  # fmt: skip
        n = max_hashes if max_hashes is not None else 10**12
        if seconds is not None:
            n = min(n, max(1, int(seconds * self.rate)))
        self.calls.append(
            {"farmer": farmer, "start": start_nonce, "n": n, "seconds": seconds, "at": self.clock.t}
        )
        # the best of n hashes: P(Z >= k) = 1 - (1 - 16^-k)^n
        zeros = 0
        while zeros < 64 and self.rng.random() < prob_at_least(zeros + 1, n) / max(
            prob_at_least(zeros, n), 1e-300
        ):
            zeros += 1
        if target_zeros is not None and zeros >= target_zeros:
            zeros = max(zeros, target_zeros)
        nonce = start_nonce + self.rng.randrange(n)
        self.clock.t += n / self.rate
        sol = Solution(nonce, bytes(32), zeros, n)
        if on_improvement is not None:
            on_improvement(sol)
        return sol


def jobs_for(clock: FakeClock, deadlines: list[float], **kwargs: object) -> list[MiningJob]:
    return [
        MiningJob(farmer=f, index=40000, entropy=V3_ENTROPY, deadline=clock.t + d, **kwargs)  # type: ignore[arg-type]
        for f, d in zip(FARMERS, deadlines, strict=False)
    ]


def test_fair_split_gives_equal_hashes_and_never_repeats_a_nonce() -> None:
    clock = FakeClock()
    searcher = FakeSearcher(clock, rate=1e6)
    events: list[ProgressEvent] = []
    jobs = jobs_for(clock, [10, 10, 10])
    results = mine_jobs(
        jobs, hash_rate=1e6, searcher=searcher, clock=clock, on_event=events.append, threads=1
    )
    assert set(results) == set(FARMERS)
    done = [r.hashes_done for r in results.values()]
    assert max(done) - min(done) <= 2 * 250_000  # within a slice or two
    assert sum(done) == pytest.approx(10e6, rel=0.05)  # the whole 10 s was used
    for farmer in FARMERS:
        calls = [c for c in searcher.calls if c["farmer"] == farmer]
        expected_start = 0
        for c in calls:
            assert c["start"] == expected_start  # contiguous, no overlap
            expected_start += c["n"]  # type: ignore[operator]
        assert results[farmer].reason == "deadline"
        assert results[farmer].best is not None
    finished = [e for e in events if e.kind == "finished"]
    assert Counter(e.job.farmer for e in finished) == {f: 1 for f in FARMERS}


def test_slices_never_cross_the_earliest_deadline() -> None:
    clock = FakeClock()
    searcher = FakeSearcher(clock, rate=1e6)
    finished_at: dict[str, float] = {}

    def on_event(e: ProgressEvent) -> None:
        if e.kind == "finished":
            finished_at[e.job.farmer] = clock.t

    jobs = jobs_for(clock, [1.0, 5.0, 3.0])
    results = mine_jobs(jobs, hash_rate=1e6, searcher=searcher, clock=clock, on_event=on_event)
    for job in jobs:
        assert finished_at[job.farmer] <= job.deadline + 1e-6
        assert results[job.farmer].reason == "deadline"
    # while the 1 s job was active, every slice ended by its deadline
    for c in searcher.calls:
        if c["at"] < jobs[0].deadline:  # type: ignore[operator]
            assert c["at"] + c["n"] / 1e6 <= jobs[0].deadline + 1e-6  # type: ignore[operator]
    # equal hashes while all were active: the longest-lived job got the most in the end
    assert results[G_KALE].hashes_done > results[C_FARM].hashes_done > results[G_NULL].hashes_done


def test_target_zeros_finishes_a_job_early() -> None:
    clock = FakeClock()
    searcher = FakeSearcher(clock, rate=1e6)
    jobs = jobs_for(clock, [60, 60], target_zeros=4)
    results = mine_jobs(jobs, hash_rate=1e6, searcher=searcher, clock=clock)
    for r in results.values():
        assert r.reason == "target" and r.best is not None and r.best.zeros >= 4
    assert clock.t < 1_000 + 60


def test_reward_split_stops_at_the_previous_blocks_max_and_helps_the_weakest() -> None:
    clock = FakeClock()
    searcher = FakeSearcher(clock, rate=1e6, seed=7)
    jobs = jobs_for(clock, [30, 30, 30], zeros_range=(2, 6))
    picks: list[tuple[int, list[int]]] = []

    class Recording(RewardSplit):
        def pick(self, active, *, now, slice_hashes):  # type: ignore[no-untyped-def]
            chosen = super().pick(active, now=now, slice_hashes=slice_hashes)
            if chosen is not None:
                picks.append((chosen.zeros, [s.zeros for s in active]))
            return chosen

    results = mine_jobs(jobs, hash_rate=1e6, policy=Recording(), searcher=searcher, clock=clock)
    for r in results.values():
        assert r.best is not None
        assert r.reason in {"target", "deadline"}
        assert (r.reason == "target") == (r.best.zeros >= 6)
    assert picks
    for chosen, zeros in picks:
        assert chosen == min(zeros)  # the weakest farmer gains the most from a slice
        assert chosen < 6  # nobody mines past the previous block's max


def test_reward_split_with_no_spread_needs_one_hash_each() -> None:
    # The previous block had no works: every zero count normalises to the same value.
    clock = FakeClock()
    searcher = FakeSearcher(clock, rate=1e6)
    jobs = jobs_for(clock, [30, 30, 30], zeros_range=(0, 0))
    results = mine_jobs(
        jobs, hash_rate=1e6, policy=RewardSplit(), searcher=searcher, clock=clock, seed_hashes=16
    )
    assert all(r.reason == "target" and r.best is not None for r in results.values())
    assert sum(r.hashes_done for r in results.values()) == 3 * 16


def test_reward_policy_picks_by_expected_gain() -> None:
    now = 0.0
    mk = lambda f, z, h: JobState(  # noqa: E731
        job=MiningJob(farmer=f, index=1, entropy=V3_ENTROPY, deadline=10, zeros_range=(3, 8)),
        next_nonce=0,
        best=None if z < 0 else Solution(0, b"", z, h),
        hashes_done=h,
    )
    policy = RewardSplit()
    a, b, c = mk(G_NULL, 5, 100), mk(G_KALE, 7, 10), mk(C_FARM, 8, 1)
    assert policy.pick([a, b, c], now=now, slice_hashes=10**6) is a
    assert policy.pick([b, c], now=now, slice_hashes=10**6) is b
    assert policy.pick([c], now=now, slice_hashes=10**6) is None  # at the max: no value left
    assert policy.target_zeros(c) == 8
    assert FairSplit().pick([a, b, c], now=now, slice_hashes=1) is c  # fewest hashes


def test_expected_gain_maths() -> None:
    assert prob_at_least(0, 0) == 1.0
    assert prob_at_least(1, 16) == pytest.approx(1 - (15 / 16) ** 16)
    assert zero_value(9, (3, 8)) == 5 and zero_value(2, (3, 8)) == 0 and zero_value(5, None) == 5
    assert expected_gain(8, 1e9, (3, 8)) == 0
    assert expected_gain(2, 1e9, (3, 8)) > expected_gain(5, 1e9, (3, 8)) > 0
    assert expected_gain(5, 1e3, (3, 8)) < expected_gain(5, 1e6, (3, 8))
    # with many hashes, gains from a low best approach the full range
    assert expected_gain(-1, 16**9, (3, 8)) == pytest.approx(5, rel=1e-3)


def test_cancel_finishes_everything() -> None:
    clock = FakeClock()
    cancel = threading.Event()
    searcher = FakeSearcher(clock, rate=1e6)
    cancel.set()
    results = mine_jobs(
        jobs_for(clock, [10, 10]), hash_rate=1e6, searcher=searcher, clock=clock, cancel=cancel
    )
    assert {r.reason for r in results.values()} == {"cancelled"}


def test_bad_input() -> None:
    clock = FakeClock()
    jobs = jobs_for(clock, [1, 1])
    with pytest.raises(ValueError):
        mine_jobs([*jobs, jobs[0]], hash_rate=1e6)
    with pytest.raises(ValueError):
        mine_jobs(jobs, hash_rate=0)
    with pytest.raises(ValueError):
        MiningJob(farmer="nope", index=1, entropy=V3_ENTROPY, deadline=1)
    with pytest.raises(ValueError):
        MiningJob(farmer=G_NULL, index=1, entropy=V3_ENTROPY, deadline=1, zeros_range=(0, 99))


def test_real_kernel_for_three_farmers(kernel_info: object) -> None:
    events: list[ProgressEvent] = []
    rate = measure_hash_rate(0.1, threads=2)
    assert rate > 1e5
    now = time.time()
    jobs = [MiningJob(farmer=f, index=40000, entropy=V3_ENTROPY, deadline=now + 1.0) for f in FARMERS]
    t0 = time.monotonic()
    results = mine_jobs(jobs, hash_rate=rate, slice_seconds=0.1, threads=2, on_event=events.append)
    assert time.monotonic() - t0 < 1.0 + 0.3
    for job in jobs:
        r = results[job.farmer]
        assert r.reason == "deadline" and r.best is not None and r.hashes_done > 1000
        assert r.best.hash == kale_pow.work_hash(40000, r.best.nonce, V3_ENTROPY, job.farmer)
        assert r.best.zeros == kale_pow.leading_zeros(r.best.hash)
    assert {e.kind for e in events} == {"improved", "slice", "finished"}


def test_external_miner_through_the_scheduler() -> None:
    fake = str(Path(__file__).with_name("fake_kale_miner.py"))
    searcher = ExternalMiner([sys.executable, fake])
    now = time.time()
    jobs = [
        MiningJob(farmer=f, index=40000, entropy=V3_ENTROPY, deadline=now + 20, target_zeros=2)
        for f in FARMERS[:2]
    ]
    results = mine_jobs(jobs, hash_rate=1e5, searcher=searcher)
    for job in jobs:
        r = results[job.farmer]
        assert r.reason == "target" and r.best is not None and r.best.zeros >= 2
        assert r.best.hash == kale_pow.work_hash(40000, r.best.nonce, V3_ENTROPY, job.farmer)
