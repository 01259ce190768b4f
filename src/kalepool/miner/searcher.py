"""The nonce search for one farmer: threads over the numba kernel, limits, cancellation.

``search`` splits the nonce range into chunks and hands them, in increasing order, to
worker threads that each call the GIL-free kernel. Chunks are sized to take about
10 ms, so a stop request (a limit reached, ``cancel`` set, Ctrl-C) takes effect within
one chunk; no chunk is abandoned half way, so the nonces searched are always
``start_nonce .. start_nonce + hashes_done - 1`` (less only where a worker stopped
early on ``target_zeros``). The worker that meets ``target_zeros`` stops the others from
taking a new chunk itself, so with one thread the search ends within the kernel's SIMD
block of the first such nonce, however fast the CPU. The best result is the most zeros, ties going to the
lowest nonce; it is re-verified with pycryptodome before it is returned or reported.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from kalepool.errors import KalePoolError
from kalepool.kale import pow as kale_pow
from kalepool.miner import kernel as kern


class MinerError(KalePoolError):
    """The miner produced a result that does not verify (a kernel or adapter bug)."""

    code = "miner_error"


@dataclass(frozen=True)
class Solution:
    """The best nonce found: its hash, zero count, and how many hashes were computed."""

    nonce: int
    hash: bytes
    zeros: int
    hashes_done: int

    def better_than(self, other: Solution | None) -> bool:
        """More zeros, or as many at a lower nonce."""
        return other is None or (self.zeros, -self.nonce) > (other.zeros, -other.nonce)

    def as_dict(self) -> dict[str, object]:
        return {
            "nonce": self.nonce,
            "hash": self.hash.hex(),
            "zeros": self.zeros,
            "hashes_done": self.hashes_done,
        }


class Searcher(Protocol):
    """Anything that searches like :func:`search` (the kernel, an external miner)."""

    def __call__(
        self,
        index: int,
        entropy: bytes,
        farmer: str,
        *,
        start_nonce: int = 0,
        max_hashes: int | None = None,
        seconds: float | None = None,
        target_zeros: int | None = None,
        threads: int | None = None,
        on_improvement: Callable[[Solution], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> Solution: ...


def default_threads() -> int:
    """All the cores this process may run on (the ``miner.threads`` setting overrides)."""
    try:
        from kalepool.settings import load_settings

        configured = load_settings().miner.threads
    except (FileNotFoundError, ValueError):
        configured = None
    if configured:
        return configured
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def verified_solution(
    index: int, entropy: bytes, farmer: str, nonce: int, zeros: int, hashes_done: int
) -> Solution:
    """Recompute the hash with pycryptodome; raise :class:`MinerError` if ``zeros`` is wrong."""
    digest = kale_pow.work_hash(index, nonce, entropy, farmer)
    actual = kale_pow.leading_zeros(digest)
    if actual != zeros:
        raise MinerError(
            f"nonce {nonce}: the kernel counted {zeros} zeros but the hash "
            f"{digest.hex()} has {actual}; refusing the result"
        )
    return Solution(nonce=nonce, hash=digest, zeros=zeros, hashes_done=hashes_done)


# Chunk sizing: aim for CHUNK_SECONDS per kernel call, within [MIN_CHUNK, MAX_CHUNK].
CHUNK_SECONDS = 0.01
MIN_CHUNK = 64
FIRST_CHUNK = 4096
MAX_CHUNK = 1 << 24
POLL_SECONDS = 0.02


class _Dispatcher:
    """Hands out consecutive nonce ranges until the range or a stop request ends."""

    def __init__(self, start: int, end: int) -> None:
        self.next = start
        self.end = end  # exclusive
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def take(self, size: int) -> tuple[int, int] | None:
        with self.lock:
            if self.stop.is_set() or self.next >= self.end:
                return None
            start = self.next
            count = min(size, self.end - start)
            self.next = start + count
            return start, count


def search(
    index: int,
    entropy: bytes,
    farmer: str,
    *,
    start_nonce: int = 0,
    max_hashes: int | None = None,
    seconds: float | None = None,
    target_zeros: int | None = None,
    threads: int | None = None,
    on_improvement: Callable[[Solution], None] | None = None,
    cancel: threading.Event | None = None,
) -> Solution:
    """Search nonces from ``start_nonce`` up for the most leading zeros.

    Stops at whichever comes first: ``max_hashes`` nonces searched, ``seconds`` elapsed,
    a hash with ``target_zeros`` zeros found, ``cancel`` set (checked every ~20 ms), or
    the end of the nonce space. At least one nonce is always searched. Returns the best
    (most zeros, lowest nonce on ties), verified with pycryptodome.
    ``on_improvement`` is called in the calling thread with each new best (verified).
    ``threads`` defaults to every core (the ``miner.threads`` setting overrides).
    """
    kale_pow.check_index(index)
    entropy = kale_pow.check_entropy(entropy)
    kale_pow.check_nonce(start_nonce)
    if max_hashes is not None and (isinstance(max_hashes, bool) or max_hashes < 1):
        raise ValueError(f"max_hashes: must be a positive integer, got {max_hashes!r}")
    if seconds is not None and not seconds >= 0:
        raise ValueError(f"seconds: must be >= 0, got {seconds!r}")
    if target_zeros is not None and not 0 <= target_zeros <= 64:
        raise ValueError(f"target_zeros: must be in [0, 64], got {target_zeros!r}")
    n_threads = default_threads() if threads is None else threads
    if n_threads < 1:
        raise ValueError(f"threads: must be >= 1, got {threads!r}")

    job = kern.prepare(index, entropy, farmer)
    started = time.monotonic()
    deadline = None if seconds is None else started + seconds
    end = kale_pow.MAX_U64 + 1
    if max_hashes is not None:
        end = min(end, start_nonce + max_hashes)
    stop_zeros = kern.NO_TARGET if target_zeros is None else target_zeros
    block = kern.block_size()

    # The first chunk runs here, small, so that even a zero time limit or a cancel set
    # beforehand returns a real (verified) result.
    first = min(end - start_nonce, MIN_CHUNK)
    nonce, zeros, done, _ = kern.search_chunk(job, start_nonce, first, stop_zeros)
    best = verified_solution(index, entropy, farmer, nonce, zeros, done)
    total = done
    if on_improvement is not None:
        on_improvement(best)

    def finished() -> bool:
        return (
            total >= end - start_nonce
            or best.zeros >= stop_zeros
            or (deadline is not None and time.monotonic() >= deadline)
            or (cancel is not None and cancel.is_set())
        )

    if finished():
        return Solution(best.nonce, best.hash, best.zeros, total)

    dispatcher = _Dispatcher(start_nonce + first, end)
    results: queue.Queue[tuple[int, int, int, BaseException | None]] = queue.Queue()

    def worker() -> None:
        size = FIRST_CHUNK
        try:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                span = dispatcher.take(size)
                if span is None:
                    return
                t0 = time.perf_counter()
                nonce, zeros, done, _ = kern.search_chunk(job, span[0], span[1], stop_zeros)
                elapsed = time.perf_counter() - t0
                if zeros >= stop_zeros:  # met the target: no thread takes another chunk
                    dispatcher.stop.set()
                results.put((nonce, zeros, done, None))
                if span[1] == size and elapsed > 0:
                    rate = done / elapsed
                    size = int(min(MAX_CHUNK, max(MIN_CHUNK, rate * CHUNK_SECONDS)))
                    size = max(block, size - size % block)
        except BaseException as exc:  # pragma: no cover - reported to the caller below
            results.put((0, -1, 0, exc))
        finally:
            results.put((0, -2, 0, None))  # this worker is done

    workers = [
        threading.Thread(target=worker, name=f"kalepool-miner-{i}", daemon=True) for i in range(n_threads)
    ]
    for w in workers:
        w.start()
    running = len(workers)
    error: BaseException | None = None
    try:
        while running:
            try:
                nonce, zeros, done, exc = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if finished():
                    dispatcher.stop.set()
                continue
            if zeros == -2:
                running -= 1
                continue
            if exc is not None:
                error = error or exc
                dispatcher.stop.set()
                continue
            total += done
            candidate = Solution(nonce, b"", zeros, total)
            if candidate.better_than(best):
                best = verified_solution(index, entropy, farmer, nonce, zeros, total)
                if on_improvement is not None and error is None:
                    try:
                        on_improvement(best)
                    except BaseException as exc:
                        error = exc
                        dispatcher.stop.set()
            if finished():
                dispatcher.stop.set()
    except BaseException:
        dispatcher.stop.set()  # Ctrl-C or a failed verification: stop the workers
        for w in workers:
            w.join()
        raise
    for w in workers:
        w.join()
    if error is not None:
        raise error
    return Solution(best.nonce, best.hash, best.zeros, total)
