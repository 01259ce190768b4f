"""``FarmGateway``: every chain read and action of the pool, over Soroban RPC.

Reads
    :meth:`~FarmGateway.farm_state` (instance + ``Block(index)`` + latest ledger),
    :meth:`~FarmGateway.pails` (many at once, 200 keys a request), :meth:`~FarmGateway.account`.
Actions
    :meth:`~FarmGateway.plant`, :meth:`~FarmGateway.work`, :meth:`~FarmGateway.harvest`,
    :meth:`~FarmGateway.ensure_trustline`, :meth:`~FarmGateway.pay`,
    :meth:`~FarmGateway.pay_many`; :meth:`~FarmGateway.resume` follows a recorded
    envelope after a restart.

Each action returns a typed outcome (:mod:`~kalepool.stellar.outcomes`) or raises a
classified error (:mod:`~kalepool.stellar.errors`, ``FarmError``/``TokenError``).

**The block a plant landed in.** ``plant`` returns nothing and takes no index: the block
is decided when the transaction is applied. The outcome's ``index`` is read from the
transaction's own ledger changes: the ``Pail(farmer, i)`` entry its meta shows created.
When an RPC sends a meta without entry changes it is read from the transaction's
read-write footprint instead, which on a network that enforces footprints (every real
one) names the only ``Pail`` key the transaction could have written.

**Races at a rollover.** A transaction simulated before a block rollover and applied
after it fails on its footprint (:class:`~kalepool.stellar.errors.RaceLost`). ``plant``
and ``harvest`` simulate again against the new state and retry once. ``work`` retries only
while the block it was mined for is still the farm's current block; otherwise it raises
``RaceLost`` (``index`` = that block): a work for a closed block can never land.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Self

import structlog
from stellar_sdk import Address, Asset, Keypair, StrKey, TransactionBuilder, TransactionEnvelope, scval
from stellar_sdk import xdr as sx
from stellar_sdk.operation import ChangeTrust, InvokeHostFunction
from stellar_sdk.operation import Payment as PaymentOp

from kalepool.errors import InvalidInput, NetworkMismatch
from kalepool.kale.amounts import amount_text, parse_amount
from kalepool.kale.errors import FarmError, FarmErrorCode
from kalepool.kale.networks import NetworkFacts, NetworkProfile
from kalepool.kale.pow import leading_zeros
from kalepool.kale.storage import (
    account_ledger_key,
    block_ledger_key,
    instance_ledger_key,
    pail_ledger_key,
    trustline_ledger_key,
)
from kalepool.kale.types import Block, FarmInstance, Pail, address_scval, check_u32, check_u64
from kalepool.settings import StellarSettings
from kalepool.stellar.decode import (
    account_state,
    contract_data_changes,
    pail_index_in_key,
    trustline_state,
)
from kalepool.stellar.errors import AccountNotFound, GatewayError, RaceLost
from kalepool.stellar.fees import FeeOracle, FeePolicy
from kalepool.stellar.outcomes import (
    AccountInfo,
    AssetName,
    FarmState,
    HarvestOutcome,
    PailState,
    Payment,
    PaymentOutcome,
    PlantOutcome,
    TrustlineOutcome,
    TxOutcome,
    WorkOutcome,
)
from kalepool.stellar.rpc import RpcClient
from kalepool.stellar.sequences import AccountLock
from kalepool.stellar.submit import (
    Executed,
    OnSigned,
    Pipeline,
    RpcSubmitter,
    Simulation,
    Submitter,
)

__all__ = ["DEFAULT_BASE_RESERVE", "MAX_PAYMENTS", "FarmGateway"]

log = structlog.get_logger(__name__)

#: Seconds between ledgers on the public networks (a devnet reports its own).
PUBLIC_LEDGER_SECONDS = 5.0
#: Base reserve (stroops) assumed when the RPC sends no ledger header.
DEFAULT_BASE_RESERVE = 5_000_000
#: Operations in one payout transaction.
MAX_PAYMENTS = 100
_HASH_LENGTH = 32


class FarmGateway:
    """The pool's client for one network: reads and actions on the KALE farm.

    Build it with :meth:`from_settings` (or directly, for tests), use it as an async
    context manager or call :meth:`close`. Safe for many concurrent actions: each
    source account's transactions are serialised, different accounts run in parallel.

    :param on_signed: awaited with ``(tx_hash, envelope_xdr)`` after each transaction is
        signed and before it is sent (record intent there; see :meth:`resume`).
    """

    def __init__(
        self,
        profile: NetworkProfile,
        *,
        rpc: RpcClient,
        fee_policy: FeePolicy | None = None,
        submitter: Submitter | None = None,
        tx_timeout: int = 60,
        poll_interval: float = 1.0,
        max_wait: float | None = None,
        fee_ttl: float = 5.0,
        on_signed: OnSigned | None = None,
    ) -> None:
        self.profile = profile
        self.rpc = rpc
        self.farm_id = profile.farm_contract_id
        self.token_id = profile.kale_sac_id
        self.kale = profile.kale_asset
        self.fees = FeeOracle(rpc.fee_stats, fee_policy or FeePolicy(), ttl=fee_ttl)
        self.direct = RpcSubmitter(
            rpc,
            poll_interval=poll_interval,
            max_wait=max_wait if max_wait is not None else 2 * tx_timeout + 30,
        )
        self.pipeline = Pipeline(
            rpc,
            passphrase=profile.passphrase,
            farm_id=self.farm_id,
            token_id=self.token_id,
            fees=self.fees,
            direct=self.direct,
            submitter=submitter,
            tx_timeout=tx_timeout,
            on_signed=on_signed,
        )
        self._last_index: int | None = None

    @classmethod
    def from_settings(
        cls,
        settings: StellarSettings,
        *,
        on_signed: OnSigned | None = None,
        submitter: Submitter | None = None,
    ) -> FarmGateway:
        """A gateway for ``settings.profile()``; with ``launchtube_url`` and
        ``launchtube_token`` set, contract calls go through Launchtube."""
        profile = settings.profile()
        rpc = RpcClient(profile.rpc_urls, timeout=settings.request_timeout)
        if submitter is None and settings.launchtube_url and settings.launchtube_token:
            from kalepool.stellar.launchtube import LaunchtubeSubmitter

            submitter = LaunchtubeSubmitter(
                settings.launchtube_url,
                settings.launchtube_token.get_secret_value(),
                rpc=rpc,
                timeout=max(settings.request_timeout, 45.0),  # it polls ~30 s itself
                poll_interval=settings.poll_interval,
            )
        return cls(
            profile,
            rpc=rpc,
            fee_policy=FeePolicy(settings.fee_percentile, settings.max_inclusion_fee),
            submitter=submitter,
            tx_timeout=settings.tx_timeout,
            poll_interval=settings.poll_interval,
            on_signed=on_signed,
        )

    def use_account_lock(self, lock: AccountLock | None) -> None:
        """Hold ``lock(account)`` (shared with other processes signing for the same
        accounts) around each transaction of an account, besides this process's own lock."""
        self.pipeline.sequences.external = lock

    async def close(self) -> None:
        close = getattr(self.pipeline.submitter, "close", None)
        if close is not None and self.pipeline.submitter is not self.direct:
            await close()
        await self.rpc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ==================================================================== reads

    async def farm_state(self) -> FarmState:
        """The farm's index, ``FarmBlock``, ``Block(index)``, paused flag and the latest
        ledger: one ``getLedgerEntries`` (instance plus the blocks at the last index seen
        and the next) alongside one ``getLatestLedger``; a second ``getLedgerEntries``
        only when the index moved further than that."""
        instance_key = instance_ledger_key(self.farm_id)
        keys = [instance_key]
        if self._last_index is not None:
            keys += [block_ledger_key(self.farm_id, self._last_index)]
            if self._last_index < 2**32 - 1:
                keys += [block_ledger_key(self.farm_id, self._last_index + 1)]
        (latest, entries), ledger = await asyncio.gather(
            self.rpc.ledger_entries(keys), self.rpc.latest_ledger()
        )
        instance_entry = entries.get(instance_key.to_xdr())
        if instance_entry is None:
            raise GatewayError(f"the farm contract {self.farm_id} does not exist on this network")
        instance = FarmInstance.from_instance_scval(_contract_value(instance_entry.xdr))
        index = instance.farm_index
        block_key = block_ledger_key(self.farm_id, index).to_xdr()
        if block_key not in {k.to_xdr() for k in keys}:
            more_latest, more = await self.rpc.ledger_entries([block_ledger_key(self.farm_id, index)])
            latest = max(latest, more_latest)
            entries.update(more)
        self._last_index = index
        block_entry = entries.get(block_key)
        return FarmState(
            index=index,
            farm_block=instance.farm_block,
            block=Block.from_scval(_contract_value(block_entry.xdr)) if block_entry else None,
            block_live_until=block_entry.live_until_ledger if block_entry else None,
            paused=instance.paused,
            latest_ledger=max(latest, ledger.sequence),
            close_time=ledger.close_time,
            block_interval=self.profile.block_interval,
        )

    async def pails(
        self, farmer_index_pairs: Iterable[tuple[str, int]]
    ) -> dict[tuple[str, int], PailState | None]:
        """``Pail(farmer, index)`` for every pair (None where absent or expired), with
        each entry's ``liveUntilLedgerSeq``; requests of up to 200 keys, in parallel."""
        pairs = list(dict.fromkeys((f, check_u32(i, "index")) for f, i in farmer_index_pairs))
        keys = {pair: pail_ledger_key(self.farm_id, *pair) for pair in pairs}
        _, entries = await self.rpc.ledger_entries(list(keys.values()))
        out: dict[tuple[str, int], PailState | None] = {}
        for pair, key in keys.items():
            entry = entries.get(key.to_xdr())
            out[pair] = (
                PailState(
                    farmer=pair[0],
                    index=pair[1],
                    pail=Pail.from_scval(_contract_value(entry.xdr)),
                    live_until_ledger=entry.live_until_ledger,
                    last_modified_ledger=entry.last_modified_ledger,
                )
                if entry is not None
                else None
            )
        return out

    async def account(self, address: str) -> AccountInfo:
        """Existence, XLM balance and spendable XLM above the reserve, and the KALE
        trustline of a G... account (one ``getLedgerEntries`` + ``getLatestLedger``)."""
        account_key = account_ledger_key(address)
        line_key = trustline_ledger_key(address, self.profile.kale_code, self.profile.kale_issuer)
        (latest, entries), ledger = await asyncio.gather(
            self.rpc.ledger_entries([account_key, line_key]), self.rpc.latest_ledger()
        )
        acct = entries.get(account_key.to_xdr())
        line = entries.get(line_key.to_xdr())
        if acct is None:
            return AccountInfo(address, False, 0, 0, 0, False, 0, 0, 0, False, latest)
        state = account_state(acct.xdr)
        reserve = ledger.base_reserve or DEFAULT_BASE_RESERVE
        tl = trustline_state(line.xdr) if line is not None else None
        return AccountInfo(
            address=address,
            exists=True,
            sequence=state.sequence,
            xlm_balance=state.balance,
            xlm_spendable=state.spendable(reserve),
            kale_trustline=tl is not None,
            kale_balance=tl.balance if tl else 0,
            kale_spendable=tl.spendable if tl else 0,
            kale_limit=tl.limit if tl else 0,
            kale_authorized=tl.authorized if tl else False,
            latest_ledger=latest,
        )

    async def farm_index(self) -> int:
        """Only ``FarmIndex`` (one ``getLedgerEntries``)."""
        key = instance_ledger_key(self.farm_id)
        _, entries = await self.rpc.ledger_entries([key])
        entry = entries.get(key.to_xdr())
        if entry is None:
            raise GatewayError(f"the farm contract {self.farm_id} does not exist on this network")
        return FarmInstance.from_instance_scval(_contract_value(entry.xdr)).farm_index

    async def learn_network(self) -> NetworkFacts:
        """Ask the network what it is, check it against the profile, and adopt its timing.

        The passphrase comes from ``getNetwork``; a kalepool devnet also reports its
        contracts, block interval and ledger time (``devnet_info``), a public network's
        come from its profile. The farm contract must exist. The profile's block interval
        is then the network's, so :meth:`farm_state` judges ripeness as the network does.
        Raises :class:`~kalepool.errors.NetworkMismatch` when the RPC serves another
        network than the profile names, a ``NetworkError`` when it cannot be reached.
        """
        profile = self.profile
        here = f"the {profile.name} profile"
        there = f"the RPC at {self.rpc.current_url}"
        passphrase = await self.rpc.network_passphrase()
        if passphrase != profile.passphrase:
            raise NetworkMismatch("passphrase", profile.passphrase, passphrase, here=here, there=there)
        interval, ledger_seconds = profile.block_interval, PUBLIC_LEDGER_SECONDS
        info = await self.rpc.devnet_info()
        if info is not None:
            for fact, ours in (("farm_contract_id", self.farm_id), ("kale_sac_id", self.token_id)):
                if getattr(info, fact) != ours:
                    raise NetworkMismatch(fact, ours, getattr(info, fact), here=here, there=there)
            interval, ledger_seconds = info.block_interval, info.ledger_seconds
        await self.farm_index()  # the farm contract is there
        self.profile = dataclasses.replace(profile, block_interval=interval)
        return NetworkFacts(
            network=profile.name,
            passphrase=passphrase,
            farm_contract_id=self.farm_id,
            kale_sac_id=self.token_id,
            block_interval=interval,
            ledger_seconds=ledger_seconds,
        )

    # ================================================================== actions

    async def plant(
        self,
        farmer_signer: Keypair,
        amount: int,
        *,
        source_signer: Keypair | None = None,
        on_signed: OnSigned | None = None,
    ) -> PlantOutcome:
        """Stake ``amount`` stroops of KALE (0 allowed) for the farmer in the current block.

        The farmer is the transaction source and signs the envelope; with
        ``source_signer`` another account pays and is the source, and the farmer signs
        an address-credential auth entry instead. A race lost at a rollover is retried
        once (a plant always targets the current block). Raises ``FarmError``
        (``PAIL_EXISTS``, ``FARM_PAUSED``, ``PLANT_AMOUNT_TOO_LOW``...) or ``TokenError``
        (no trustline, balance too low) from the contract that raised it.
        """
        farmer = farmer_signer.public_key
        source = source_signer or farmer_signer
        auth = {farmer: farmer_signer} if source.public_key != farmer else {}
        args = [address_scval(farmer), scval.to_int128(_i128(amount, "amount"))]

        async def attempt() -> Executed:
            return await self.pipeline.invoke(
                source, self.farm_id, "plant", args, auth=auth, on_signed=on_signed
            )

        try:
            executed = await attempt()
        except RaceLost as race:
            log.info("plant.race_lost_retry", farmer=farmer, tx_hash=race.tx_hash)
            executed = await attempt()
        outcome = self._outcome(executed)
        assert isinstance(outcome, PlantOutcome)
        return outcome

    async def work(
        self,
        source_signer: Keypair,
        farmer: str,
        nonce: int,
        hash: bytes,
        *,
        index: int | None = None,
        on_signed: OnSigned | None = None,
    ) -> WorkOutcome:
        """Submit the farmer's proof of work, paid by ``source_signer`` (no farmer auth).

        ``index`` is the block the hash was mined for (the preimage binds it): when the
        farm has moved past it the work is not sent (or not retried) and
        :class:`RaceLost` is raised with ``index`` set. Without ``index``, the block the
        first simulation targeted plays that role for a retry.
        """
        check_u64(nonce, "nonce")
        if not isinstance(hash, bytes | bytearray) or len(hash) != _HASH_LENGTH:
            raise InvalidInput("hash", "expected exactly 32 bytes")
        if index is not None:
            check_u32(index, "index")
        args = [address_scval(farmer), scval.to_bytes(bytes(hash)), scval.to_uint64(nonce)]

        async def attempt(target: int | None) -> Executed:
            def check(sim: Simulation) -> None:
                got = _pail_index(sim.read_write, farmer)
                if target is not None and got is not None and got != target:
                    raise RaceLost(
                        f"block {target} is closed (the farm is at block {got}); work not sent",
                        index=target,
                    )

            try:
                return await self.pipeline.invoke(
                    source_signer, self.farm_id, "work", args, check=check, on_signed=on_signed
                )
            except FarmError as err:
                # A work simulated after its block closed fails on the new block's state.
                if target is not None and err.code in (
                    FarmErrorCode.PAIL_MISSING,
                    FarmErrorCode.HASH_INVALID,
                ):
                    current = await self.farm_index()
                    if current != target:
                        raise RaceLost(
                            f"block {target} is closed (the farm is at block {current}); "
                            f"work not sent ({err.name})",
                            index=target,
                        ) from err
                raise

        try:
            executed = await attempt(index)
        except RaceLost as race:
            if race.tx is None:
                raise  # declined before sending: the block is closed
            target = index if index is not None else _envelope_pail_index(race.tx.envelope_xdr, farmer)
            current = await self.farm_index()
            if target is not None and current != target:
                raise RaceLost(
                    f"work for block {target} lost the rollover race (the farm is at block "
                    f"{current}); a work for a closed block cannot be retried",
                    index=target,
                    tx=race.tx,
                ) from race
            log.info("work.race_lost_retry", farmer=farmer, index=target, tx_hash=race.tx_hash)
            executed = await attempt(target)
        outcome = self._outcome(executed)
        assert isinstance(outcome, WorkOutcome)
        return outcome

    async def harvest(
        self,
        source_signer: Keypair,
        farmer: str,
        index: int,
        *,
        on_signed: OnSigned | None = None,
    ) -> HarvestOutcome:
        """Harvest the farmer's pail of block ``index`` (paid by ``source_signer``; the
        reward and stake are minted to the farmer). ``reward`` excludes the stake."""
        check_u32(index, "index")
        args = [address_scval(farmer), scval.to_uint32(index)]

        async def attempt() -> Executed:
            return await self.pipeline.invoke(
                source_signer, self.farm_id, "harvest", args, on_signed=on_signed
            )

        try:
            executed = await attempt()
        except RaceLost as race:
            if race.tx is None:
                raise
            log.info("harvest.race_lost_retry", farmer=farmer, index=index, tx_hash=race.tx_hash)
            executed = await attempt()
        outcome = self._outcome(executed)
        assert isinstance(outcome, HarvestOutcome)
        return outcome

    async def ensure_trustline(
        self,
        account_signer: Keypair,
        *,
        limit: int | None = None,
        on_signed: OnSigned | None = None,
    ) -> TrustlineOutcome:
        """Add the account's KALE trustline unless it exists (``limit`` None: maximum)."""
        address = account_signer.public_key
        info = await self.account(address)
        if not info.exists:
            raise AccountNotFound(address)
        if info.kale_trustline:
            return TrustlineOutcome(address, created=False)
        amount = None if limit is None else _sdk_amount(_positive(limit, "limit"))
        executed = await self.pipeline.classic(
            account_signer,
            lambda b: b.append_change_trust_op(asset=self.kale, limit=amount),
            on_signed=on_signed,
        )
        outcome = self._outcome(executed)
        assert isinstance(outcome, TrustlineOutcome)
        return outcome

    async def pay(
        self,
        source_signer: Keypair,
        destination: str,
        amount: int,
        *,
        asset: AssetName = "XLM",
        memo: str | None = None,
        on_signed: OnSigned | None = None,
    ) -> PaymentOutcome:
        """Pay ``amount`` stroops of XLM or KALE to ``destination``."""
        if asset not in ("XLM", "KALE"):
            raise InvalidInput("asset", f"expected 'XLM' or 'KALE', got {asset!r}")
        payment = Payment(destination, amount, "KALE" if asset == "KALE" else "XLM")
        return await self.pay_many(source_signer, [payment], memo=memo, on_signed=on_signed)

    async def pay_many(
        self,
        source_signer: Keypair,
        payments: Sequence[Payment],
        *,
        memo: str | None = None,
        on_signed: OnSigned | None = None,
    ) -> PaymentOutcome:
        """Up to 100 payments in one transaction: all are applied or none is (a failed
        one raises ``TxFailed`` whose ``op_codes`` say which)."""
        payments = _checked(payments, "payments", ("XLM", "KALE"))
        if memo is not None and len(memo.encode()) > 28:
            raise InvalidInput("memo", "at most 28 bytes")

        def build(builder: TransactionBuilder) -> None:
            for p in payments:
                asset = self.kale if p.asset == "KALE" else Asset.native()
                builder.append_payment_op(p.destination, asset, _sdk_amount(p.amount))
            if memo is not None:
                builder.add_text_memo(memo)

        executed = await self.pipeline.classic(source_signer, build, on_signed=on_signed)
        outcome = self._outcome(executed)
        assert isinstance(outcome, PaymentOutcome)
        return outcome

    async def create_accounts(
        self, source_signer: Keypair, accounts: Sequence[Payment], *, on_signed: OnSigned | None = None
    ) -> TxOutcome:
        """Create up to 100 accounts in one transaction, each with ``amount`` stroops of XLM
        paid by ``source_signer`` (all are created or none is)."""
        accounts = _checked(accounts, "accounts", ("XLM",))

        def build(builder: TransactionBuilder) -> None:
            for a in accounts:
                builder.append_create_account_op(a.destination, _sdk_amount(a.amount))

        executed = await self.pipeline.classic(source_signer, build, on_signed=on_signed)
        outcome = self._outcome(executed)
        assert isinstance(outcome, TxOutcome)
        return outcome

    async def resume(
        self, tx_hash: str, envelope_xdr: str
    ) -> PlantOutcome | WorkOutcome | HarvestOutcome | PaymentOutcome | TrustlineOutcome | TxOutcome:
        """Follow a transaction recorded by ``on_signed`` (after a restart, or after
        :class:`~kalepool.stellar.errors.TxInDoubt`) without signing anything: poll by
        hash, re-send the same envelope while it is not found and can still apply.

        Returns the same typed outcome the action would have returned, or raises its
        classified failure; :class:`~kalepool.stellar.errors.TxExpired` means it was
        never applied and the action may be signed again.
        """
        executed = await self.pipeline.resume(tx_hash, envelope_xdr)
        return self._outcome(executed)

    # ================================================================ internals

    def _outcome(
        self, executed: Executed
    ) -> PlantOutcome | WorkOutcome | HarvestOutcome | PaymentOutcome | TrustlineOutcome | TxOutcome:
        """The typed outcome of an applied transaction, from its envelope and meta."""
        result = executed.result
        base = (executed.signed.tx_hash, result.ledger, result.fee_charged)
        envelope = executed.envelope or TransactionEnvelope.from_xdr(
            executed.signed.envelope_xdr, self.profile.passphrase
        )
        ops = envelope.transaction.operations
        call = _farm_call(envelope, self.farm_id)
        if call is not None:
            function, args = call
            farmer = scval.from_address(args[0]).address
            if function == "plant":
                index = self._written_pail_index(executed, envelope, farmer)
                return PlantOutcome(*base, farmer=farmer, index=index, stake=scval.from_int128(args[1]))
            if function == "work":
                index = self._written_pail_index(executed, envelope, farmer)
                gap = _u32_or_none(result.return_value)
                if gap is None:
                    raise GatewayError(f"work {executed.signed.tx_hash}: no u32 gap in the result")
                zeros = leading_zeros(scval.from_bytes(args[1]))
                return WorkOutcome(*base, farmer=farmer, index=index, gap=gap, zeros=zeros)
            if function == "harvest":
                ret = result.return_value
                if ret is None or ret.type != sx.SCValType.SCV_I128:
                    raise GatewayError(f"harvest {executed.signed.tx_hash}: no i128 reward in the result")
                return HarvestOutcome(
                    *base, farmer=farmer, index=scval.from_uint32(args[1]), reward=scval.from_int128(ret)
                )
        if ops and all(isinstance(op, PaymentOp) for op in ops):
            payments = tuple(
                Payment(
                    op.destination.account_id,
                    parse_amount(op.amount),
                    "XLM" if op.asset.is_native() else "KALE",
                )
                for op in ops
                if isinstance(op, PaymentOp)
            )
            return PaymentOutcome(*base, payments=payments)
        if len(ops) == 1 and isinstance(ops[0], ChangeTrust):
            source = ops[0].source.account_id if ops[0].source else envelope.transaction.source.account_id
            return TrustlineOutcome(source, created=True, tx=TxOutcome(*base))
        return TxOutcome(*base)

    def _written_pail_index(self, executed: Executed, envelope: TransactionEnvelope, farmer: str) -> int:
        """The index of the Pail the successful transaction wrote: the one in its
        read-write footprint (a transaction whose footprint missed the Pail it writes
        fails), else the one its meta shows written (decoding the meta costs more)."""
        data = envelope.transaction.soroban_data
        if data is not None:
            found = _pail_index(data.resources.footprint.read_write, farmer)
            if found is not None:
                return found
        meta = executed.result.meta
        if meta is not None:
            for change in contract_data_changes(meta.changes, self.farm_id):
                if change.kind in ("created", "updated") and change.temporary:
                    found = pail_index_in_key(change.key, farmer)
                    if found is not None:
                        return found
        raise GatewayError(f"{executed.signed.tx_hash}: cannot tell which Pail the transaction wrote")


