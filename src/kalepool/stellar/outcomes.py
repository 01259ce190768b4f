"""Typed values the gateway returns: chain reads and action outcomes.

Amounts are integer stroops; ledgers are sequence numbers; times are ledger close
times in Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kalepool.kale.types import Block, Pail

__all__ = [
    "AccountInfo",
    "FarmState",
    "HarvestOutcome",
    "PailState",
    "Payment",
    "PaymentOutcome",
    "PlantOutcome",
    "TrustlineOutcome",
    "TxOutcome",
    "WorkOutcome",
]

AssetName = Literal["XLM", "KALE"]

# ---------------------------------------------------------------------- reads


@dataclass(frozen=True, slots=True)
class FarmState:
    """The farm as of ``latest_ledger`` (closed at ``close_time``).

    ``index`` is ``FarmIndex`` (0 when absent); ``farm_block`` the running accumulator
    of the current block (``FarmBlock``: its ``timestamp`` is when the block started and
    its ``entropy`` only the *candidate* next entropy); ``block`` is ``Block(index)``,
    whose ``entropy`` is what miners hash against (None before the block's first plant,
    or once expired), alive until ledger ``block_live_until``.
    """

    index: int
    farm_block: Block | None
    block: Block | None
    block_live_until: int | None
    paused: bool
    latest_ledger: int
    close_time: int
    block_interval: int

    @property
    def entropy(self) -> bytes | None:
        """The entropy to mine against: ``Block(index).entropy``."""
        return self.block.entropy if self.block is not None else None

    @property
    def block_start(self) -> int | None:
        """When the current block started (``FarmBlock.timestamp``)."""
        return self.farm_block.timestamp if self.farm_block is not None else None

    @property
    def next_rollover_time(self) -> int | None:
        """The first close time at which a plant opens block ``index + 1``."""
        start = self.block_start
        return None if start is None else start + self.block_interval

    @property
    def ripe(self) -> bool:
        """Whether the next plant rolls the farm over to a new block."""
        due = self.next_rollover_time
        return due is not None and self.close_time >= due


@dataclass(frozen=True, slots=True)
class PailState:
    """``Pail(farmer, index)`` as stored, and the last ledger it lives through."""

    farmer: str
    index: int
    pail: Pail
    live_until_ledger: int | None
    last_modified_ledger: int

    @property
    def worked(self) -> bool:
        return self.pail.worked


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """A classic account's XLM and KALE position.

    ``xlm_spendable`` is the balance above the minimum reserve and selling liabilities;
    the ``kale_*`` fields are 0 / False when there is no KALE trustline.
    """

    address: str
    exists: bool
    sequence: int
    xlm_balance: int
    xlm_spendable: int
    kale_trustline: bool
    kale_balance: int
    kale_spendable: int
    kale_limit: int
    kale_authorized: bool
    latest_ledger: int


# -------------------------------------------------------------------- actions


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment of a payout: ``amount`` stroops of XLM or KALE to ``destination``."""

    destination: str
    amount: int
    asset: AssetName = "XLM"


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """A transaction applied successfully: its hash, ledger and the fee it cost."""

    tx_hash: str
    ledger: int
    fee_charged: int


@dataclass(frozen=True, slots=True)
class PlantOutcome(TxOutcome):
    """``plant``: the block ``index`` the stake actually landed in (read from the
    transaction's own ledger changes), and the ``stake`` burnt."""

    farmer: str
    index: int
    stake: int


@dataclass(frozen=True, slots=True)
class WorkOutcome(TxOutcome):
    """``work``: the block ``index`` worked, the ``gap`` the contract returned (ledgers
    between plant and work) and the hash's leading zero nibbles."""

    farmer: str
    index: int
    gap: int
    zeros: int


@dataclass(frozen=True, slots=True)
class HarvestOutcome(TxOutcome):
    """``harvest``: the ``reward`` the contract returned; ``reward + stake`` was minted."""

    farmer: str
    index: int
    reward: int


@dataclass(frozen=True, slots=True)
class PaymentOutcome(TxOutcome):
    """A payment transaction (one or up to 100 operations), all applied together."""

    payments: tuple[Payment, ...]


@dataclass(frozen=True, slots=True)
class TrustlineOutcome:
    """``ensure_trustline``: ``created`` False when the trustline already existed
    (then no transaction was sent and ``tx`` is None)."""

    account: str
    created: bool
    tx: TxOutcome | None = None
