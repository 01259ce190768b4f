"""The chain as the backend sees it: one small protocol, plugged in at start-up.

The backend never calls stellar-sdk or the gateway directly from its services; it calls a
:class:`Chain`. :class:`kalepool.backend.stellar_chain.GatewayChain` implements it over the
Stellar gateway (``kalepool.stellar``); :class:`UnavailableChain` answers every call with
:class:`ChainUnavailable` (HTTP 503); the tests also use an in-memory fake.

Every method is async. Amounts are stroops. A method either returns its outcome or raises
a :class:`ChainError` whose ``code`` is machine-readable (``pail_exists``,
``insufficient_xlm``, ``network_error``...), whose ``attributed_to`` says who a failure is
blamed on, and which carries the transaction (hash, envelope, fee charged) when one was
signed.

**Intent before sending.** ``plant``, ``harvest`` and ``pay`` take ``on_signed(tx_hash,
envelope_xdr)``, awaited after signing and before anything is sent: the services record the
envelope there, so that after a crash :meth:`Chain.resume` follows that very transaction
instead of signing a second one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from stellar_sdk import Keypair

from kalepool.backend.enums import Attribution
from kalepool.errors import KalePoolError
from kalepool.kale.networks import NetworkFacts

__all__ = [
    "AccountInfo",
    "Chain",
    "ChainError",
    "ChainHealth",
    "ChainTxExpired",
    "ChainTxInDoubt",
    "ChainUnavailable",
    "FarmView",
    "HarvestOutcome",
    "OnSigned",
    "PailInfo",
    "PaymentOutcome",
    "PlantOutcome",
    "TrustlineOutcome",
    "UnavailableChain",
]

#: ``on_signed(tx_hash, envelope_xdr)``: awaited after signing, before sending.
OnSigned = Callable[[str, str], Awaitable[None]]


class ChainError(KalePoolError):
    """A chain call failed. ``code`` is machine-readable (e.g. ``pail_exists``).

    ``tx_hash``/``envelope_xdr`` name the transaction when one was signed; ``fee_charged``
    (stroops of XLM) is set when it was applied (failed transactions pay their fee too).
    """

    code = "chain_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        attributed_to: Attribution = Attribution.CHAIN,
        tx_hash: str | None = None,
        envelope_xdr: str | None = None,
        fee_charged: int | None = None,
        ledger: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.attributed_to = attributed_to
        self.tx_hash = tx_hash
        self.envelope_xdr = envelope_xdr
        self.fee_charged = fee_charged
        self.ledger = ledger


class ChainUnavailable(ChainError):
    """The chain cannot be reached (RPC down, timeouts) or no gateway is configured."""

    code = "chain_unavailable"


class ChainTxInDoubt(ChainError):
    """A transaction was (maybe) sent and its fate is unknown: resume it, never re-sign."""

    code = "tx_in_doubt"


class ChainTxExpired(ChainError):
    """A signed transaction can no longer be applied and never was: it may be signed anew."""

    code = "tx_expired"


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
class FarmView:
    """The farm as of ``latest_ledger``.

    ``entropy`` is ``Block(index).entropy`` (``None`` before the block's first plant);
    ``ripe``: the next plant rolls the farm over to ``index + 1``.
    """

    index: int
    entropy: bytes | None
    ripe: bool
    paused: bool
    latest_ledger: int
    close_time: int
    next_rollover_time: int | None = None
    #: when the current block started (``FarmBlock.timestamp``) and the network's interval
    block_start: int | None = None
    block_interval: int | None = None


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
    #: the block the plant landed in (read from the transaction: a plant can roll the farm over)
    block_index: int
    #: ``Block(index).entropy``, the 32 bytes the work hash is computed against
    entropy: bytes
    stake: int
    fee_charged: int = 0
    ledger: int = 0


@dataclass(frozen=True)
class PailInfo:
    """``Pail(farmer, index)`` read from the farm; ``gap``/``zeros`` are ``None`` before work."""

    farmer: str
    block_index: int
    sequence: int
    stake: int
    gap: int | None = None
    zeros: int | None = None
    #: the last ledger the (temporary) entry lives through
    live_until_ledger: int | None = None

    @property
    def worked(self) -> bool:
        return self.gap is not None and self.zeros is not None


@dataclass(frozen=True)
class HarvestOutcome:
    tx_hash: str
    block_index: int
    #: the reward alone, the transaction's return value (the mint is reward + stake)
    reward: int
    fee_charged: int = 0
    ledger: int = 0


@dataclass(frozen=True)
class PaymentOutcome:
    """A KALE (or XLM) payment from a custodial account, applied on chain."""

    tx_hash: str
    destination: str
    amount: int
    fee_charged: int = 0
    ledger: int = 0


@runtime_checkable
class Chain(Protocol):
    """What the backend needs from the chain. Implemented over the Stellar gateway."""

    async def health(self) -> ChainHealth:
        """The network the chain speaks and its latest ledger; raises ChainUnavailable."""
        ...

    async def account(self, account_id: str) -> AccountInfo:
        """The account's XLM and KALE balances (``exists=False`` when not created yet)."""
        ...

    async def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountInfo]:
        """:meth:`account` for many accounts at once (batched reads)."""
        ...

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        """Add the KALE trustline to the keypair's account if it lacks one."""
        ...

    async def farm(self) -> FarmView:
        """The farm's index, its block's entropy, ripeness, pause flag and latest ledger."""
        ...

    async def network(self) -> NetworkFacts:
        """What the network is, as learnt from it (once): the facts a pooler's must match."""
        ...

    async def block_entropy(self, block_index: int) -> bytes | None:
        """``Block(index).entropy``; ``None`` when the block does not exist (or expired)."""
        ...

    async def plant(
        self, keypair: Keypair, amount: int, *, on_signed: OnSigned | None = None
    ) -> PlantOutcome:
        """``plant(farmer, amount)`` signed by the farmer; the block it landed in."""
        ...

    async def pails(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], PailInfo | None]:
        """``Pail(farmer, index)`` for each pair; ``None`` when absent (never planted,
        harvested, expired)."""
        ...

    async def harvest(
        self, keypair: Keypair, block_index: int, *, on_signed: OnSigned | None = None
    ) -> HarvestOutcome:
        """``harvest(farmer, index)`` with the farmer's account as source (it pays the fee)."""
        ...

    async def resume(self, tx_hash: str, envelope_xdr: str) -> PlantOutcome | HarvestOutcome | None:
        """Follow a recorded, signed transaction to its end without signing anything.

        Returns the plant or harvest outcome (``None`` for another kind of transaction);
        raises :class:`ChainTxExpired` when it was never applied and can no longer be, or the
        classified failure it met.
        """
        ...

    async def pay(
        self, keypair: Keypair, destination: str, amount: int, *, on_signed: OnSigned | None = None
    ) -> PaymentOutcome:
        """Pay ``amount`` stroops of KALE from the keypair's account to ``destination``."""
        ...

    async def resume_payment(self, tx_hash: str, envelope_xdr: str) -> PaymentOutcome:
        """:meth:`resume` for a recorded payment transaction (never signs anything)."""
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

    async def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountInfo]:
        raise self._fail()

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        raise self._fail()

    async def farm(self) -> FarmView:
        raise self._fail()

    async def network(self) -> NetworkFacts:
        raise self._fail()

    async def block_entropy(self, block_index: int) -> bytes | None:
        raise self._fail()

    async def plant(
        self, keypair: Keypair, amount: int, *, on_signed: OnSigned | None = None
    ) -> PlantOutcome:
        raise self._fail()

    async def pails(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], PailInfo | None]:
        raise self._fail()

    async def harvest(
        self, keypair: Keypair, block_index: int, *, on_signed: OnSigned | None = None
    ) -> HarvestOutcome:
        raise self._fail()

    async def resume(self, tx_hash: str, envelope_xdr: str) -> PlantOutcome | HarvestOutcome | None:
        raise self._fail()

    async def pay(
        self, keypair: Keypair, destination: str, amount: int, *, on_signed: OnSigned | None = None
    ) -> PaymentOutcome:
        raise self._fail()

    async def resume_payment(self, tx_hash: str, envelope_xdr: str) -> PaymentOutcome:
        raise self._fail()
