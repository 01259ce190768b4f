"""Generator of :mod:`kalepool.miner._kernel`, the unrolled Keccak search kernel.

The kernel is plain Python source, written to a committed module file so that numba's
on-disk cache (keyed by the file and the function) stays stable; a test checks that
the committed file equals :func:`generate`'s output. Regenerate with::

    python -m kalepool.miner._codegen          # rewrites src/kalepool/miner/_kernel.py

What it generates, for the 76-byte KALE preimage (one Keccak-f[1600] block of rate 136):

* The state lanes are little-endian 64-bit words of the padded block. Lanes 0..9 hold
  the preimage (index, nonce, entropy, farmer) and the 0x01 pad byte (byte 76, lane 9);
  lanes 10..15 are zero, lane 16 holds the final 0x80 pad bit, lanes 17..24 are zero.
* Only the nonce changes between hashes. It is big-endian in bytes 4..11, so its high
  32 bits (byte-swapped) fill the top half of lane 0 and its low 32 bits (byte-swapped)
  the bottom half of lane 1.
* Round 1 is partially evaluated symbolically: every value that does not depend on the
  nonce (theta's column parities of columns 2..4, the whole of column 3 after theta,
  rho and pi, ...) becomes a *job constant*, computed once per job in Python by
  ``job_constants`` and passed to the kernel; the literal zero lanes disappear.
* Rounds 2..23 are fully unrolled with explicit 64-bit rotations; round 24 computes only
  output lane 0 (hash bytes 0..7), which is all the zero count needs (a lane 0 of zero,
  i.e. 16+ zeros, falls back to the full hash).
* The kernel hashes ``BLOCK`` consecutive nonces in an inner loop with no loop-carried
  state, which LLVM's loop vectoriser turns into SIMD code over the nonces, then scans
  the block for the best. ``BLOCK`` is one vector register of 64-bit lanes for the
  target numba compiles for (8 with AVX-512, 4 with AVX2, 2 with SSE2), fixed when the
  module is imported (:func:`kalepool.miner.isa.simd_block`); numba's disk cache is
  keyed by that same target, so a cached kernel always matches its block size.
* Emission order: rho, pi and chi are emitted row by row of the output, and the next
  round's theta column parities are accumulated as each row is produced, so that few
  values are live at once (fewer register spills, measurably faster with AVX2's 16
  registers; the same instruction count).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

MASK64 = (1 << 64) - 1

ROUND_CONSTANTS = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)  # fmt: skip

# ROTATIONS[x][y]: rho offset of lane (x, y), lane index x + 5 * y.
ROTATIONS = (
    (0, 36, 3, 41, 18),
    (1, 44, 10, 45, 2),
    (62, 6, 43, 15, 61),
    (28, 55, 25, 21, 56),
    (27, 20, 39, 8, 14),
)

PAD_LANE_16 = 0x80 << 56

KERNEL_PATH = Path(__file__).with_name("_kernel.py")


def rotl64(x: int, n: int) -> int:
    n %= 64
    return ((x << n) | (x >> (64 - n))) & MASK64 if n else x


# --- symbolic values: a kernel variable (or none) XOR a job constant (or none) XOR a literal


@dataclass(frozen=True)
class Val:
    var: str | None = None  # a kernel (per-nonce) variable
    consts: frozenset[str] = frozenset()  # job constants XORed in
    lit: int = 0  # a literal XORed in

    @property
    def is_const(self) -> bool:
        return self.var is None


@dataclass
class Builder:
    kernel: list[str] = field(default_factory=list)  # statements of the per-nonce body
    job: list[str] = field(default_factory=list)  # statements of job_constants
    job_inputs: list[str] = field(default_factory=list)
    n_var: int = 0
    n_job: int = 0
    used_job: list[str] = field(default_factory=list)  # job constants the kernel reads
    job_memo: dict[str, str] = field(default_factory=dict)

    def new_var(self, expr: str) -> Val:
        name = f"t{self.n_var}"
        self.n_var += 1
        self.kernel.append(f"{name} = {expr}")
        return Val(var=name)

    def new_job(self, expr: str) -> str:
        if expr in self.job_memo:
            return self.job_memo[expr]
        name = f"j{self.n_job}"
        self.job_memo[expr] = name
        self.n_job += 1
        self.job.append(f"{name} = {expr}")
        return name

    # -- materialisation

    def const_expr(self, v: Val) -> str | None:
        """One job constant (or literal) equal to the constant part of ``v``; None if 0."""
        names = sorted(v.consts)
        if not names:
            return f"0x{v.lit:016X}" if v.lit else None
        if len(names) == 1 and not v.lit:
            return names[0]
        parts = [*names, f"0x{v.lit:016X}"] if v.lit else names
        return self.new_job(" ^ ".join(parts))

    def kernel_const(self, expr: str) -> str:
        """Name (or literal) by which the kernel refers to a job constant expression."""
        if expr.startswith("0x"):
            return f"U(0x{int(expr, 16):X})"
        if expr not in self.used_job:
            self.used_job.append(expr)
        return expr

    def as_var(self, v: Val) -> str:
        """A kernel expression (a name) for ``v``, which must depend on the nonce."""
        assert v.var is not None
        c = self.const_expr(v)
        if c is None:
            return v.var
        return self.new_var(f"{v.var} ^ {self.kernel_const(c)}").var or ""

    # -- operations

    def xor(self, a: Val, b: Val) -> Val:
        consts = a.consts ^ b.consts
        lit = a.lit ^ b.lit
        if a.var is None or b.var is None:
            return Val(var=a.var or b.var, consts=consts, lit=lit)
        t = self.new_var(f"{a.var} ^ {b.var}")
        return Val(var=t.var, consts=consts, lit=lit)

    def rot(self, a: Val, n: int) -> Val:
        if n == 0:
            return a
        if a.is_const:
            if not a.consts:
                return Val(lit=rotl64(a.lit, n))
            c = self.const_expr(a)
            return Val(consts=frozenset({self.new_job(f"rotl64({c}, {n})")}))
        x = self.as_var(a)
        return self.new_var(f"(({x} << R{n}) | ({x} >> R{64 - n}))")

    def andn(self, a: Val, b: Val) -> Val:
        """``~a & b``."""
        if a.is_const and b.is_const:
            if not a.consts and not b.consts:
                return Val(lit=~a.lit & b.lit & MASK64)
            ca = self.const_expr(a) or "0"
            cb = self.const_expr(b) or "0"
            return Val(consts=frozenset({self.new_job(f"~{ca} & {cb} & MASK64")}))
        if a.is_const:
            ca_only = self.const_expr(a)
            if ca_only is None:  # ~0 & b == b
                return Val(var=self.as_var(b))
            na = self.new_job(f"~{ca_only} & MASK64")
            return self.new_var(f"{self.kernel_const(na)} & {self.as_var(b)}")
        if b.is_const:
            cb_only = self.const_expr(b)
            if cb_only is None:
                return Val()
            return self.new_var(f"~{self.as_var(a)} & {self.kernel_const(cb_only)}")
        return self.new_var(f"~{self.as_var(a)} & {self.as_var(b)}")

    def const(self, name: str) -> Val:
        return Val(consts=frozenset({name}))


def _theta_parities(b: Builder, s: list[Val]) -> list[Val]:
    return [b.xor(b.xor(b.xor(b.xor(s[x], s[x + 5]), s[x + 10]), s[x + 15]), s[x + 20]) for x in range(5)]


def _settle(b: Builder, v: Val) -> Val:
    """Fold a lazily carried constant into a lane that depends on the nonce.

    Constants carried lazily would fan out through theta into every lane (one XOR each);
    folding them in at the end of a round costs one XOR per lane that has one.
    """
    return Val(var=b.as_var(v)) if v.var is not None and (v.consts or v.lit) else v


def _round(
    b: Builder, s: list[Val], rc: int, *, last: bool, order: str = "acc", c: list[Val] | None = None
) -> tuple[list[Val], list[Val] | None]:
    """One round of Keccak-f[1600] on symbolic lanes; returns (lanes, next theta parities).

    ``order``: "rows" emits rho, pi and chi row by row of the output (fewer values live
    at once); "acc" also accumulates the next round's theta column parities as each
    output row is produced; "std" is the textbook order (all of rho/pi, then chi).
    """
    if c is None:
        c = _theta_parities(b, s)
    d = [b.xor(c[(x + 4) % 5], b.rot(c[(x + 1) % 5], 1)) for x in range(5)]
    if last:
        # Output lane 0 only: B[0,0] ^ (~B[1,0] & B[2,0]) ^ RC, from lanes (0,0), (1,1), (2,2).
        b0 = b.xor(s[0], d[0])
        b1 = b.rot(b.xor(s[6], d[1]), ROTATIONS[1][1])
        b2 = b.rot(b.xor(s[12], d[2]), ROTATIONS[2][2])
        return [b.xor(b.xor(b0, b.andn(b1, b2)), Val(lit=rc))], None
    out_s: list[Val] = [Val()] * 25
    if order == "std":
        bb: list[Val] = [Val()] * 25
        for x in range(5):
            for y in range(5):
                bb[y + 5 * ((2 * x + 3 * y) % 5)] = b.rot(b.xor(s[x + 5 * y], d[x]), ROTATIONS[x][y])
        for x in range(5):
            for y in range(5):
                i = x + 5 * y
                out_s[i] = b.xor(bb[i], b.andn(bb[(x + 1) % 5 + 5 * y], bb[(x + 2) % 5 + 5 * y]))
        out_s[0] = b.xor(out_s[0], Val(lit=rc))
        return [_settle(b, v) for v in out_s], None
    # Row by row: the five B lanes of output row y (rho and pi of lanes (x', x) with
    # x' = 3 (y - 3 x) mod 5), then chi on them, so that few values are live at once.
    c_next: list[Val] = []
    for y in range(5):
        row: list[Val] = []
        for x in range(5):
            src = (3 * (y - 3 * x)) % 5
            row.append(b.rot(b.xor(s[src + 5 * x], d[src]), ROTATIONS[src][x]))
        for x in range(5):
            lane = b.xor(row[x], b.andn(row[(x + 1) % 5], row[(x + 2) % 5]))
            if x == 0 and y == 0:
                lane = b.xor(lane, Val(lit=rc))
            out_s[x + 5 * y] = lane = _settle(b, lane)
            if order == "acc":
                c_next.append(lane) if y == 0 else c_next.__setitem__(x, b.xor(c_next[x], lane))
    return out_s, (c_next if order == "acc" else None)


def build(order: str = "acc") -> Builder:
    b = Builder()
    b.job_inputs = [f"s{i}" for i in range(10)]
    state: list[Val] = [Val()] * 25
    for i in range(10):
        state[i] = b.const(f"s{i}")
    state[16] = Val(lit=PAD_LANE_16)
    state[0] = b.xor(Val(var="n0"), state[0])  # n0: byte-swapped nonce high half << 32
    state[1] = b.xor(Val(var="n1"), state[1])  # n1: byte-swapped nonce low half
    c: list[Val] | None = None
    for r in range(23):
        state, c = _round(b, state, ROUND_CONSTANTS[r], last=False, order=order, c=c)
    (out,), _ = _round(b, state, ROUND_CONSTANTS[23], last=True, c=c)
    b.kernel.append(f"h0 = {b.as_var(out)}")
    return b


HEADER = '''\
"""GENERATED by kalepool.miner._codegen -- do not edit; regenerate with
``python -m kalepool.miner._codegen``. See that module for what this computes."""

# ruff: noqa
# mypy: ignore-errors
# fmt: off
from __future__ import annotations

import numpy as np
from numba import njit

from kalepool.miner.isa import simd_block

U = np.uint64
MASK64 = (1 << 64) - 1
BLOCK = {block}
N_JOB_CONSTANTS = {n_job}
M32 = U(0xFFFFFFFF)
M8 = U(0xFF)
M16H = U(0xFF00)
{rotations}
# NIBBLE_MASKS[k]: the bits of hash lane 0 holding the first k hex digits (k <= 16).
NIBBLE_MASKS = np.array({nibble_masks}, dtype=np.uint64)
RC = np.array({rc}, dtype=np.uint64)
ROT = np.array({rot}, dtype=np.int64)


def rotl64(x, n):
    n %= 64
    return ((x << n) | (x >> (64 - n))) & MASK64 if n else x


def job_constants(lanes):
    """The job constants the kernel needs, from the 10 preimage lanes (nonce bytes 0)."""
    {unpack} = (int(v) for v in lanes)
{job_body}
    return np.array([{job_list}], dtype=np.uint64)


@njit(cache=True, nogil=True)
def bswap64(x):
    x = ((x & U(0x00FF00FF00FF00FF)) << U(8)) | ((x >> U(8)) & U(0x00FF00FF00FF00FF))
    x = ((x & U(0x0000FFFF0000FFFF)) << U(16)) | ((x >> U(16)) & U(0x0000FFFF0000FFFF))
    return (x << U(32)) | (x >> U(32))


@njit(cache=True, nogil=True)
def zeros_of_words(words):
    """Leading zero hex digits of a hash given as little-endian 64-bit words."""
    z = 0
    for i in range(words.shape[0]):
        w = bswap64(words[i])
        if w == U(0):
            z += 16
            continue
        while (w >> U(60)) == U(0):
            z += 1
            w <<= U(4)
        break
    return z


@njit(cache=True, nogil=True)
def keccak_f1600(a):
    """In-place Keccak-f[1600] on 25 lanes (the plain reference permutation)."""
    c = np.empty(5, np.uint64)
    bb = np.empty(25, np.uint64)
    for r in range(24):
        for x in range(5):
            c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]
        for x in range(5):
            d = c[(x + 4) % 5] ^ ((c[(x + 1) % 5] << U(1)) | (c[(x + 1) % 5] >> U(63)))
            for y in range(5):
                a[x + 5 * y] ^= d
        for x in range(5):
            for y in range(5):
                n = ROT[x * 5 + y]
                v = a[x + 5 * y]
                if n:
                    v = (v << U(n)) | (v >> U(64 - n))
                bb[y + 5 * ((2 * x + 3 * y) % 5)] = v
        for y in range(5):
            for x in range(5):
                a[x + 5 * y] = bb[x + 5 * y] ^ (~bb[(x + 1) % 5 + 5 * y] & bb[(x + 2) % 5 + 5 * y])
        a[0] ^= RC[r]


@njit(cache=True, nogil=True)
def full_hash_words(lanes, nonce):
    """The four little-endian words of Keccak-256 of the preimage with ``nonce``."""
    a = np.zeros(25, np.uint64)
    for i in range(10):
        a[i] = lanes[i]
    hi = nonce >> U(32)
    lo = nonce & M32
    a[0] ^= bswap32(hi) << U(32)
    a[1] ^= bswap32(lo)
    a[16] = U(0x{pad16:016X})
    keccak_f1600(a)
    return a[:4].copy()


@njit(cache=True, nogil=True)
def bswap32(x):
    return ((x & M8) << U(24)) | ((x & M16H) << U(8)) | ((x >> U(8)) & M16H) | ((x >> U(24)) & M8)


@njit(cache=True, nogil=True, boundscheck=False)
def search_chunk(k, lanes, start, count, stop_zeros, res, out):
    """Best (most zeros, lowest nonce) over nonces start .. start+count-1.

    ``k``: the job constants, ``lanes``: the 10 preimage lanes (nonce bytes zero),
    ``count`` >= 1. Stops after the block of ``BLOCK`` nonces in which ``stop_zeros`` is
    reached. Writes ``res = [best nonce, best zeros, hashes done, lane 0 of the best
    hash]``. If ``out`` has room for ``count`` words, also stores lane 0 (hash bytes
    0..7, little-endian) of every nonce there (for tests; pass an empty array otherwise).
    """
{kernel_loads}
    buf = np.empty(BLOCK, np.uint64)
    keep = out.shape[0] >= count
    best = -1
    best_nonce = U(0)
    best_lane0 = U(0)
    mask = U(0)
    done = 0
    for blk in range((count + BLOCK - 1) // BLOCK):
        base = start + U(blk * BLOCK)
        # The hot loop: BLOCK independent nonces, vectorised by LLVM.
        for j in range(BLOCK):
            nonce = base + U(j)
            n0 = bswap32(nonce >> U(32)) << U(32)
            n1 = bswap32(nonce & M32)
{kernel_body}
            buf[j] = h0
        m = min(BLOCK, count - blk * BLOCK)
        for j in range(m):
            v = buf[j]
            if keep:
                out[blk * BLOCK + j] = v
            if (v & mask) == U(0):
                nonce = base + U(j)
                if v == U(0):
                    z = zeros_of_words(full_hash_words(lanes, nonce))
                else:
                    z = zeros_of_words(buf[j:j + 1])
                if z > best:
                    best = z
                    best_nonce = nonce
                    best_lane0 = v
                    mask = NIBBLE_MASKS[min(best + 1, 16)]
        done += m
        if best >= stop_zeros:
            break
    res[0] = best_nonce
    res[1] = U(best)  # count >= 1, so best >= 0
    res[2] = U(done)
    res[3] = best_lane0
'''


def _nibble_masks() -> list[int]:
    masks = []
    for k in range(17):
        m = 0
        for i in range(k):
            m |= (0xF0 if i % 2 == 0 else 0x0F) << (8 * (i // 2))
        masks.append(m)
    return masks


def generate(block: int | None = None, order: str = "acc") -> str:
    """The kernel module's source; ``block`` and ``order`` are for experiments only."""
    b = build(order)
    rot_amounts = sorted({n for row in ROTATIONS for n in row if n} | {1, 63})
    rot_amounts = sorted(set(rot_amounts) | {64 - n for n in rot_amounts})
    rotations = "\n".join(f"R{n} = U({n})" for n in rot_amounts)
    job_body = "\n".join(f"    {line}" for line in b.job)
    kernel_loads = "\n".join(f"    {name} = k[{i}]" for i, name in enumerate(b.used_job))
    kernel_body = "\n".join(f"            {line}" for line in b.kernel)
    return HEADER.format(
        block="simd_block()  # nonces per SIMD block: 8 with AVX-512, 4 with AVX2, 2 with SSE2"
        if block is None
        else block,
        n_job=len(b.used_job),
        rotations=rotations,
        nibble_masks="[" + ", ".join(f"0x{m:016X}" for m in _nibble_masks()) + "]",
        rc="[" + ", ".join(f"0x{c:016X}" for c in ROUND_CONSTANTS) + "]",
        rot="[" + ", ".join(str(ROTATIONS[x][y]) for x in range(5) for y in range(5)) + "]",
        unpack=", ".join(b.job_inputs),
        job_body=job_body or "    pass",
        job_list=", ".join(b.used_job),
        kernel_loads=kernel_loads or "    pass",
        kernel_body=kernel_body,
        pad16=PAD_LANE_16,
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = generate()
    if args == ["--check"]:
        same = KERNEL_PATH.read_text() == text
        print("up to date" if same else f"{KERNEL_PATH} is stale: regenerate it")
        return 0 if same else 1
    KERNEL_PATH.write_text(text)
    print(f"wrote {KERNEL_PATH} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
