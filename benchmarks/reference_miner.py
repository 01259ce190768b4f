"""The hand-written C miner loop (``benchmarks/reference/keccak_miner.c``) as a yardstick.

Compiled here with the machine's C compiler (``cc -O3 -march=native``), checked against
pycryptodome on a nonce range that crosses 2^32 (so a wrong C kernel cannot make our
figure look good), then timed on one core over the same preimage as the numba kernel.
Only the benchmark uses it; the package never builds C.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kalepool.kale import pow as kale_pow
from kalepool.miner import kernel as kern
from kalepool.miner.bench import BENCH_ENTROPY, BENCH_FARMER, BENCH_INDEX

SOURCE = Path(__file__).with_name("reference") / "keccak_miner.c"
CHECK_START = (1 << 32) - 300  # the range crosses the nonce's 32-bit halves
CHECK_COUNT = 600


class ReferenceError(RuntimeError):
    """The C reference could not be built, or gave a wrong answer."""


@dataclass(frozen=True)
class ReferenceResult:
    compiler: str
    width: int  # nonces per vector in the C build (8 AVX-512, 4 AVX2, 2 otherwise)
    mhs_per_core: float  # best of the trials
    trials_mhs: list[float]


def find_compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _lane_args() -> list[str]:
    block = kern.padded_block(BENCH_INDEX, BENCH_ENTROPY, BENCH_FARMER)
    return [f"{w:016x}" for w in struct.unpack("<17Q", block)[:10]]


@dataclass(frozen=True)
class _Run:
    width: int
    rate: float  # hashes per second
    nonce: int
    lane0: str


def _run(binary: Path, start: int, count: int) -> _Run:
    out = subprocess.run(
        [str(binary), *_lane_args(), str(start), str(count)], capture_output=True, text=True, check=True
    )
    r = json.loads(out.stdout)
    rate = int(r["hashes"]) / max(float(r["seconds"]), 1e-6)
    return _Run(int(r["width"]), rate, int(r["nonce"]), r["lane0"])


def check(binary: Path) -> None:
    """The C loop's best nonce and hash over a range must equal pycryptodome's."""
    hashes = [
        (kale_pow.work_hash(BENCH_INDEX, n, BENCH_ENTROPY, BENCH_FARMER), n)
        for n in range(CHECK_START, CHECK_START + CHECK_COUNT)
    ]
    want_hash, want_nonce = min(hashes, key=lambda h: (h[0][:8], h[1]))
    got = _run(binary, CHECK_START, CHECK_COUNT)
    want_lane0 = f"{int.from_bytes(want_hash[:8], 'little'):016x}"
    if (got.nonce, got.lane0) != (want_nonce, want_lane0):
        raise ReferenceError(f"C reference disagrees with pycryptodome: {got} != {want_nonce}, {want_lane0}")


def build(directory: Path) -> Path:
    """Compile the C reference into ``directory``; return the binary's path."""
    cc = find_compiler()
    if cc is None:
        raise ReferenceError("no C compiler (cc, gcc or clang) on PATH")
    binary = directory / "keccak_miner"
    done = subprocess.run(
        [cc, "-O3", "-march=native", "-o", str(binary), str(SOURCE)], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise ReferenceError(f"{cc} failed: {done.stderr.strip()[:500]}")
    return binary


def measure(seconds: float, trials: int = 3) -> ReferenceResult:
    """Build, check and time the C reference on one core (best of ``trials``)."""
    with tempfile.TemporaryDirectory(prefix="kalepool-cref-") as tmp:
        binary = build(Path(tmp))
        check(binary)
        probe = _run(binary, 0, 1_000_000)
        count = max(int(probe.rate * seconds / trials), 100_000)
        rates = [_run(binary, (i + 1) << 40, count).rate / 1e6 for i in range(trials)]
        trials_mhs = [round(r, 3) for r in rates]
        return ReferenceResult(find_compiler() or "", probe.width, max(trials_mhs), trials_mhs)
