"""Reward maths against the spec: the decay table (§1), fixed_mul_floor (§5.1) and the
worked examples A–D (§5.4)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kalepool.kale import constants as c
from kalepool.kale.errors import FarmError, FarmErrorCode
from kalepool.kale.maths import (
    FixedPointTrap,
    block_reward,
    contribution,
    decay_periods,
    fixed_mul_floor,
    normalize,
    reward,
)
from kalepool.kale.types import Block, Pail

i128 = st.integers(min_value=c.I128_MIN, max_value=c.I128_MAX)


def make_block(
    gap: tuple[int, int] = (0, 0),
    stake: tuple[int, int] = (0, 0),
    zeros: tuple[int, int] = (0, 0),
    staked_total: int = 0,
    normalized_total: int = 0,
) -> Block:
    return Block(
        timestamp=0,
        min_gap=gap[0],
        max_gap=gap[1],
        min_stake=stake[0],
        max_stake=stake[1],
        min_zeros=zeros[0],
        max_zeros=zeros[1],
        entropy=bytes(32),
        staked_total=staked_total,
        normalized_total=normalized_total,
    )


def test_constants() -> None:
    assert c.BLOCK_INTERVAL == 300
    assert c.BLOCK_REWARD == 25_050_000_000
    assert c.BLOCKS_PER_MONTH == 8_640
    assert c.BLOCK_SCALE == 10**12
    assert c.DECAY_RATE == 50_000_000_000
    assert c.INVERSE_DECAY_RATE == 950_000_000_000
    assert c.WEEK_OF_LEDGERS == 120_960
    assert c.V2_GENESIS_BLOCK == 30_558
    assert c.STROOPS_PER_KALE == 10_000_000
    assert (c.U32_MAX, c.U64_MAX) == (2**32 - 1, 2**64 - 1)
    assert (c.I128_MIN, c.I128_MAX) == (-(2**127), 2**127 - 1)


DECAY_TABLE = [
    (0, 30_558, 25_050_000_000),
    (1, 39_198, 23_797_500_000),
    (2, 47_838, 22_607_625_000),
    (3, 56_478, 21_477_243_750),
    (4, 65_118, 20_403_381_562),
    (5, 73_758, 19_383_212_484),
    (6, 82_398, 18_414_051_860),
    (8, 99_678, 16_618_681_803),
    (12, 134_238, 13_536_020_195),
    (24, 237_918, 7_314_325_059),
    (60, 548_958, 1_154_048_464),
    (120, 1_067_358, 53_166_780),
]


@pytest.mark.parametrize(("period", "first", "expected"), DECAY_TABLE)
def test_decay_table(period: int, first: int, expected: int) -> None:
    assert first == c.V2_GENESIS_BLOCK + c.BLOCKS_PER_MONTH * period
    assert decay_periods(first) == period
    assert block_reward(first) == expected
    # constant over the whole period
    assert block_reward(first + c.BLOCKS_PER_MONTH - 1) == expected
    if period:
        assert block_reward(first - 1) > expected


@pytest.mark.parametrize("index", [0, 1, 37, 30_557])
def test_no_decay_before_v2_genesis(index: int) -> None:
    assert block_reward(index) == c.BLOCK_REWARD


def test_reward_reaches_zero_and_stays() -> None:
    assert block_reward(c.U32_MAX) == 0
    # ≈ 432.86 M KALE in total from V2 genesis (§1)
    total = 0
    period = 0
    while (r := block_reward(c.V2_GENESIS_BLOCK + c.BLOCKS_PER_MONTH * period)) > 0:
        total += r * c.BLOCKS_PER_MONTH
        period += 1
    assert period == 463
    assert round(total / c.STROOPS_PER_KALE / 1e6, 2) == 432.86
    # 8 periods ÷ 5 from tests/utils.rs, with the 501 base (§1)
    assert block_reward(c.V2_GENESIS_BLOCK + 8 * c.BLOCKS_PER_MONTH) // 5 == 3_323_736_360


# ------------------------------------------------------------ fixed_mul_floor


def test_fixed_mul_floor_basics() -> None:
    assert fixed_mul_floor(7, 3, 2) == 10
    assert fixed_mul_floor(-7, 3, 2) == -11  # toward −∞, not toward 0
    assert fixed_mul_floor(7, -3, 2) == -11
    assert fixed_mul_floor(0, c.I128_MAX, 1) == 0
    # the product may overflow i128 as long as the quotient fits
    assert fixed_mul_floor(c.I128_MAX, c.I128_MAX, c.I128_MAX) == c.I128_MAX
    assert fixed_mul_floor(c.I128_MIN, 1, 1) == c.I128_MIN


@pytest.mark.parametrize(
    ("x", "y", "z"),
    [
        (1, 1, 0),
        (0, 0, 0),
        (c.I128_MAX, 2, 1),
        (c.I128_MIN, 1, -1),
        (c.I128_MAX, c.I128_MAX, 2),
        (c.I128_MIN, 2, 1),
    ],
)
def test_fixed_mul_floor_traps(x: int, y: int, z: int) -> None:
    with pytest.raises(FixedPointTrap):
        fixed_mul_floor(x, y, z)
    assert issubclass(FixedPointTrap, ArithmeticError)


@given(i128, i128, i128.filter(bool))
def test_fixed_mul_floor_matches_exact_floor(x: int, y: int, z: int) -> None:
    exact = math.floor(Fraction(x * y, z))
    if c.I128_MIN <= exact <= c.I128_MAX:
        assert fixed_mul_floor(x, y, z) == exact
    else:
        with pytest.raises(FixedPointTrap):
            fixed_mul_floor(x, y, z)


@given(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=-(2**64), max_value=2**64).filter(bool),
)
def test_fixed_mul_floor_small_never_traps(x: int, y: int, z: int) -> None:
    assert fixed_mul_floor(x, y, z) == math.floor(Fraction(x * y, z))


# -------------------------------------------------------------- normalisation


def test_normalize_block_invalid() -> None:
    for bad in (
        make_block(gap=(5, 4)),
        make_block(stake=(1, 0)),
        make_block(zeros=(9, 8)),
    ):
        with pytest.raises(FarmError) as info:
            normalize(bad, 1, 1, 1)
        assert info.value.code is FarmErrorCode.BLOCK_INVALID


def test_normalize_clamps_and_floors_at_one() -> None:
    block = make_block(gap=(2, 40), stake=(0, 10**9), zeros=(5, 9))
    assert normalize(block, 2, 0, 5) == (1, 1, 1)  # at the minimum
    assert normalize(block, 0, -5, 0) == (1, 1, 1)  # below it
    assert normalize(block, 40, 10**9, 9) == (10**9, 10**9, 10**9)  # at the max: S
    assert normalize(block, 400, 10**12, 64) == (10**9, 10**9, 10**9)  # beyond: clamped


def test_normalize_zero_ranges_equal_split() -> None:
    block = make_block()
    assert normalize(block, 13, 10_000_000, 4) == (1, 1, 1)
    assert contribution(block, 3, 0, 3) == 3


# ------------------------------------------------------------------- examples


def test_example_a() -> None:
    block = make_block(
        gap=(0, 50),
        stake=(0, 1_234_747_261_419),
        zeros=(5, 10),
        staked_total=15_000_000,
        normalized_total=230_227_940_395_912,
    )
    assert normalize(block, 40, 10_000, 7) == (987_797_809_135, 10_000, 493_898_904_567)
    assert contribution(block, 40, 10_000, 7) == 1_481_696_723_702
    pail = Pail(sequence=1, gap=40, stake=10_000, zeros=7)
    assert reward(block, pail, 0) == 161_312_863


INDEX_B = 40_000


def block_b(staked_total: int = 0, normalized_total: int = 0) -> Block:
    """Example B's block: gap 2–40, stake 0–1,000,000,000, zeros 5–9."""
    return make_block(
        gap=(2, 40),
        stake=(0, 1_000_000_000),
        zeros=(5, 9),
        staked_total=staked_total,
        normalized_total=normalized_total,
    )


