"""``kalepool.miner.search``: best selection, limits, threads, cancellation, verification."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from kalepool.kale import pow as kale_pow
from kalepool.miner import MinerError, Solution, default_threads, search
from kalepool.miner import kernel as kern
from kalepool.miner import searcher as search_mod

from .conftest import C_FARM, G_NULL, V3_ENTROPY

pytestmark = pytest.mark.usefixtures("kernel_info")


def brute_best(index: int, entropy: bytes, farmer: str, start: int, count: int) -> tuple[int, int]:
    best = (-1, 0)
    for nonce in range(start, start + count):
        z = kale_pow.leading_zeros(kale_pow.work_hash(index, nonce, entropy, farmer))
        if z > best[0]:
            best = (z, nonce)
    return best[1], best[0]


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("start,count", [(0, 3000), (2**32 - 1500, 3000), (2**64 - 2500, 2500), (5, 1)])
def test_best_over_a_range_equals_brute_force(threads: int, start: int, count: int) -> None:
    sol = search(7, V3_ENTROPY, C_FARM, start_nonce=start, max_hashes=count, threads=threads)
    assert (sol.nonce, sol.zeros) == brute_best(7, V3_ENTROPY, C_FARM, start, count)
    assert sol.hashes_done == count
    assert sol.hash == kale_pow.work_hash(7, sol.nonce, V3_ENTROPY, C_FARM)


def test_ties_go_to_the_lowest_nonce_across_chunks_and_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tiny chunks so that the range is split over many chunks and both threads.
    monkeypatch.setattr(search_mod, "FIRST_CHUNK", 8)
    monkeypatch.setattr(search_mod, "MIN_CHUNK", 8)
    monkeypatch.setattr(search_mod, "MAX_CHUNK", 16)
    for start in range(0, 600, 60):
        zs = [
            kale_pow.leading_zeros(kale_pow.work_hash(40000, n, V3_ENTROPY, G_NULL))
            for n in range(start, start + 60)
        ]
        sol = search(40000, V3_ENTROPY, G_NULL, start_nonce=start, max_hashes=60, threads=2)
        assert (sol.nonce, sol.zeros) == (start + zs.index(max(zs)), max(zs))


def test_target_zeros_stops_early() -> None:
    sol = search(40000, V3_ENTROPY, G_NULL, target_zeros=5, threads=1)
    assert (sol.nonce, sol.zeros) == (381821, 5)  # kale-contract.md §7.2 V3: the first one
    # it stops within the kernel's block that met the target, whatever the chunk size (a
    # fast CPU's 10 ms chunk is ~260k nonces: a next chunk taken before the stop overshot)
    assert 381822 <= sol.hashes_done < 381822 + kern.block_size()
    sol2 = search(40000, V3_ENTROPY, G_NULL, target_zeros=5, threads=2)
    assert sol2.zeros >= 5
    assert sol2.hash == kale_pow.work_hash(40000, sol2.nonce, V3_ENTROPY, G_NULL)


def test_target_zero_is_met_by_the_first_nonce() -> None:
    sol = search(1, V3_ENTROPY, G_NULL, target_zeros=0, start_nonce=99)
    assert sol.nonce == 99 and sol.hashes_done >= 1


def test_time_limit() -> None:
    t0 = time.monotonic()
    sol = search(1, V3_ENTROPY, G_NULL, seconds=0.4, threads=2)
    elapsed = time.monotonic() - t0
    assert 0.4 <= elapsed < 0.4 + 0.2
    assert sol.hashes_done > 10_000
    zero = search(1, V3_ENTROPY, G_NULL, seconds=0)
    assert zero.hashes_done >= 1  # at least one nonce is always searched


def test_end_of_the_nonce_space() -> None:
    sol = search(1, V3_ENTROPY, G_NULL, start_nonce=2**64 - 100, threads=2)
    assert sol.hashes_done == 100
    assert (sol.nonce, sol.zeros) == brute_best(1, V3_ENTROPY, G_NULL, 2**64 - 100, 100)


@pytest.mark.parametrize("threads", [1, 2])
def test_cancel_within_100_ms(threads: int) -> None:
    cancel = threading.Event()
    box: dict[str, object] = {}

    def run() -> None:
        box["sol"] = search(3, V3_ENTROPY, G_NULL, threads=threads, cancel=cancel)
        box["t"] = time.monotonic()

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    cancel.set()
    t_set = time.monotonic()
    t.join(5)
    assert not t.is_alive()
    assert isinstance(box["sol"], Solution)
    assert box["t"] - t_set < 0.1  # type: ignore[operator]


def test_cancel_before_start_still_returns_a_verified_result() -> None:
    cancel = threading.Event()
    cancel.set()
    sol = search(3, V3_ENTROPY, G_NULL, cancel=cancel)
    assert 1 <= sol.hashes_done <= 64
    assert sol.hash == kale_pow.work_hash(3, sol.nonce, V3_ENTROPY, G_NULL)


def test_on_improvement_reports_each_new_best_in_order() -> None:
    seen: list[Solution] = []
    sol = search(40000, V3_ENTROPY, G_NULL, max_hashes=400_000, threads=2, on_improvement=seen.append)
    assert seen and seen[-1].nonce == sol.nonce and seen[-1].zeros == sol.zeros
    for a, b in itertools.pairwise(seen):
        assert b.better_than(a)
    for s in seen:
        assert s.hash == kale_pow.work_hash(40000, s.nonce, V3_ENTROPY, G_NULL)
    assert sol.zeros == 5 and sol.nonce == 381821


def test_a_raising_callback_stops_the_search() -> None:
    calls = []

    def boom(sol: Solution) -> None:
        calls.append(sol)
        if len(calls) == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        search(1, V3_ENTROPY, G_NULL, seconds=5, threads=2, on_improvement=boom)
    assert len(calls) == 2
    assert all(not t.name.startswith("kalepool-miner") for t in threading.enumerate())


def test_a_wrong_kernel_answer_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = kern.search_chunk

    def lying(job, start, count, stop_zeros=kern.NO_TARGET):  # type: ignore[no-untyped-def]
        nonce, zeros, done, lane = real(job, start, count, stop_zeros)
        return nonce, zeros + 1, done, lane

    monkeypatch.setattr(kern, "search_chunk", lying)
    with pytest.raises(MinerError, match="refusing"):
        search(1, V3_ENTROPY, G_NULL, max_hashes=1000, threads=2)
    assert all(not t.name.startswith("kalepool-miner") for t in threading.enumerate())


def test_solution_helpers() -> None:
    a = Solution(10, b"\x00" * 32, 3, 5)
    assert a.better_than(None)
    assert Solution(9, b"", 3, 1).better_than(a)
    assert not Solution(11, b"", 3, 1).better_than(a)
    assert Solution(99, b"", 4, 1).better_than(a)
    assert a.as_dict() == {"nonce": 10, "hash": "00" * 32, "zeros": 3, "hashes_done": 5}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"index": -1},
        {"index": 2**32},
        {"entropy": b"x"},
        {"farmer": "GNOTANADDRESS"},
        {"start_nonce": 2**64},
        {"max_hashes": 0},
        {"seconds": -1},
        {"target_zeros": 65},
        {"threads": 0},
    ],
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"index": 1, "entropy": V3_ENTROPY, "farmer": G_NULL, "max_hashes": 10}
    args.update(kwargs)
    with pytest.raises(ValueError):
        search(**args)  # type: ignore[arg-type]


def test_default_threads_follows_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEPOOL_MINER__THREADS", "3")
    assert default_threads() == 3
    monkeypatch.delenv("KALEPOOL_MINER__THREADS")
    assert default_threads() >= 1
