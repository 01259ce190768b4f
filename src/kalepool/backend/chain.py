"""The chain as the backend sees it: one small protocol, plugged in at start-up.

The backend never imports stellar-sdk's RPC clients or the gateway directly; it calls a
:class:`Chain`. The Stellar gateway (``kalepool.stellar``) provides the real one; until it
is wired in, ``kalepool backend serve`` runs with :class:`UnavailableChain`, which answers
every call with :class:`ChainUnavailable` (HTTP 503), and the tests use a fake.

Every method is async. Amounts are stroops. A method either returns its outcome or raises
a :class:`ChainError` whose ``attributed_to`` says who a failure is blamed on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stellar_sdk import Keypair

from kalepool.backend.enums import Attribution
from kalepool.errors import KalePoolError

__all__ = [
    "AccountInfo",
    "Chain",
    "ChainError",
    "ChainHealth",
    "ChainUnavailable",
    "HarvestOutcome",
    "PailInfo",
    "PlantOutcome",
    "TrustlineOutcome",
    "UnavailableChain",
]


class ChainError(KalePoolError):
    """A chain call failed. ``code`` is machine-readable (e.g. a KALE contract error name)."""

    code = "chain_error"

    def __init__(
        self, message: str, *, code: str | None = None, attributed_to: Attribution = Attribution.CHAIN
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.attributed_to = attributed_to


class ChainUnavailable(ChainError):
    """The chain cannot be reached (RPC down, timeouts) or no gateway is configured."""

    code = "chain_unavailable"


@dataclass(frozen=True)
class ChainHealth:
    network_passphrase: str
    latest_ledger: int


@dataclass(frozen=True)
class AccountInfo:
    """A Stellar account as far as custody and funding care."""

    account_id: str
    exists: bool
    #: native balance, stroops
    xlm_balance: int = 0
    #: XLM the account must keep (base reserve x (2 + subentries)), stroops
    min_balance: int = 0
    #: KALE balance in stroops; ``None`` when there is no KALE trustline
    kale_balance: int | None = None

    @property
    def has_kale_trustline(self) -> bool:
        return self.kale_balance is not None

    @property
    def spendable_xlm(self) -> int:
        return max(0, self.xlm_balance - self.min_balance)


@dataclass(frozen=True)
class TrustlineOutcome:
    #: ``False`` when the trustline already existed (nothing was sent)
    created: bool
    tx_hash: str | None = None
    #: XLM fee charged, stroops
    fee_charged: int = 0


@dataclass(frozen=True)
class PlantOutcome:
    tx_hash: str
    #: the block the plant landed in (re-read after it applied: a plant can roll the farm over)
    block_index: int
    #: ``Block(index).entropy``, the 32 bytes the work hash is computed against
    entropy: bytes
    stake: int
    fee_charged: int = 0


@dataclass(frozen=True)
class PailInfo:
    """``Pail(farmer, index)`` read from the farm; ``gap``/``zeros`` are ``None`` before work."""

    farmer: str
    block_index: int
    sequence: int
    stake: int
    gap: int | None = None
    zeros: int | None = None


@dataclass(frozen=True)
class HarvestOutcome:
    tx_hash: str
    block_index: int
    #: the reward alone, read from the transaction result (the mint is reward + stake)
    reward: int
    stake_returned: int
    fee_charged: int = 0


@runtime_checkable
class Chain(Protocol):
    """What the backend needs from the chain. Implemented by the Stellar gateway."""

    async def health(self) -> ChainHealth:
        """The network the chain speaks and its latest ledger; raises ChainUnavailable."""
        ...

    async def account(self, account_id: str) -> AccountInfo:
        """The account's XLM and KALE balances (``exists=False`` when not created yet)."""
        ...

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        """Add the KALE trustline to the keypair's account if it lacks one."""
        ...

    async def plant(self, keypair: Keypair, amount: int) -> PlantOutcome:
        """``plant(farmer, amount)`` signed by the farmer; the block it landed in."""
        ...

    async def pail(self, farmer: str, block_index: int) -> PailInfo | None:
        """``Pail(farmer, index)``, or ``None`` when there is none (never planted, harvested)."""
        ...

    async def harvest(self, keypair: Keypair, block_index: int) -> HarvestOutcome:
        """``harvest(farmer, index)`` with the farmer's account as source (it pays the fee)."""
        ...


class UnavailableChain:
    """A :class:`Chain` with no network behind it: every call raises ChainUnavailable."""

    def __init__(self, reason: str = "no Stellar gateway is configured in this backend") -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"UnavailableChain({self.reason!r})"

    def _fail(self) -> ChainUnavailable:
        return ChainUnavailable(self.reason)

    async def health(self) -> ChainHealth:
        raise self._fail()

    async def account(self, account_id: str) -> AccountInfo:
        raise self._fail()

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        raise self._fail()

    async def plant(self, keypair: Keypair, amount: int) -> PlantOutcome:
        raise self._fail()

    async def pail(self, farmer: str, block_index: int) -> PailInfo | None:
        raise self._fail()

    async def harvest(self, keypair: Keypair, block_index: int) -> HarvestOutcome:
        raise self._fail()