# ------------------------------------------------------------------- helpers


def _contract_value(entry_xdr: str) -> sx.SCVal:
    data = sx.LedgerEntryData.from_xdr(entry_xdr)
    if data.contract_data is None:
        raise GatewayError(f"expected a contract-data entry, got {data.type.name}")
    return data.contract_data.val


def _pail_index(keys: Iterable[sx.LedgerKey], farmer: str) -> int | None:
    for key in keys:
        if key.contract_data is not None:
            found = pail_index_in_key(key.contract_data.key, farmer)
            if found is not None:
                return found
    return None


def _envelope_pail_index(envelope_xdr: str, farmer: str) -> int | None:
    envelope = sx.TransactionEnvelope.from_xdr(envelope_xdr)
    if envelope.v1 is None:
        return None
    ext = envelope.v1.tx.ext
    if ext.soroban_data is None:
        return None
    return _pail_index(ext.soroban_data.resources.footprint.read_write, farmer)


def _farm_call(envelope: TransactionEnvelope, farm_id: str) -> tuple[str, list[sx.SCVal]] | None:
    ops = envelope.transaction.operations
    if len(ops) != 1 or not isinstance(ops[0], InvokeHostFunction):
        return None
    fn = ops[0].host_function
    if fn.invoke_contract is None:
        return None
    ic = fn.invoke_contract
    if Address.from_xdr_sc_address(ic.contract_address).address != farm_id:
        return None
    return ic.function_name.sc_symbol.decode(), list(ic.args)


