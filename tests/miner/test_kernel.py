"""The generated numba kernel against pycryptodome (``kalepool.kale.pow``), bit for bit."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kalepool.errors import ConfigError
from kalepool.kale import pow as kale_pow
from kalepool.miner import _codegen
from kalepool.miner import kernel as kern

from .conftest import C_FARM, G_KALE, G_NULL, V3_ENTROPY, random_job

pytestmark = pytest.mark.usefixtures("kernel_info")


def lane0(digest: bytes) -> int:
    return int.from_bytes(digest[:8], "little")


def brute_best(index: int, entropy: bytes, farmer: str, start: int, count: int) -> tuple[int, int]:
    """(nonce, zeros) of the best hash by the reference: most zeros, lowest nonce."""
    best = (-1, 0)
    for nonce in range(start, start + count):
        z = kale_pow.leading_zeros(kale_pow.work_hash(index, nonce, entropy, farmer))
        if z > best[0]:
            best = (z, nonce)
    return best[1], best[0]


def test_committed_kernel_matches_the_generator() -> None:
    assert _codegen.KERNEL_PATH.read_text() == _codegen.generate(), (
        "src/kalepool/miner/_kernel.py is stale: run `python -m kalepool.miner._codegen`"
    )


def test_generator_check_mode() -> None:
    assert _codegen.main(["--check"]) == 0


def test_spec_vectors() -> None:
    # kale-contract.md §7.2: V3 is the first nonce >= 0 with >= 5 zeros.
    job = kern.prepare(40000, V3_ENTROPY, G_NULL)
    assert kern.full_hash(job, 381821).hex() == (
        "00000c3c09f4d7fe8d312562ed006096a80ae653a102f7e9ab0a513332d4f0c6"
    )
    assert kern.search_chunk(job, 0, 381822)[:3] == (381821, 5, 381822)
    v1 = kern.prepare(0, bytes(32), G_KALE)
    assert kern.full_hash(v1, 0).hex() == "8199f325b1eed9cd56c39fe90537cf966f5c05820778aeb42daa4b82f4903e61"
    v2 = kern.prepare(
        30558, bytes.fromhex("0000000099be0037e5a48324959cb9dd10965ae59511cfd1996f9b917aad9980"), C_FARM
    )
    assert kern.full_hash(v2, 123456789).hex() == (
        "a514ba0e724df8b5bf36a709ee48bb244b2d7da3805be727491653edcbe1b931"
    )


def test_padded_block_layout() -> None:
    block = kern.padded_block(40000, V3_ENTROPY, G_NULL)
    assert len(block) == 136
    assert block[:76] == kale_pow.preimage(40000, 0, V3_ENTROPY, G_NULL)
    assert block[76] == 0x01 and block[135] == 0x80 and block[77:135] == bytes(58)


def test_one_thousand_random_preimages() -> None:
    rng = random.Random(20240505)
    for _ in range(1000):
        index, entropy, farmer = random_job(rng)
        nonce = rng.choice([rng.randrange(2**64), rng.randrange(2**32), rng.randrange(256)])
        job = kern.prepare(index, entropy, farmer)
        expected = kale_pow.work_hash(index, nonce, entropy, farmer)
        assert int(kern.hash_lane0(job, nonce, 1)[0]) == lane0(expected), (index, nonce, farmer)
        assert kern.full_hash(job, nonce) == expected
        got_nonce, zeros, done, got_lane0 = kern.search_chunk(job, nonce, 1)
        assert (got_nonce, zeros, done, got_lane0) == (
            nonce,
            kale_pow.leading_zeros(expected),
            1,
            lane0(expected),
        )


@pytest.mark.parametrize(
    "start,count",
    [
        (0, 600),  # from zero, many SIMD blocks and a ragged tail
        (2**32 - 300, 600),  # the high half of the nonce changes (lane 0 and lane 1 both move)
        (2**40 - 37, 77),  # a byte boundary inside the low word
        (2**56 - 5, 70),  # the top byte of the nonce changes
        (2**63 - 40, 80),  # the sign bit
        (2**64 - 300, 300),  # up to the very last nonce
        (2**64 - 1, 1),
    ],
)
def test_exhaustive_ranges(start: int, count: int) -> None:
    rng = random.Random(start)
    for index, entropy, farmer in [(40000, V3_ENTROPY, G_NULL), random_job(rng)]:
        job = kern.prepare(index, entropy, farmer)
        lanes = kern.hash_lane0(job, start, count)
        expected = [kale_pow.work_hash(index, n, entropy, farmer) for n in range(start, start + count)]
        assert [int(v) for v in lanes] == [lane0(h) for h in expected]
        nonce, zeros, done, best_lane0 = kern.search_chunk(job, start, count)
        assert (nonce, zeros) == brute_best(index, entropy, farmer, start, count)
        assert done == count
        assert best_lane0 == lane0(expected[nonce - start])


def test_every_chunk_length_and_offset_within_a_block() -> None:
    """Chunk lengths 1..3 blocks at every offset: the ragged tail never leaks or drops a nonce."""
    job = kern.prepare(7, V3_ENTROPY, C_FARM)
    block = kern.block_size()
    reference = [lane0(kale_pow.work_hash(7, n, V3_ENTROPY, C_FARM)) for n in range(5 * block)]
    for start in range(block):
        for count in range(1, 3 * block + 1):
            got = kern.hash_lane0(job, start, count)
            assert [int(v) for v in got] == reference[start : start + count]
            nonce, zeros, done, _ = kern.search_chunk(job, start, count)
            zs = [kale_pow.leading_zeros(struct.pack("<Q", v)) for v in reference[start : start + count]]
            assert zeros == max(zs) and nonce == start + zs.index(max(zs)) and done == count


def test_tie_goes_to_the_lowest_nonce() -> None:
    job = kern.prepare(40000, V3_ENTROPY, G_NULL)
    found_tie = False
    for start in range(0, 4000, 50):
        zs = [
            kale_pow.leading_zeros(kale_pow.work_hash(40000, n, V3_ENTROPY, G_NULL))
            for n in range(start, start + 50)
        ]
        top = max(zs)
        found_tie |= zs.count(top) > 1
        nonce, zeros, _, _ = kern.search_chunk(job, start, 50)
        assert (nonce, zeros) == (start + zs.index(top), top)
    assert found_tie  # the ranges above do contain ties


def test_stop_zeros_stops_after_the_block_that_reached_it() -> None:
    job = kern.prepare(40000, V3_ENTROPY, G_NULL)
    block = kern.block_size()
    nonce, zeros, done, _ = kern.search_chunk(job, 0, 1_000_000, stop_zeros=5)
    assert (nonce, zeros) == (381821, 5)
    assert done == (381821 // block + 1) * block
    # stop_zeros 0: the first block is enough
    assert kern.search_chunk(job, 0, 1000, stop_zeros=0)[2] == block


@given(st.integers(min_value=0, max_value=2**64 - 1))
@settings(max_examples=300, deadline=None)
def test_nibble_masks_select_leading_zero_digits(word: int) -> None:
    """(lane0 & NIBBLE_MASKS[k]) == 0 exactly when the hash starts with k zero digits."""
    mod = kern.kernel()
    zeros = kale_pow.leading_zeros(struct.pack("<Q", word))
    for k in range(17):
        assert ((word & int(mod.NIBBLE_MASKS[k])) == 0) == (zeros >= k)
    # leading zero digits in hash order (hash bytes are the word's little-endian bytes)
    for shift in (4, 28, 60):
        w = int.from_bytes((word >> shift).to_bytes(8, "big"), "little")
        z = kale_pow.leading_zeros(struct.pack("<Q", w))
        for k in range(17):
            assert ((w & int(mod.NIBBLE_MASKS[k])) == 0) == (z >= k)


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), min_size=4, max_size=4), st.integers(0, 3))
@settings(max_examples=200, deadline=None)
def test_zero_count_beyond_the_first_word(words: list[int], zero_words: int) -> None:
    """The rare path (16+ zeros) counts across words like the contract's rule."""
    mod = kern.kernel()
    words = [0] * zero_words + words[zero_words:]
    digest = struct.pack("<4Q", *words)
    assert mod.zeros_of_words(np.array(words, dtype=np.uint64)) == kale_pow.leading_zeros(digest)


