"""``GatewayChain``: the backend's :class:`~kalepool.backend.chain.Chain` over the Stellar gateway.

It adapts :class:`kalepool.stellar.FarmGateway` to the backend's vocabulary: outcomes become
the backend's dataclasses and every failure becomes a :class:`ChainError` with a stable
``code`` and an attribution (farmer / chain / backend), carrying the transaction it
concerns (hash, envelope, fee charged) when there is one.

Error codes: farm contract errors are their names in snake case (``pail_exists``,
``farm_paused``, ``pail_missing``, ``work_missing``, ``harvest_not_ready``,
``block_missing``...); the KALE token's ``TrustlineMissing`` is ``no_trustline`` and
``BalanceError`` ``insufficient_kale`` (both the farmer's); ``account_not_found`` and
``txINSUFFICIENT_BALANCE`` (``insufficient_xlm``) are the farmer's too; the network's are
``network_error`` / ``rpc_timeout`` (:class:`ChainUnavailable`), ``tx_in_doubt``,
``tx_expired``, ``race_lost``, ``bad_sequence``, ``tx_rejected``, ``tx_failed``, ``tx_throttled``,
``simulation_failed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from stellar_sdk import Keypair
from stellar_sdk import xdr as sx

from kalepool.backend.chain import (
    AccountInfo,
    ChainError,
    ChainHealth,
    ChainTxExpired,
    ChainTxInDoubt,
    ChainUnavailable,
    FarmView,
    HarvestOutcome,
    OnSigned,
    PailInfo,
    PaymentOutcome,
    PlantOutcome,
    TrustlineOutcome,
)
from kalepool.backend.enums import Attribution
from kalepool.errors import InvalidInput, NetworkMismatch
from kalepool.kale.errors import FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.kale.networks import NetworkFacts
from kalepool.kale.storage import account_ledger_key, block_ledger_key, trustline_ledger_key
from kalepool.kale.types import Block
from kalepool.settings import StellarSettings
from kalepool.stellar import (
    AccountNotFound,
    FarmGateway,
    GatewayError,
    NetworkError,
    RaceLost,
    RpcTimeout,
    SimulationFailed,
    TxExpired,
    TxFailed,
    TxInDoubt,
    TxRejected,
    TxThrottled,
    attempt_of,
)
from kalepool.stellar import HarvestOutcome as GatewayHarvest
from kalepool.stellar import PaymentOutcome as GatewayPayment
from kalepool.stellar import PlantOutcome as GatewayPlant
from kalepool.stellar.decode import account_state, trustline_state
from kalepool.stellar.gateway import DEFAULT_BASE_RESERVE
from kalepool.stellar.sequences import AccountLock

__all__ = ["GatewayChain", "learn_network", "translate_error"]

_F, _C, _B = Attribution.FARMER, Attribution.CHAIN, Attribution.BACKEND
_ENTROPY_CACHE = 1_024

_FARM_BLAME = {FarmErrorCode.PLANT_AMOUNT_TOO_LOW: _B}
_TOKEN_CODES = {
    TokenErrorCode.TRUSTLINE_MISSING: ("no_trustline", _F, "the custodial account has no KALE trustline"),
    TokenErrorCode.BALANCE_ERROR: ("insufficient_kale", _F, "the custodial account holds too little KALE"),
    TokenErrorCode.BALANCE_DEAUTHORIZED: ("kale_deauthorized", _F, "the KALE trustline is not authorized"),
}
_REJECTED = {
    "txINSUFFICIENT_BALANCE": ("insufficient_xlm", _F, "the custodial account cannot pay the XLM fee"),
    "txNO_ACCOUNT": ("account_not_found", _F, "the custodial account does not exist on chain"),
    "txBAD_SEQ": ("bad_sequence", _C, "another transaction used the account's sequence number"),
}


def translate_error(exc: BaseException) -> ChainError:
    """The backend's :class:`ChainError` for an exception the gateway raised."""
    tx = attempt_of(exc)
    extra: dict[str, object] = {}
    if tx is not None:
        extra = {
            "tx_hash": tx.tx_hash,
            "envelope_xdr": tx.envelope_xdr,
            "fee_charged": tx.fee_charged,
            "ledger": tx.ledger,
        }
    text = str(exc) or type(exc).__name__

    def error(cls: type[ChainError], code: str, blame: Attribution, message: str = text) -> ChainError:
        return cls(message, code=code, attributed_to=blame, **extra)  # type: ignore[arg-type]

    if isinstance(exc, FarmError):
        code = FarmErrorCode(exc.code)
        return error(ChainError, code.name.lower(), _FARM_BLAME.get(code, _C), f"farm contract: {text}")
    if isinstance(exc, TokenError):
        known = _TOKEN_CODES.get(TokenErrorCode(exc.code))
        if known is not None:
            return error(ChainError, known[0], known[1], f"{known[2]} ({text})")
        return error(ChainError, f"token_{TokenErrorCode(exc.code).name.lower()}", _C, f"KALE token: {text}")
    if isinstance(exc, AccountNotFound):
        return error(ChainError, "account_not_found", _F, "the custodial account does not exist on chain")
    if isinstance(exc, TxRejected):
        known = _REJECTED.get(exc.result_code)
        if known is not None:
            return error(ChainError, known[0], known[1], f"{known[2]} ({exc.result_code})")
        return error(ChainError, "tx_rejected", _C)
    if isinstance(exc, TxInDoubt):
        return error(ChainTxInDoubt, "tx_in_doubt", _C)
    if isinstance(exc, TxExpired):
        return error(ChainTxExpired, "tx_expired", _C)
    if isinstance(exc, RaceLost):
        return error(ChainError, "race_lost", _C)
    if isinstance(exc, TxThrottled):
        return error(ChainError, "tx_throttled", _C)
    if isinstance(exc, TxFailed):
        return error(ChainError, "tx_failed", _C)
    if isinstance(exc, SimulationFailed):
        return error(ChainError, "simulation_failed", _C)
    if isinstance(exc, RpcTimeout):
        return error(ChainUnavailable, "rpc_timeout", _C)
    if isinstance(exc, NetworkError):
        return error(ChainUnavailable, "network_error", _C)
    if isinstance(exc, GatewayError):
        return error(ChainError, "gateway_error", _C)
    if isinstance(exc, InvalidInput):
        return error(ChainError, "invalid_input", _B)
    return error(ChainError, "internal_error", _B)


