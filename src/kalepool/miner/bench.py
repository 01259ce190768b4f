"""The miner benchmark: our kernel against a plain pycryptodome loop, in one run.

Used by ``kalepool mine bench`` and ``python -m benchmarks.miner_bench``. Hash rates are
wall-clock rates of :func:`kalepool.miner.search` (dispatch overhead included), best of
a few trials, because other processes on the machine depress single runs; the load
average is recorded with the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from Crypto.Hash import keccak

from kalepool.kale import pow as kale_pow
from kalepool.miner import kernel as kern
from kalepool.miner.searcher import default_threads, search

BENCH_INDEX = 40_000
BENCH_ENTROPY = bytes.fromhex("0000000009faeb2ff8dc93fb334dabc1398e359a163a6bb538f633fdb9b327ca")
BENCH_FARMER = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"


def baseline_rate(seconds: float) -> float:
    """Hashes per second of a plain single-threaded pycryptodome mining loop."""
    head, tail = kale_pow.preimage_prefix(BENCH_INDEX, BENCH_ENTROPY, BENCH_FARMER)
    best = -1
    nonce = 0
    end = time.perf_counter() + seconds
    while True:
        for _ in range(2000):
            digest = keccak.new(data=head + nonce.to_bytes(8, "big") + tail, digest_bits=256).digest()
            zeros = kale_pow.leading_zeros(digest)
            if zeros > best:
                best = zeros
            nonce += 1
        if time.perf_counter() >= end:
            break
    return nonce / (time.perf_counter() - end + seconds)


def kernel_rate(seconds: float, threads: int, start_nonce: int = 0) -> tuple[float, float]:
    """``(wall, cpu)`` hashes per second of :func:`search` on ``threads`` threads.

    ``wall`` is hashes per wall-clock second. ``cpu`` is hashes per second of CPU time
    used by the process, per thread: what one core does while the miner has it, which
    other processes competing for the cores do not depress (as much).
    """
    t0, c0 = time.perf_counter(), time.process_time()
    sol = search(
        BENCH_INDEX, BENCH_ENTROPY, BENCH_FARMER, start_nonce=start_nonce, seconds=seconds, threads=threads
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return sol.hashes_done / wall, sol.hashes_done / cpu if cpu > 0 else 0.0


def cold_jit_seconds(cpu_target: str | None = None) -> dict[str, Any]:
    """Load the kernel in a fresh process with an empty numba cache: the cold JIT time."""
    with tempfile.TemporaryDirectory(prefix="kalepool-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        if cpu_target:
            env["KALEPOOL_MINER__CPU_TARGET"] = cpu_target
        code = "import json; from kalepool.miner import kernel; print(json.dumps(kernel.load().as_dict()))"
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
    info: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return info


def run_bench(
    seconds: float = 3.0,
    threads: int | None = None,
    *,
    trials: int = 3,
    baseline_seconds: float = 1.0,
    cold: bool = False,
) -> dict[str, Any]:
    """Measure and return the figures (see ``kalepool mine bench --json``)."""
    load_before = os.getloadavg()
    info = kern.load()
    n = threads or default_threads()
    per_trial = max(seconds / trials, 0.05)
    kernel_rate(0.05, 1)  # warm the threads and caches
    one_both = [kernel_rate(per_trial, 1, start_nonce=i << 40) for i in range(trials)]
    many_both = [kernel_rate(per_trial, n, start_nonce=(trials + i) << 40) for i in range(trials)]
    one = [w for w, _ in one_both]
    many = [w for w, _ in many_both]
    base = baseline_rate(baseline_seconds)
    mhs_per_core = max(one) / 1e6
    mhs_total = max(many) / 1e6
    result: dict[str, Any] = {
        "mhs_per_core": round(mhs_per_core, 3),
        "mhs_total": round(mhs_total, 3),
        "threads": n,
        "scaling": round(mhs_total / mhs_per_core, 2) if mhs_per_core else None,
        "baseline_mhs_per_core": round(base / 1e6, 4),
        "ratio": round(mhs_per_core * 1e6 / base, 1) if base else None,
        "cpu_target": info.cpu_target,
        "cpu_name": info.cpu_name,
        "simd": info.simd,
        "isa_features": info.isa_features or f"defaults of {info.cpu_name}",
        "vector_bits": info.vector_bits,
        "kernel_block": kern.block_size(),
        "jit_seconds": round(info.jit_seconds, 3),
        "jit_cache_hit": info.cache_hit,
        "numba_import_seconds": round(info.numba_import_seconds, 3),
        "numba_init_seconds": round(info.numba_init_seconds, 3),
        "mhs_per_core_cpu_time": round(max(c for _, c in one_both) / 1e6, 3),
        "mhs_per_core_cpu_time_n_threads": round(max(c for _, c in many_both) / 1e6, 3),
        "trials_mhs_1_thread": [round(r / 1e6, 3) for r in one],
        "trials_mhs_n_threads": [round(r / 1e6, 3) for r in many],
        "seconds_per_trial": round(per_trial, 3),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
    }
    if cold:
        result["jit_cold_seconds"] = cold_jit_seconds(info.cpu_name if info.forced else None)["jit_seconds"]
    return result


def format_bench(r: dict[str, Any]) -> str:
    """The figures as a few human-readable lines."""
    lines = [
        f"kernel   {r['mhs_per_core']:.2f} MH/s per core (1 thread), "
        f"{r['mhs_total']:.2f} MH/s on {r['threads']} threads (x{r['scaling']})",
        f"cpu time {r['mhs_per_core_cpu_time']:.2f} MH/s per second of CPU time (1 thread), "
        f"{r['mhs_per_core_cpu_time_n_threads']:.2f} per thread with {r['threads']} threads",
        f"baseline {r['baseline_mhs_per_core']:.4f} MH/s per core (pycryptodome loop), ratio x{r['ratio']}",
        f"target   {r['cpu_target']}, {r['kernel_block']} nonces per SIMD block, "
        f"features {r['isa_features']}",
        f"jit      {r['jit_seconds']:.2f} s "
        f"({'warm: disk cache' if r['jit_cache_hit'] else 'cold: compiled'})"
        + (f", cold compile {r['jit_cold_seconds']:.1f} s" if "jit_cold_seconds" in r else "")
        + f"; numba import {r['numba_import_seconds']:.2f} s + set-up {r['numba_init_seconds']:.2f} s",
        f"load     {r['loadavg_before']} before, {r['loadavg_after']} after ({r['cpu_count']} CPUs)",
    ]
    return "\n".join(lines)