def test_example_b() -> None:
    assert block_reward(INDEX_B) == 23_797_500_000
    frozen = block_b()
    a = normalize(frozen, 30, 100_000_000, 8)
    b = normalize(frozen, 10, 0, 6)
    assert a == (736_842_105, 100_000_000, 750_000_000)
    assert b == (210_526_315, 1, 250_000_000)
    total = sum(a) + sum(b)
    assert total == 2_047_368_421
    # C planted 500,000,000 and never worked: its stake stays in staked_total
    block = block_b(500_000_000, total)
    ra = reward(block, Pail(1, 30, 100_000_000, 8), INDEX_B)
    rb = reward(block, Pail(1, 10, 0, 6), INDEX_B)
    assert ra == 18_832_124_033
    assert rb == 5_465_375_966
    assert ra + rb == 24_297_500_000 - 1
    with pytest.raises(FarmError) as info:
        reward(block, Pail(1, None, 500_000_000, None), INDEX_B)
    assert info.value.code is FarmErrorCode.WORK_MISSING


def test_example_c_rework_drift() -> None:
    frozen = block_b()
    first = contribution(frozen, 20, 100_000_000, 7)
    assert first == 1_073_684_210
    rework_add = contribution(frozen, 30, 100_000_000, 8)
    rework_sub = contribution(frozen, 30, 100_000_000, 7)  # old zeros at the NEW gap
    assert (rework_add, rework_sub) == (1_586_842_105, 1_336_842_105)
    total = first + contribution(frozen, 10, 0, 6) + rework_add - rework_sub
    assert total == 1_784_210_526
    block = block_b(500_000_000, total)
    ra = reward(block, Pail(1, 30, 100_000_000, 8), INDEX_B)
    rb = reward(block, Pail(1, 10, 0, 6), INDEX_B)
    assert (ra, rb) == (21_609_723_451, 6_271_478_617)
    assert ra + rb == 27_881_202_068 > 24_297_500_000


def test_example_d_genesis_equal_split() -> None:
    frozen = make_block()
    g1 = contribution(frozen, 3, 10_000_000, 3)
    g2 = contribution(frozen, 13, 0, 4)
    assert g1 == g2 == 3
    block = make_block(normalized_total=g1 + g2)
    assert reward(block, Pail(1, 3, 10_000_000, 3), 0) == 12_525_000_000
    assert reward(block, Pail(1, 13, 0, 4), 0) == 12_525_000_000


def test_reward_with_empty_normalized_total_uses_one() -> None:
    block = make_block(normalized_total=0)
    assert reward(block, Pail(1, 1, 0, 0), 0) == 3 * c.BLOCK_REWARD