@asynccontextmanager
async def _translated() -> AsyncIterator[None]:
    try:
        yield
    except ChainError:
        raise
    except (GatewayError, FarmError, TokenError, InvalidInput) as exc:
        raise translate_error(exc) from exc


def learn_network(settings: StellarSettings) -> NetworkFacts:
    """What the configured RPC's network is (its own event loop and gateway: for a check
    before a server starts). Raises :class:`~kalepool.errors.NetworkMismatch` when it is
    not the network the settings name, a :class:`ChainError` when it cannot be read."""

    async def learn() -> NetworkFacts:
        async with FarmGateway.from_settings(settings) as gateway, _translated():
            return await gateway.learn_network()

    return asyncio.run(learn())


class GatewayChain:
    """:class:`~kalepool.backend.chain.Chain` over a :class:`FarmGateway` (one per process)."""

    def __init__(self, gateway: FarmGateway) -> None:
        self.gateway = gateway
        self._entropy: dict[int, bytes] = {}  # Block(i).entropy never changes once created
        self._facts: NetworkFacts | None = None
        self._learning = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: StellarSettings) -> GatewayChain:
        return cls(FarmGateway.from_settings(settings))

    def __repr__(self) -> str:
        return f"GatewayChain({self.gateway.profile.name}, {self.gateway.rpc.current_url})"

    async def aclose(self) -> None:
        await self.gateway.close()

    def use_account_lock(self, lock: AccountLock | None) -> None:
        """Sign for each account under ``lock(account)`` too (shared between processes)."""
        self.gateway.use_account_lock(lock)

    # ---------------------------------------------------------------------- reads

    async def health(self) -> ChainHealth:
        async with _translated():
            ledger = await self.gateway.rpc.latest_ledger()
        return ChainHealth(self.gateway.profile.passphrase, ledger.sequence)

    async def account(self, account_id: str) -> AccountInfo:
        async with _translated():
            info = await self.gateway.account(account_id)
        if not info.exists:
            return AccountInfo(account_id, exists=False)
        return AccountInfo(
            account_id,
            exists=True,
            xlm_balance=info.xlm_balance,
            min_balance=info.xlm_balance - info.xlm_spendable,
            kale_balance=info.kale_balance if info.kale_trustline else None,
        )

    async def accounts(self, account_ids: Iterable[str]) -> dict[str, AccountInfo]:
        """Every account and its KALE trustline in batched ``getLedgerEntries`` (200 keys a
        request) plus one ``getLatestLedger`` for the base reserve."""
        ids = list(dict.fromkeys(account_ids))
        if not ids:
            return {}
        profile = self.gateway.profile
        keys = {
            a: (account_ledger_key(a), trustline_ledger_key(a, profile.kale_code, profile.kale_issuer))
            for a in ids
        }
        async with _translated():
            (_, entries), ledger = await asyncio.gather(
                self.gateway.rpc.ledger_entries([k for pair in keys.values() for k in pair]),
                self.gateway.rpc.latest_ledger(),
            )
        reserve = ledger.base_reserve or DEFAULT_BASE_RESERVE
        out: dict[str, AccountInfo] = {}
        for address, (account_key, line_key) in keys.items():
            account = entries.get(account_key.to_xdr())
            if account is None:
                out[address] = AccountInfo(address, exists=False)
                continue
            state = account_state(account.xdr)
            line = entries.get(line_key.to_xdr())
            out[address] = AccountInfo(
                address,
                exists=True,
                xlm_balance=state.balance,
                min_balance=state.balance - state.spendable(reserve),
                kale_balance=trustline_state(line.xdr).balance if line is not None else None,
            )
        return out

    async def network(self) -> NetworkFacts:
        """Learnt from the network on first use (the block interval the farm's ripeness
        is judged with included), then remembered. A network other than the settings
        name raises :class:`~kalepool.errors.NetworkMismatch`."""
        async with self._learning:
            if self._facts is None:
                try:
                    async with _translated():
                        self._facts = await self.gateway.learn_network()
                except NetworkMismatch as exc:  # this backend's settings: nothing can work
                    raise ChainUnavailable(str(exc), code="network_mismatch", attributed_to=_B) from exc
            return self._facts

    async def farm(self) -> FarmView:
        await self.network()
        async with _translated():
            state = await self.gateway.farm_state()
        if state.block is not None:
            self._remember(state.index, state.block.entropy)
        return FarmView(
            index=state.index,
            entropy=state.entropy,
            ripe=state.ripe,
            paused=state.paused,
            latest_ledger=state.latest_ledger,
            close_time=state.close_time,
            next_rollover_time=state.next_rollover_time,
            block_start=state.block_start,
            block_interval=state.block_interval,
        )

    async def block_entropy(self, block_index: int) -> bytes | None:
        cached = self._entropy.get(block_index)
        if cached is not None:
            return cached
        key = block_ledger_key(self.gateway.farm_id, block_index)
        async with _translated():
            _, entries = await self.gateway.rpc.ledger_entries([key])
        entry = entries.get(key.to_xdr())
        if entry is None:
            return None
        data = sx.LedgerEntryData.from_xdr(entry.xdr)
        assert data.contract_data is not None
        entropy = Block.from_scval(data.contract_data.val).entropy
        self._remember(block_index, entropy)
        return entropy

    def _remember(self, block_index: int, entropy: bytes) -> None:
        self._entropy[block_index] = entropy
        if len(self._entropy) > _ENTROPY_CACHE:  # blocks live a day: keep the recent ones
            for old in sorted(self._entropy)[: len(self._entropy) - _ENTROPY_CACHE]:
                del self._entropy[old]

    async def pails(self, pairs: Iterable[tuple[str, int]]) -> dict[tuple[str, int], PailInfo | None]:
        wanted = list(dict.fromkeys(pairs))
        if not wanted:
            return {}
        async with _translated():
            states = await self.gateway.pails(wanted)
        out: dict[tuple[str, int], PailInfo | None] = {}
        for pair in wanted:
            state = states.get(pair)
            out[pair] = (
                None
                if state is None
                else PailInfo(
                    farmer=pair[0],
                    block_index=pair[1],
                    sequence=state.pail.sequence,
                    stake=state.pail.stake,
                    gap=state.pail.gap,
                    zeros=state.pail.zeros,
                    live_until_ledger=state.live_until_ledger,
                )
            )
        return out

    # -------------------------------------------------------------------- actions

    async def ensure_trustline(self, keypair: Keypair) -> TrustlineOutcome:
        async with _translated():
            outcome = await self.gateway.ensure_trustline(keypair)
        if not outcome.created or outcome.tx is None:
            return TrustlineOutcome(created=False)
        return TrustlineOutcome(created=True, tx_hash=outcome.tx.tx_hash, fee_charged=outcome.tx.fee_charged)

    async def plant(
        self, keypair: Keypair, amount: int, *, on_signed: OnSigned | None = None
    ) -> PlantOutcome:
        async with _translated():
            outcome = await self.gateway.plant(keypair, amount, on_signed=on_signed)
        return await self._plant_outcome(outcome)

    async def harvest(
        self, keypair: Keypair, block_index: int, *, on_signed: OnSigned | None = None
    ) -> HarvestOutcome:
        async with _translated():
            outcome = await self.gateway.harvest(
                keypair, keypair.public_key, block_index, on_signed=on_signed
            )
        return _harvest_outcome(outcome)

    async def resume(self, tx_hash: str, envelope_xdr: str) -> PlantOutcome | HarvestOutcome | None:
        async with _translated():
            outcome = await self.gateway.resume(tx_hash, envelope_xdr)
        if isinstance(outcome, GatewayPlant):
            return await self._plant_outcome(outcome)
        if isinstance(outcome, GatewayHarvest):
            return _harvest_outcome(outcome)
        return None

    async def pay(
        self, keypair: Keypair, destination: str, amount: int, *, on_signed: OnSigned | None = None
    ) -> PaymentOutcome:
        async with _translated():
            outcome = await self.gateway.pay(keypair, destination, amount, asset="KALE", on_signed=on_signed)
        return _payment_outcome(outcome)

    async def resume_payment(self, tx_hash: str, envelope_xdr: str) -> PaymentOutcome:
        async with _translated():
            outcome = await self.gateway.resume(tx_hash, envelope_xdr)
        if not isinstance(outcome, GatewayPayment):
            raise ChainError(f"{tx_hash} is not a payment", code="not_a_payment", attributed_to=_B)
        return _payment_outcome(outcome)

    async def _plant_outcome(self, outcome: GatewayPlant) -> PlantOutcome:
        entropy = await self.block_entropy(outcome.index)
        if entropy is None:  # the block a plant just wrote cannot be missing
            raise ChainError(
                f"Block({outcome.index}) is missing right after a plant",
                code="block_missing",
                tx_hash=outcome.tx_hash,
                fee_charged=outcome.fee_charged,
            )
        return PlantOutcome(
            tx_hash=outcome.tx_hash,
            block_index=outcome.index,
            entropy=entropy,
            stake=outcome.stake,
            fee_charged=outcome.fee_charged,
            ledger=outcome.ledger,
        )


def _harvest_outcome(outcome: GatewayHarvest) -> HarvestOutcome:
    return HarvestOutcome(
        tx_hash=outcome.tx_hash,
        block_index=outcome.index,
        reward=outcome.reward,
        fee_charged=outcome.fee_charged,
        ledger=outcome.ledger,
    )


def _payment_outcome(outcome: GatewayPayment) -> PaymentOutcome:
    if len(outcome.payments) != 1:
        raise ChainError(
            f"payment {outcome.tx_hash} has {len(outcome.payments)} operations, expected 1",
            code="not_a_payment",
            attributed_to=_B,
            tx_hash=outcome.tx_hash,
            fee_charged=outcome.fee_charged,
        )
    payment = outcome.payments[0]
    return PaymentOutcome(
        tx_hash=outcome.tx_hash,
        destination=payment.destination,
        amount=payment.amount,
        fee_charged=outcome.fee_charged,
        ledger=outcome.ledger,
    )