def _u32_or_none(value: sx.SCVal | None) -> int | None:
    if value is None or value.type != sx.SCValType.SCV_U32:
        return None
    return scval.from_uint32(value)


def _i128(value: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not -(2**127) <= value < 2**127:
        raise InvalidInput(field, f"expected an i128 integer, got {value!r}")
    return value


def _checked(items: Sequence[Payment], name: str, assets: tuple[str, ...]) -> tuple[Payment, ...]:
    """``items`` if 1 to 100 valid payments (G... destinations, positive amounts, ``assets``)."""
    items = tuple(items)
    if not 1 <= len(items) <= MAX_PAYMENTS:
        raise InvalidInput(name, f"between 1 and {MAX_PAYMENTS} {name}, got {len(items)}")
    for i, p in enumerate(items):
        if not StrKey.is_valid_ed25519_public_key(p.destination):
            raise InvalidInput(f"{name}[{i}].destination", f"{p.destination!r} is not a G... account")
        _positive(p.amount, f"{name}[{i}].amount")
        if p.asset not in assets:
            expected = " or ".join(map(repr, assets))
            raise InvalidInput(f"{name}[{i}].asset", f"expected {expected}, got {p.asset!r}")
    return items


def _positive(value: int, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**63:
        raise InvalidInput(field, f"expected a positive int64 amount of stroops, got {value!r}")
    return value


def _sdk_amount(stroops: int) -> str:
    """Stroops as the SDK's 7-decimal amount string."""
    return amount_text(stroops, grouping=False)
