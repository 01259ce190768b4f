"""Reward maths of the farm contract (``kale-contract.md`` §5): fixed-point multiply,
block reward with decay, normalisation against a block's frozen ranges, and the reward.

All integers are exact; every floor is applied where the contract applies it. Where the
contract would trap (a host error that aborts the transaction, not a contract error)
these functions raise an :class:`ArithmeticError` subclass.
"""

from __future__ import annotations

from kalepool.kale.constants import (
    BLOCK_REWARD,
    BLOCK_SCALE,
    BLOCKS_PER_MONTH,
    I128_MAX,
    I128_MIN,
    INVERSE_DECAY_RATE,
    V2_GENESIS_BLOCK,
)
from kalepool.kale.errors import FarmError, FarmErrorCode
from kalepool.kale.types import Block, Pail, check_u32


class FixedPointTrap(ArithmeticError):
    """``fixed_mul_floor`` trapped: a zero denominator or a result outside i128."""


class IntegerOverflow(ArithmeticError):
    """A checked integer operation overflowed its Rust type (release builds trap)."""


def checked_i128(value: int, what: str = "value") -> int:
    """``value`` if it fits in i128, else :class:`IntegerOverflow`."""
    if not I128_MIN <= value <= I128_MAX:
        raise IntegerOverflow(f"{what}: i128 overflow ({value})")
    return value


def fixed_mul_floor(x: int, y: int, z: int) -> int:
    """⌊x·y / z⌋ rounded toward −∞, as soroban-fixed-point-math's i128 ``fixed_mul_floor``.

    Traps (:class:`FixedPointTrap`) when ``z == 0`` or the quotient does not fit in i128.
    The intermediate product may exceed i128 (the library widens to 256 bits then).
    """
    if z == 0:
        raise FixedPointTrap("fixed_mul_floor: division by zero")
    result = (x * y) // z
    if not I128_MIN <= result <= I128_MAX:
        raise FixedPointTrap(f"fixed_mul_floor: result {result} does not fit in i128")
    return result


def decay_periods(index: int) -> int:
    """Number of whole decay periods before block ``index`` (0 before V2 genesis)."""
    check_u32(index, "index")
    return max(index - V2_GENESIS_BLOCK, 0) // BLOCKS_PER_MONTH


def block_reward(index: int) -> int:
    """The base reward of block ``index`` in stroops: 5% less every 8,640 indexes from
    30,558, floored at each step (§5.2)."""
    factor = BLOCK_SCALE
    for _ in range(decay_periods(index)):
        factor = fixed_mul_floor(factor, INVERSE_DECAY_RATE, BLOCK_SCALE)
        if factor == 0:  # stays 0 from here on (after 538 periods)
            break
    return fixed_mul_floor(BLOCK_REWARD, factor, BLOCK_SCALE)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def normalize(block: Block, gap: int, stake: int, zeros: int) -> tuple[int, int, int]:
    """``(ng, ns, nz)``: gap, stake and zeros mapped linearly onto ``[1, S]`` against the
    block's frozen ranges, ``S`` being the widest range (§5.3).

    Raises ``FarmError(BLOCK_INVALID)`` (#12) when some max is below its min.
    """
    if (
        block.max_gap < block.min_gap
        or block.max_stake < block.min_stake
        or block.max_zeros < block.min_zeros
    ):
        raise FarmError(FarmErrorCode.BLOCK_INVALID)
    range_gap = max(block.max_gap - block.min_gap, 1)
    range_stake = max(block.max_stake - block.min_stake, 1)
    range_zeros = max(block.max_zeros - block.min_zeros, 1)
    scale = max(range_gap, range_stake, range_zeros)

    def scaled(value: int, low: int, high: int, span: int) -> int:
        return max(fixed_mul_floor(_clamp(value, low, high) - low, scale, span), 1)

    return (
        scaled(gap, block.min_gap, block.max_gap, range_gap),
        scaled(stake, block.min_stake, block.max_stake, range_stake),
        scaled(zeros, block.min_zeros, block.max_zeros, range_zeros),
    )


def contribution(block: Block, gap: int, stake: int, zeros: int) -> int:
    """``ng + ns + nz``: what one work adds to the block's ``normalized_total``."""
    return checked_i128(sum(normalize(block, gap, stake, zeros)), "contribution")


def reward(block: Block, pail: Pail, index: int) -> int:
    """The harvest reward of ``pail`` in block ``index``, excluding the stake (§3.5 step 8).

    ``⌊contribution · (R(index) + staked_total) / max(normalized_total, 1)⌋``. Raises
    ``FarmError(WORK_MISSING)`` (#10) for a pail that was planted but never worked.
    """
    if pail.gap is None or pail.zeros is None:
        raise FarmError(FarmErrorCode.WORK_MISSING)
    numerator = contribution(block, pail.gap, pail.stake, pail.zeros)
    pool = checked_i128(block_reward(index) + block.staked_total, "reward pool")
    return fixed_mul_floor(numerator, pool, max(block.normalized_total, 1))
