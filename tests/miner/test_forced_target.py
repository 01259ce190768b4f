"""The kernel compiled for a forced CPU target (no AVX-512) gives the same answers.

numba fixes its CPU target when it first compiles, so the forced build runs in a fresh
process, configured only through the ``miner.cpu_target`` setting, with its own numba
cache. On an AVX-512 host the forced target is ``x86-64-v3`` (AVX2); elsewhere it is
``generic`` (baseline x86-64), so the test always exercises a different code path
than the host build.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import llvmlite.binding as ll
import pytest

from kalepool.miner import kernel as kern
from kalepool.miner import search

from .conftest import C_FARM, G_NULL, V3_ENTROPY

RANGES = [(0, 300), (2**32 - 150, 300), (2**64 - 200, 200)]

SCRIPT = """
import json, sys
from kalepool.miner import kernel as kern, search
entropy = bytes.fromhex(sys.argv[1])
farmers = json.loads(sys.argv[2])
ranges = json.loads(sys.argv[3])
out = {"info": kern.load().as_dict(), "lanes": [], "chunks": [], "searches": []}
for farmer in farmers:
    job = kern.prepare(40000, entropy, farmer)
    for start, count in ranges:
        out["lanes"].append([int(v) for v in kern.hash_lane0(job, start, count)])
        out["chunks"].append(list(kern.search_chunk(job, start, count)))
sol = search(40000, entropy, farmers[0], target_zeros=5, threads=1)
out["searches"].append([sol.nonce, sol.zeros])
print(json.dumps(out))
"""


def forced_target() -> str:
    host_has_avx512 = "+avx512f" in ll.get_host_cpu_features().flatten()
    return "x86-64-v3" if host_has_avx512 else "generic"


@pytest.mark.slow
def test_forced_target_gives_identical_results(tmp_path: Path, kernel_info: kern.KernelInfo) -> None:
    target = forced_target()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env.update({"KALEPOOL_MINER__CPU_TARGET": target, "NUMBA_CACHE_DIR": str(tmp_path / "numba")})

    def run() -> dict[str, Any]:
        argv = [
            sys.executable,
            "-c",
            SCRIPT,
            V3_ENTROPY.hex(),
            json.dumps([G_NULL, C_FARM]),
            json.dumps(RANGES),
        ]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    forced = run()
    info = forced["info"]
    assert info["cpu_name"] == target and info["forced"] is True
    assert info["vector_bits"] < 512 and info["simd"] != "avx512"
    assert info["jit_cache_hit"] is False  # a fresh cache: this was a cold compile

    i = 0
    for farmer in (G_NULL, C_FARM):
        job = kern.prepare(40000, V3_ENTROPY, farmer)
        for start, count in RANGES:
            assert forced["lanes"][i] == [int(v) for v in kern.hash_lane0(job, start, count)]
            assert forced["chunks"][i] == list(kern.search_chunk(job, start, count))
            i += 1
    sol = search(40000, V3_ENTROPY, G_NULL, target_zeros=5, threads=1)
    assert forced["searches"] == [[sol.nonce, sol.zeros]] == [[381821, 5]]

    # A second process finds the kernel in numba's disk cache: a warm start.
    again = run()
    assert again["info"]["jit_cache_hit"] is True
    assert again["info"]["jit_seconds"] < 1.0
    assert again["lanes"] == forced["lanes"] and again["chunks"] == forced["chunks"]