def test_full_hash_of_an_all_zero_lane() -> None:
    assert kern.kernel().zeros_of_words(np.zeros(4, dtype=np.uint64)) == 64


def test_job_constants_depend_only_on_the_job() -> None:
    a = kern.prepare(1, V3_ENTROPY, G_NULL)
    b = kern.prepare(1, V3_ENTROPY, G_NULL)
    c = kern.prepare(2, V3_ENTROPY, G_NULL)
    assert np.array_equal(a.constants, b.constants)
    assert not np.array_equal(a.constants, c.constants)
    assert a.constants.shape == (kern.kernel().N_JOB_CONSTANTS,)


def test_bad_ranges_are_refused() -> None:
    job = kern.prepare(1, V3_ENTROPY, G_NULL)
    with pytest.raises(ValueError):
        kern.search_chunk(job, 2**64 - 1, 2)
    with pytest.raises(ValueError):
        kern.search_chunk(job, 0, 0)
    with pytest.raises(ValueError):
        kern.search_chunk(job, -1, 1)
    with pytest.raises(ValueError):
        kern.prepare(1, b"short", G_NULL)
    with pytest.raises(ValueError):
        kern.prepare(2**32, V3_ENTROPY, G_NULL)


def test_kernel_info(kernel_info: kern.KernelInfo) -> None:
    assert kernel_info.simd in {"avx512", "avx2", "avx", "sse2", "none"}
    assert kernel_info.cpu_target.startswith(kernel_info.cpu_name)
    assert kern.load() is kernel_info  # loaded once per process
    d = kernel_info.as_dict()
    assert {"cpu_name", "simd", "jit_seconds", "jit_cache_hit", "cpu_target"} <= d.keys()


def test_another_target_after_loading_is_a_config_error(kernel_info: kern.KernelInfo) -> None:
    other = "generic" if kernel_info.cpu_name != "generic" else "x86-64-v3"
    with pytest.raises(ConfigError):
        kern.load(other)


def test_full_width_vectors_on_avx512_hosts_only() -> None:
    assert kern.full_width_features("+avx2,-avx512f,+bmi2") is None
    assert kern.full_width_features("+avx2,+avx512f") == "+avx2,+avx512f,-prefer-256-bit"
    assert kern.full_width_features("+avx512f,-prefer-256-bit") is None


def test_probe_isa_knows_the_targets() -> None:
    assert kern.probe_isa("znver4", "") == ("avx512", 512)
    assert kern.probe_isa("x86-64-v3", "") == ("avx2", 256)
    assert kern.probe_isa("sandybridge", "") == ("avx", 256)
    assert kern.probe_isa("generic", "") == ("sse2", 128)
    assert kern.probe_isa("x86-64-v4", "-avx512f")[0] != "avx512"
