"""Loading the numba search kernel: CPU target choice, JIT/cache, and thin typed wrappers.

The kernel itself is the generated module :mod:`kalepool.miner._kernel` (see
:mod:`kalepool.miner._codegen`). It is compiled by numba on first use and cached on
disk (``__pycache__`` next to the module, or ``NUMBA_CACHE_DIR``); later processes
load the machine code from the cache.

CPU target. By default numba compiles for the host CPU and its features, and LLVM picks
the SIMD width (AVX-512: 8 nonces per vector, AVX2: 4, SSE2: 2); on an AVX-512 host the
miner also turns off LLVM's preference for 256-bit vectors that some Intel models have
(:func:`full_width_features`), unless ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` are set.
``cpu_target`` (the ``miner.cpu_target`` setting, ``KALEPOOL_MINER__CPU_TARGET``) forces
an LLVM CPU name instead, with that CPU's own features only: ``x86-64-v3`` (AVX2, no AVX-512),
``x86-64-v2`` (SSE4.2), ``generic`` (baseline), or a model such as ``znver4``. numba
reads its target when it first compiles anything, so the choice must be made before
any numba function in the process is compiled; :func:`load` enforces that.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from kalepool.errors import ConfigError
from kalepool.kale import pow as kale_pow
from kalepool.miner.isa import probe_isa

U64 = np.uint64
MAX_NONCE = kale_pow.MAX_U64
NO_TARGET = 65  # a zero count no hash can reach: "never stop early"
PAD_LANE_16 = 0x80 << 56
RATE_BYTES = 136


@dataclass(frozen=True)
class KernelInfo:
    """What the loaded kernel was compiled for, and how long loading took."""

    cpu_name: str  # the LLVM CPU name numba compiled for (e.g. "znver3", "x86-64-v3")
    simd: str  # widest vector ISA the compiled code may use: avx512, avx2, avx, sse2, none
    vector_bits: int  # widest vector register the target has (512, 256, 128, 0)
    forced: bool  # True when a CPU target was forced by configuration
    features: str  # the LLVM feature string ("" = the CPU name's defaults)
    jit_seconds: float  # time to compile the kernel (cold) or load it from the disk cache (warm)
    cache_hit: bool  # True when every kernel function came from the disk cache
    numba_import_seconds: float
    numba_init_seconds: float  # numba's own first-use set-up, before the kernel loads

    @property
    def isa_features(self) -> list[str]:
        """The vector and bit-manipulation features the target enables (empty: CPU defaults)."""
        wanted = ("avx512f", "avx512vl", "avx512dq", "avx512bw", "avx2", "avx", "bmi2", "bmi", "sse4.2")
        enabled = {f[1:] for f in self.features.split(",") if f.startswith("+")}
        return [f for f in wanted if f in enabled]

    @property
    def cpu_target(self) -> str:
        """A one-line description, e.g. ``"znver3 (avx2, 256-bit)"``."""
        return f"{self.cpu_name} ({self.simd}, {self.vector_bits}-bit{', forced' if self.forced else ''})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "cpu_name": self.cpu_name,
            "simd": self.simd,
            "vector_bits": self.vector_bits,
            "forced": self.forced,
            "cpu_target": self.cpu_target,
            "isa_features": self.isa_features or f"defaults of {self.cpu_name}",
            "jit_seconds": round(self.jit_seconds, 3),
            "jit_cache_hit": self.cache_hit,
            "numba_import_seconds": round(self.numba_import_seconds, 3),
            "numba_init_seconds": round(self.numba_init_seconds, 3),
        }


_lock = threading.Lock()
_module: ModuleType | None = None
_info: KernelInfo | None = None
_requested: str | None = None


def _normalise_target(cpu_target: str | None) -> str | None:
    if cpu_target is None:
        return None
    name = cpu_target.strip()
    return None if name in ("", "host", "native") else name


def _setting_target() -> str | None:
    from kalepool.settings import load_settings

    try:
        return load_settings().miner.cpu_target
    except FileNotFoundError:
        return None


def full_width_features(host_features: str) -> str | None:
    """The host feature string plus ``-prefer-256-bit`` on an AVX-512 host, else None.

    LLVM's tuning for several Intel AVX-512 models prefers 256-bit vectors in the loop
    vectoriser; for this kernel full 512-bit vectors (8 nonces at once) are the point.
    AMD Zen 4/5 already default to 512 bits, where this changes nothing.
    """
    flags = host_features.split(",")
    if "+avx512f" not in flags or "-prefer-256-bit" in flags:
        return None
    return host_features + ",-prefer-256-bit"


def _numba_started() -> bool:
    """Whether numba has created its CPU code generator (its target is then fixed)."""
    if "numba" not in sys.modules:
        return False
    from numba.core.registry import cpu_target

    return "_toplevel_target_context" in cpu_target.__dict__


def _reload_numba_config() -> None:
    if "numba" in sys.modules:
        from numba.core import config

        reload_config: Any = config.reload_config  # untyped in numba
        reload_config()


def _apply_target(target: str | None) -> None:
    """Point numba at ``target`` before it creates its code generator."""
    if target is None:
        # The host CPU; on AVX-512, with full-width vectors unless the operator set numba's
        # variables themselves or numba already compiled something in this process.
        if "NUMBA_CPU_NAME" in os.environ or "NUMBA_CPU_FEATURES" in os.environ or _numba_started():
            return
        import llvmlite.binding as ll

        features = full_width_features(ll.get_host_cpu_features().flatten())
        if features is not None:
            os.environ["NUMBA_CPU_FEATURES"] = features
            _reload_numba_config()
        return
    if _numba_started():
        from numba.core import config

        current = getattr(config, "CPU_NAME", None)
        if target != current:
            raise ConfigError(
                f"miner.cpu_target={target!r}: numba already compiled code for "
                f"{current or 'the host CPU'} in this process; set the target "
                "(KALEPOOL_MINER__CPU_TARGET or NUMBA_CPU_NAME) before starting it"
            )
        return
    os.environ["NUMBA_CPU_NAME"] = target
    os.environ.setdefault("NUMBA_CPU_FEATURES", "")
    _reload_numba_config()


_NO_OUT = np.zeros(0, dtype=U64)


def _warm(mod: ModuleType) -> None:
    """Compile (or load from the cache) every specialisation the miner calls."""
    lanes = np.zeros(10, dtype=U64)
    k = np.asarray(mod.job_constants(lanes), dtype=U64)
    res = np.zeros(4, dtype=U64)
    mod.search_chunk(k, lanes, U64(0), 8, NO_TARGET, res, _NO_OUT)
    mod.full_hash_words(lanes, U64(0))


def load(cpu_target: str | None = None) -> KernelInfo:
    """Import and JIT the kernel once per process; later calls return the same info.

    ``cpu_target``: an LLVM CPU name to force, ``None`` to use the ``miner.cpu_target``
    setting (which defaults to the host CPU). Asking for a different target after the
    kernel is loaded raises :class:`~kalepool.errors.ConfigError`.
    """
    global _module, _info, _requested
    target = _normalise_target(cpu_target if cpu_target is not None else _setting_target())
    with _lock:
        if _module is not None and _info is not None:
            if target is not None and target != _requested and target != _info.cpu_name:
                raise ConfigError(
                    f"miner.cpu_target={target!r}: the kernel is already loaded for "
                    f"{_info.cpu_name}; choose the target before the first search"
                )
            return _info
        _apply_target(target)
        t0 = time.perf_counter()
        import numba  # noqa: F401
        from numba.core import config
        from numba.core.registry import cpu_target as numba_cpu

        t1 = time.perf_counter()
        # numba's one-time set-up (type registries, code generator), paid by any numba user
        numba_cpu.typing_context.refresh()
        numba_cpu.target_context.refresh()
        codegen = numba_cpu.target_context.codegen()
        t2 = time.perf_counter()
        from kalepool.miner import _kernel as mod

        _warm(mod)
        t3 = time.perf_counter()
        cpu_name = codegen._get_host_cpu_name()
        features = codegen._tm_features
        simd, bits = probe_isa(cpu_name, features)
        funcs = (mod.search_chunk, mod.full_hash_words)
        hits = sum(sum(f.stats.cache_hits.values()) for f in funcs)
        misses = sum(sum(f.stats.cache_misses.values()) for f in funcs)
        _info = KernelInfo(
            cpu_name=cpu_name,
            simd=simd,
            vector_bits=bits,
            forced=getattr(config, "CPU_NAME", None) is not None,
            features=features,
            jit_seconds=t3 - t2,
            cache_hit=misses == 0 and hits > 0,
            numba_import_seconds=t1 - t0,
            numba_init_seconds=t2 - t1,
        )
        _module = mod
        _requested = target
        return _info


def kernel() -> ModuleType:
    """The loaded generated kernel module (loading it on first use)."""
    if _module is None:
        load()
    assert _module is not None
    return _module


# --- one job: the preimage constants --------------------------------------------------


@dataclass(frozen=True)
class PreparedJob:
    """Everything the kernel needs for one (index, entropy, farmer)."""

    index: int
    entropy: bytes
    farmer: str
    lanes: np.ndarray  # the 10 preimage lanes with the nonce bytes zero (pad included)
    constants: np.ndarray  # the kernel's job constants


def padded_block(index: int, entropy: bytes, farmer: str) -> bytes:
    """The 136-byte Keccak block of the preimage with nonce 0 (0x01 ... 0x80 padding)."""
    block = bytearray(kale_pow.preimage(index, 0, entropy, farmer))
    block += bytes(RATE_BYTES - len(block))
    block[kale_pow.PREIMAGE_LENGTH] ^= 0x01
    block[RATE_BYTES - 1] ^= 0x80
    return bytes(block)


def prepare(index: int, entropy: bytes, farmer: str) -> PreparedJob:
    """Validate the job and precompute its constant lanes (runs once per job)."""
    entropy = kale_pow.check_entropy(entropy)
    block = padded_block(index, entropy, farmer)
    words = struct.unpack("<17Q", block)
    # The generator assumes this layout: lanes 10..15 zero, lane 16 the final pad bit.
    assert words[10:16] == (0,) * 6 and words[16] == PAD_LANE_16, "unexpected block layout"
    lanes = np.array(words[:10], dtype=U64)
    constants = np.asarray(kernel().job_constants(lanes), dtype=U64)
    return PreparedJob(index, entropy, farmer, lanes, constants)


def search_chunk(
    job: PreparedJob, start: int, count: int, stop_zeros: int = NO_TARGET
) -> tuple[int, int, int, int]:
    """Best over nonces ``start .. start+count-1``: ``(nonce, zeros, hashes done, lane 0)``.

    Ties go to the lowest nonce. With ``stop_zeros`` the scan stops after the block of
    ``BLOCK`` nonces in which that many zeros were reached (``hashes done`` says how
    far it got). Releases the GIL while it runs.
    """
    if not 1 <= count <= 2**62:
        raise ValueError(f"count: must be in [1, 2^62], got {count}")
    kale_pow.check_nonce(start)
    if start + count - 1 > MAX_NONCE:
        raise ValueError("start + count exceeds the nonce space (2^64)")
    res = np.zeros(4, dtype=U64)
    kernel().search_chunk(
        job.constants, job.lanes, U64(start), count, min(stop_zeros, NO_TARGET), res, _NO_OUT
    )
    return int(res[0]), int(res[1]), int(res[2]), int(res[3])


def hash_lane0(job: PreparedJob, start: int, count: int) -> np.ndarray:
    """Hash bytes 0..7 (little-endian word) of ``count`` consecutive nonces, for tests."""
    kale_pow.check_nonce(start)
    if count < 1 or start + count - 1 > MAX_NONCE:
        raise ValueError("count must be >= 1 and stay within the nonce space")
    out = np.zeros(count, dtype=U64)
    res = np.zeros(4, dtype=U64)
    kernel().search_chunk(job.constants, job.lanes, U64(start), count, NO_TARGET, res, out)
    return out


def full_hash(job: PreparedJob, nonce: int) -> bytes:
    """The whole 32-byte hash from the kernel module's reference permutation."""
    words = kernel().full_hash_words(job.lanes, U64(kale_pow.check_nonce(nonce)))
    return struct.pack("<4Q", *(int(w) for w in words))


def block_size() -> int:
    """Nonces the kernel hashes side by side (its SIMD block)."""
    return int(kernel().BLOCK)
