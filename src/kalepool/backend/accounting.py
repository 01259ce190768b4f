"""The money rules of the pool, as pure integer functions (no I/O).

* :func:`stake_for`: the stake planted for a farmer: ⌊KALE × stake_bps / 10,000⌋ of the
  farmer's own KALE (the custodial balance less :func:`held_fees`, which belong to others).
* :func:`held_fees`, :func:`pooler_fees_held`, :func:`platform_fees_held`: fees taken
  from rewards that still sit in the custodial account (the payout worker sends them to
  the pooler's account and to ``backend.platform_wallet``).
* :func:`split_reward`: a harvest reward shared between the pooler, the platform and the
  farmer. Both shares are floored; the farmer keeps the remainder, so the rounding dust of
  both floors always stays with the farmer and the three parts add up to the reward exactly.
* :data:`CUSTODIAL_KINDS`: the journal kinds that move KALE in or out of the farmer's
  custodial account on chain. The other farmer kinds (fees, compensations) are claims
  between the pool's accounts, settled at payout: the KALE they name still sits in the
  custodial account. The reconciler compares the on-chain KALE balance with the sum of the
  custodial kinds alone. ``adjustment`` lines correct claims (a compensation reversed) and
  are not custodial; a correction of the custodial balance itself is a ``deposit`` or a
  ``payout``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kalepool.backend.enums import JournalKind

__all__ = [
    "BPS",
    "CUSTODIAL_KINDS",
    "Split",
    "held_fees",
    "platform_fees_held",
    "pooler_fees_held",
    "split_reward",
    "stake_for",
]

BPS = 10_000

#: Farmer journal kinds that change the custodial account's KALE balance on chain.
CUSTODIAL_KINDS: frozenset[JournalKind] = frozenset(
    {
        JournalKind.DEPOSIT,
        JournalKind.STAKE_BURNED,
        JournalKind.STAKE_RETURNED,
        JournalKind.REWARD,
        JournalKind.PAYOUT,
        JournalKind.PAYOUT_REVERSED,
        JournalKind.POOLER_FEE_SENT,
        JournalKind.PLATFORM_FEE_SENT,
        JournalKind.COMPENSATION_RECEIVED,
    }
)


def held_fees(kale_by_kind: Mapping[JournalKind, int]) -> int:
    """KALE in a farmer's custodial account that belongs to its pooler and the platform:
    the fees taken from its rewards, less those already sent to them.
    ``kale_by_kind``: the farmer's KALE journal summed per kind."""
    return pooler_fees_held(kale_by_kind) + platform_fees_held(kale_by_kind)


def pooler_fees_held(kale_by_kind: Mapping[JournalKind, int]) -> int:
    """The part of :func:`held_fees` that belongs to the pooler."""
    fees = kale_by_kind.get(JournalKind.POOLER_FEE, 0)
    return -(fees + kale_by_kind.get(JournalKind.POOLER_FEE_SETTLED, 0))


def platform_fees_held(kale_by_kind: Mapping[JournalKind, int]) -> int:
    """The part of :func:`held_fees` that belongs to the platform."""
    fees = kale_by_kind.get(JournalKind.PLATFORM_FEE, 0)
    return -(fees + kale_by_kind.get(JournalKind.PLATFORM_FEE_SETTLED, 0))


def _check(value: int, name: str, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < 0
        or (high is not None and value > high)
    ):
        bound = f" and at most {high}" if high is not None else ""
        raise ValueError(f"{name}: a non-negative integer{bound}, got {value!r}")
    return value


def stake_for(kale_balance: int, stake_bps: int) -> int:
    """⌊balance × stake_bps / 10,000⌋ stroops (0 for an empty account)."""
    return _check(kale_balance, "kale_balance") * _check(stake_bps, "stake_bps", BPS) // BPS


@dataclass(frozen=True)
class Split:
    reward: int
    pooler_share: int
    platform_fee: int
    farmer_reward: int


def split_reward(reward: int, pooler_bps: int, platform_bps: int) -> Split:
    """Share ``reward`` stroops: the pooler's ⌊R × pooler_bps / 10,000⌋, the platform's
    ⌊R × platform_bps / 10,000⌋ (capped at what is left after the pooler's), the farmer
    the rest (including the rounding dust)."""
    _check(reward, "reward")
    pooler = reward * _check(pooler_bps, "pooler_bps", BPS) // BPS
    platform = min(reward * _check(platform_bps, "platform_bps", BPS) // BPS, reward - pooler)
    return Split(reward, pooler, platform, reward - pooler - platform)
