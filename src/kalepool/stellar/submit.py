"""The transaction pipeline: simulate → assemble → sign → record → send → poll.

:class:`Pipeline` turns "call ``function`` on ``contract`` from ``source``" into an
applied transaction or a classified failure, holding the source account's lock (see
:mod:`~kalepool.stellar.sequences`) from the sequence read to the final status:

1. read the sequence (cached), the latest ledger (its close time, or this machine's
   clock if later, bounds the transaction: ``maxTime = that + tx_timeout``) and the fee
   bid;
2. simulate; sign the address-credential auth entries the simulation asks for with the
   signers given (``stellar_sdk.auth.authorize_entry``) and simulate again with them;
3. assemble (footprint, resource fee, auth) and sign the envelope;
4. call ``on_signed(tx_hash, envelope_xdr)`` **before** anything is sent, so the caller
   can record its intent;
5. hand the envelope to a :class:`Submitter`, which sends it and follows it to its end.

A sent transaction is never replaced by one signed with a new sequence number before
its fate is known: a send whose answer is lost is followed by hash (the same envelope
re-sent while it is not found, which is idempotent), and one that cannot be followed
leaves its account *in doubt* until a later action or :meth:`Pipeline.resume` has
learnt what became of it.

Submitters: :class:`RpcSubmitter` (``sendTransaction`` + ``getTransaction`` with
TRY_AGAIN_LATER backoff) and ``LaunchtubeSubmitter`` (:mod:`~kalepool.stellar.launchtube`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, TypeVar

import structlog
from stellar_sdk import (
    Account,
    Address,
    FeeBumpTransactionEnvelope,
    Keypair,
    TransactionBuilder,
    TransactionEnvelope,
)
from stellar_sdk import soroban_rpc as wire
from stellar_sdk import xdr as sx
from stellar_sdk.auth import authorize_entry
from stellar_sdk.operation import InvokeHostFunction
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from kalepool.errors import InvalidInput
from kalepool.kale.errors import ContractError
from kalepool.kale.storage import account_ledger_key
from kalepool.stellar.decode import (
    MetaInfo,
    ResultInfo,
    account_state,
    contract_error,
    decode_events,
    decode_meta,
    decode_result,
    event_errors,
    footprint,
    host_error,
    is_race_failure,
    parse_error_text,
)
from kalepool.stellar.errors import (
    AccountNotFound,
    GatewayError,
    NetworkError,
    RaceLost,
    SimulationFailed,
    TxAttempt,
    TxExpired,
    TxFailed,
    TxInDoubt,
    TxRejected,
    TxThrottled,
    attach_attempt,
)
from kalepool.stellar.fees import FeeOracle
from kalepool.stellar.rpc import RpcClient
from kalepool.stellar.sequences import AccountSlot, SequenceManager

__all__ = [
    "Executed",
    "OnSigned",
    "Pipeline",
    "RpcSubmitter",
    "SignedTx",
    "Simulation",
    "Submitter",
    "TxResult",
]

log = structlog.get_logger(__name__)

A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
S = TypeVar("S")

#: ``on_signed(tx_hash, envelope_xdr)``: awaited after signing, before sending.
OnSigned = Callable[[str, str], Awaitable[None]]

#: Polls of one transaction slow down by this factor, up to ``poll_interval`` × the cap.
POLL_BACKOFF = 1.5
POLL_BACKOFF_CAP = 4.0
#: How many ledgers a signed auth entry stays valid beyond the transaction's window.
AUTH_LEDGER_MARGIN = 20
#: Transactions built anew after a ``txBAD_SEQ`` refusal, per action.
BAD_SEQ_REBUILDS = 1


# ------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A signed envelope and what following it needs: its source account and sequence
    number, and ``max_time`` (its upper time bound; None when unbounded)."""

    tx_hash: str
    envelope_xdr: str
    source: str
    sequence: int
    max_time: int | None

    def attempt(self, ledger: int | None = None, fee_charged: int | None = None) -> TxAttempt:
        return TxAttempt(self.tx_hash, self.envelope_xdr, ledger, fee_charged)

    @classmethod
    def from_envelope(cls, envelope: TransactionEnvelope | FeeBumpTransactionEnvelope) -> SignedTx:
        inner = (
            envelope.transaction.inner_transaction_envelope
            if isinstance(envelope, FeeBumpTransactionEnvelope)
            else envelope
        )
        tx = inner.transaction
        bounds = tx.preconditions.time_bounds if tx.preconditions else None
        max_time = bounds.max_time if bounds is not None and bounds.max_time else None
        return cls(
            tx_hash=envelope.hash_hex(),
            envelope_xdr=envelope.to_xdr(),
            source=tx.source.account_id,
            sequence=tx.sequence,
            max_time=max_time,
        )

    @classmethod
    def parse(cls, envelope_xdr: str, passphrase: str, tx_hash: str | None = None) -> SignedTx:
        """Rebuild from a recorded envelope; ``tx_hash``, if given, must be its hash."""
        try:
            envelope = TransactionBuilder.from_xdr(envelope_xdr, passphrase)
        except Exception as exc:
            raise InvalidInput("envelope_xdr", f"not a transaction envelope: {exc}") from exc
        signed = cls.from_envelope(envelope)
        if tx_hash is not None and tx_hash.lower() != signed.tx_hash:
            raise InvalidInput("tx_hash", f"{tx_hash} is not the hash of this envelope on this network")
        return signed


@dataclass(frozen=True)
class TxResult:
    """A transaction in a ledger: ``success`` or not, with its decoded result and meta.

    The meta (``meta_xdr``, or ``decoded_meta`` when a relay gave only its parts) is
    decoded on first use, and the diagnostic events (the RPC's ``diagnosticEventsXdr``
    and the meta's) too: a plant needs neither, only failures need the events.
    """

    tx_hash: str
    success: bool
    ledger: int
    result: ResultInfo
    decoded_meta: MetaInfo | None = None
    events_xdr: tuple[str, ...] = ()
    meta_xdr: str | None = None

    @cached_property
    def meta(self) -> MetaInfo | None:
        if self.decoded_meta is not None:
            return self.decoded_meta
        return decode_meta(self.meta_xdr) if self.meta_xdr else None

    @property
    def fee_charged(self) -> int:
        return self.result.fee_charged

    @property
    def return_value(self) -> sx.SCVal | None:
        return self.meta.return_value if self.meta is not None else None

    @cached_property
    def events(self) -> tuple[sx.DiagnosticEvent, ...]:
        events = decode_events(self.events_xdr)
        if self.meta is not None:  # the meta's own, unless the RPC listed the same already
            seen = set(self.events_xdr)
            events.extend(e for e in self.meta.diagnostic_events if e.to_xdr() not in seen)
        return tuple(events)

    @classmethod
    def from_parts(
        cls,
        tx_hash: str,
        ledger: int,
        result_xdr: str,
        meta_xdr: str | None,
        events_xdr: Sequence[str] | None = None,
        *,
        success: bool | None = None,
    ) -> TxResult:
        result = decode_result(result_xdr)
        return cls(
            tx_hash=tx_hash,
            success=result.success if success is None else success,
            ledger=ledger,
            result=result,
            events_xdr=tuple(events_xdr or ()),
            meta_xdr=meta_xdr or None,
        )

    @classmethod
    def from_rpc(cls, response: wire.GetTransactionResponse) -> TxResult:
        if response.result_xdr is None or response.ledger is None:
            raise GatewayError(f"getTransaction {response.status.value} without a result")
        return cls.from_parts(
            response.transaction_hash,
            response.ledger,
            response.result_xdr,
            response.result_meta_xdr,
            response.diagnostic_events_xdr,
            success=response.status == wire.GetTransactionStatus.SUCCESS,
        )


@dataclass(frozen=True, slots=True)
class Simulation:
    """A successful simulation: the response, its footprint and the simulated result."""

    response: wire.SimulateTransactionResponse
    read_only: tuple[sx.LedgerKey, ...]
    read_write: tuple[sx.LedgerKey, ...]

    @property
    def return_value(self) -> sx.SCVal | None:
        results = self.response.results or []
        return sx.SCVal.from_xdr(results[0].xdr) if results else None


@dataclass(frozen=True, slots=True)
class Executed:
    """A transaction applied successfully, with the simulation it was built from."""

    signed: SignedTx
    result: TxResult
    simulation: Simulation | None = None
    envelope: TransactionEnvelope | None = field(default=None, compare=False)


# --------------------------------------------------------------- submitters


class Submitter(Protocol):
    """Sends signed envelopes and follows them to a ledger.

    ``submit`` returns the :class:`TxResult` of an applied transaction (successful or
    failed) and raises ``TxRejected``, ``TxThrottled``, ``TxExpired``, ``TxInDoubt``,
    ``SimulationFailed``, or ``NetworkError`` only when nothing was sent; ``resume``
    follows an envelope that may already have been sent.
    ``inclusion_fee_cap`` / ``timeout_cap`` bound what the pipeline builds (None: no
    bound); ``keeps_envelope`` says whether the signed envelope itself is what lands
    (otherwise its sequence number may not be consumed).
    """

    inclusion_fee_cap: int | None
    timeout_cap: int | None
    keeps_envelope: bool

    async def submit(self, tx: SignedTx) -> TxResult: ...

    async def resume(self, tx: SignedTx) -> TxResult: ...


class _TryAgain(Exception):
    pass


class RpcSubmitter:
    """``sendTransaction`` then ``getTransaction`` polls, through an :class:`RpcClient`.

    TRY_AGAIN_LATER is retried with jittered exponential backoff, ``try_again_attempts``
    times in all. ``getTransaction`` is polled every ``poll_interval`` seconds at first,
    then less often (×1.5 each time, up to 4 × ``poll_interval``). While the transaction
    is not found it is re-sent whenever its last send was not acknowledged. It is
    followed until it is in a ledger, until a closed ledger is past its ``maxTime``
    (then it can never be applied: :class:`TxExpired`, after checking that its sequence
    number is still unused), or for ``max_wait`` seconds (:class:`TxInDoubt`).
    """

    inclusion_fee_cap: int | None = None
    timeout_cap: int | None = None
    keeps_envelope = True

    def __init__(
        self,
        rpc: RpcClient,
        *,
        poll_interval: float = 1.0,
        max_wait: float = 120.0,
        try_again_attempts: int = 6,
        try_again_backoff: float = 0.5,
        resend: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rpc = rpc
        self.clock = clock
        self.resend = resend
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.try_again_attempts = try_again_attempts
        self.try_again_backoff = try_again_backoff

    async def submit(self, tx: SignedTx) -> TxResult:
        acknowledged = await self._send(tx)
        return await self._follow(tx, acknowledged)

    async def resume(self, tx: SignedTx) -> TxResult:
        return await self._follow(tx, acknowledged=False)

    async def _send(self, tx: SignedTx) -> bool:
        """Send with TRY_AGAIN_LATER backoff: True if acknowledged, False if unknown."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.try_again_attempts),
            wait=wait_exponential_jitter(
                multiplier=self.try_again_backoff, max=8.0, jitter=self.try_again_backoff
            ),
            retry=retry_if_exception_type(_TryAgain),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    state = await self._send_once(tx, after_doubt=False)
                    if state is None:
                        raise _TryAgain
        except _TryAgain:
            raise TxThrottled(
                f"TRY_AGAIN_LATER {self.try_again_attempts} times; not queued", tx=tx.attempt()
            ) from None
        return bool(state)

    async def _send_once(self, tx: SignedTx, *, after_doubt: bool) -> bool | None:
        """One send. True: acknowledged; False: unknown; None: TRY_AGAIN_LATER."""
        try:
            response = await self.rpc.send(tx.envelope_xdr)
        except NetworkError as exc:
            log.warning("tx.send_unknown", tx_hash=tx.tx_hash, error=str(exc))
            return False
        status = response.status
        if status in (wire.SendTransactionStatus.PENDING, wire.SendTransactionStatus.DUPLICATE):
            return True
        if status == wire.SendTransactionStatus.TRY_AGAIN_LATER:
            log.info("tx.try_again_later", tx_hash=tx.tx_hash)
            return None
        info = decode_result(response.error_result_xdr) if response.error_result_xdr else None
        code = info.code if info is not None else "ERROR"
        if after_doubt and code == "txBAD_SEQ":
            return False  # an earlier copy of this very envelope may have been applied
        raise TxRejected(code, op_codes=info.op_codes if info else (), tx=tx.attempt())

    async def _follow(self, tx: SignedTx, acknowledged: bool) -> TxResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        delay = self.poll_interval
        while True:
            try:
                response = await self.rpc.transaction(tx.tx_hash)
            except NetworkError as exc:
                log.warning("tx.poll_failed", tx_hash=tx.tx_hash, error=str(exc))
                response = None
            if response is not None:
                if response.status != wire.GetTransactionStatus.NOT_FOUND:
                    return TxResult.from_rpc(response)
                if self._expired(tx, response.latest_ledger_close_time):
                    await self._check_unused(tx)
                    raise TxExpired(
                        f"transaction {tx.tx_hash} was not applied before its time bound",
                        tx=tx.attempt(),
                    )
                if not acknowledged and self.resend:
                    acknowledged = bool(await self._send_once(tx, after_doubt=True))
            if loop.time() >= deadline:
                raise TxInDoubt(
                    f"transaction {tx.tx_hash}: no final status after {self.max_wait:g} s",
                    tx=tx.attempt(),
                )
            await asyncio.sleep(delay)
            delay = min(delay * POLL_BACKOFF, self.poll_interval * POLL_BACKOFF_CAP)

    def _expired(self, tx: SignedTx, close_time: int) -> bool:
        """Whether ``tx`` can no longer be applied: a closed ledger is past its
        ``maxTime``, and so is this machine's clock (networks that judge time bounds by
        the wall clock, like the devnet with a virtual ledger clock, agree then too)."""
        if tx.max_time is None:
            return False
        return close_time > tx.max_time and self.clock() > tx.max_time

    async def _check_unused(self, tx: SignedTx) -> None:
        """After expiry: the source's sequence must still be below the transaction's."""
        try:
            _, entries = await self.rpc.ledger_entries([account_ledger_key(tx.source)])
        except NetworkError as exc:
            raise _doubt(tx, f"cannot confirm expiry: {exc}", expired=True) from exc
        entry = next(iter(entries.values()), None)
        if entry is not None and account_state(entry.xdr).sequence >= tx.sequence:
            raise _doubt(
                tx,
                f"transaction {tx.tx_hash} is not found but its sequence number was consumed",
                expired=True,
            )


def _doubt(tx: SignedTx, message: str, *, expired: bool = False) -> TxInDoubt:
    return TxInDoubt(message, tx=tx.attempt(), expired=expired)


# ----------------------------------------------------------------- pipeline


class Pipeline:
    """Builds, signs, records and submits transactions; classifies their failures.

    :param farm_id: the farm contract (its errors become ``FarmError``).
    :param token_id: the KALE token contract (its errors become ``TokenError``).
    :param submitter: for contract calls (default: ``direct``); classic transactions
        always go through ``direct``.
    """

    def __init__(
        self,
        rpc: RpcClient,
        *,
        passphrase: str,
        farm_id: str,
        token_id: str,
        fees: FeeOracle,
        direct: RpcSubmitter,
        submitter: Submitter | None = None,
        tx_timeout: int = 60,
        on_signed: OnSigned | None = None,
    ) -> None:
        self.rpc = rpc
        self.passphrase = passphrase
        self.farm_id = farm_id
        self.token_id = token_id
        self.fees = fees
        self.direct = direct
        self.submitter: Submitter = submitter if submitter is not None else direct
        self.tx_timeout = tx_timeout
        self.on_signed = on_signed
        self.sequences: SequenceManager[SignedTx] = SequenceManager(self._load_sequence)

    async def _load_sequence(self, account: str) -> int:
        _, entries = await self.rpc.ledger_entries([account_ledger_key(account)])
        entry = next(iter(entries.values()), None)
        if entry is None:
            raise AccountNotFound(account)
        return account_state(entry.xdr).sequence

    # ------------------------------------------------------------ contract calls

    async def invoke(
        self,
        source: Keypair,
        contract_id: str,
        function: str,
        args: Sequence[sx.SCVal],
        *,
        auth: Mapping[str, Keypair] | None = None,
        check: Callable[[Simulation], None] | None = None,
        on_signed: OnSigned | None = None,
    ) -> Executed:
        """Call ``function(*args)`` on ``contract_id`` from ``source``.

        ``auth`` maps addresses to the keypairs that sign their address-credential auth
        entries (the source's own authorisation rides on the envelope signature).
        ``check`` may inspect the final simulation and raise to stop before signing.
        """
        submitter = self.submitter
        async with self.sequences.account(source.public_key) as slot:
            await self._clear_doubt(slot, submitter)

            async def build() -> tuple[TransactionEnvelope, Simulation]:
                sequence, ledger, fee = await _all(
                    slot.current(), self.rpc.latest_ledger(), self.fees.soroban_fee()
                )
                if submitter.inclusion_fee_cap is not None:
                    fee = min(fee, submitter.inclusion_fee_cap)
                timeout = self.tx_timeout
                base = _time_base(ledger.close_time)
                if submitter.timeout_cap is not None:
                    # a relay checks the cap against its own (wall) clock
                    timeout = min(timeout, submitter.timeout_cap)
                    base = int(time.time())
                envelope = (
                    TransactionBuilder(Account(source.public_key, sequence), self.passphrase, base_fee=fee)
                    .append_invoke_contract_function_op(contract_id, function, list(args))
                    .add_time_bounds(0, base + timeout)
                    .build()
                )
                sim = await self._simulate(envelope)
                valid_until = ledger.sequence + AUTH_LEDGER_MARGIN + timeout
                if self._sign_auth(envelope, sim, auth or {}, valid_until):
                    sim = await self._simulate(envelope)
                if check is not None:
                    check(sim)
                _assemble(envelope, sim.response)
                envelope.sign(source)
                return envelope, sim

            envelope, sim, signed, result = await self._send_built(slot, build, submitter, on_signed)
            return Executed(signed, result, sim, envelope)

    async def _send_built(
        self,
        slot: AccountSlot[SignedTx],
        build: Callable[[], Awaitable[tuple[TransactionEnvelope, S]]],
        submitter: Submitter,
        on_signed: OnSigned | None,
    ) -> tuple[TransactionEnvelope, S, SignedTx, TxResult]:
        """Record, send and follow what ``build`` signed. A ``txBAD_SEQ`` refusal (another
        process used the account: the transaction never entered a ledger) is answered
        once with a transaction built anew on the sequence read from chain, recorded as a
        new intent before it is sent."""
        for attempt in range(1, BAD_SEQ_REBUILDS + 2):
            envelope, extra = await build()
            signed = SignedTx.from_envelope(envelope)
            await self._record(signed, on_signed)
            try:
                result = await self._submit(slot, signed, submitter)
            except TxRejected as exc:
                if exc.result_code != "txBAD_SEQ" or attempt > BAD_SEQ_REBUILDS:
                    raise
                log.info("tx.bad_seq_rebuilt", account=slot.account, tx_hash=signed.tx_hash)
                continue
            if not result.success:
                raise await self._failure(result, signed)
            return envelope, extra, signed, result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _simulate(self, envelope: TransactionEnvelope) -> Simulation:
        response = await self.rpc.simulate(envelope)
        if response.error:
            raise self.simulation_error(response.error, response.events)
        if response.restore_preamble is not None:
            raise SimulationFailed("archived ledger entries must be restored first")
        if not response.results or response.transaction_data is None:
            raise SimulationFailed("simulation returned no result")
        read_only, read_write = footprint(response.transaction_data)
        return Simulation(response, tuple(read_only), tuple(read_write))

    def simulation_error(self, text: str, events_xdr: Sequence[str] | None) -> Exception:
        """A failed simulation as a contract error when one is attributable, else
        :class:`SimulationFailed`."""
        detail = text.strip().splitlines()[0][:200] if text.strip() else None
        for errors in (event_errors(decode_events(events_xdr)), parse_error_text(text)):
            found = contract_error(errors, farm_id=self.farm_id, token_id=self.token_id, detail=detail)
            if found is not None:
                return found
        return SimulationFailed(text)

    def _sign_auth(
        self,
        envelope: TransactionEnvelope,
        sim: Simulation,
        signers: Mapping[str, Keypair],
        valid_until: int,
    ) -> bool:
        """Sign the simulation's address-credential entries into the operation; True if any."""
        results = sim.response.results or []
        entries = [sx.SorobanAuthorizationEntry.from_xdr(a) for a in (results[0].auth or [])]
        signed_any = False
        out: list[sx.SorobanAuthorizationEntry] = []
        for entry in entries:
            address = _credential_address(entry.credentials)
            if address is None:  # the source account's own authorisation
                out.append(entry)
                continue
            signer = signers.get(address)
            if signer is None:
                raise SimulationFailed(f"the call needs an authorisation from {address}")
            out.append(authorize_entry(entry, signer, valid_until, self.passphrase))
            signed_any = True
        if signed_any:
            op = envelope.transaction.operations[0]
            assert isinstance(op, InvokeHostFunction)
            op.auth = out
        return signed_any

    # ------------------------------------------------------------ classic

    async def classic(
        self,
        source: Keypair,
        build_ops: Callable[[TransactionBuilder], object],
        *,
        signers: Sequence[Keypair] = (),
        on_signed: OnSigned | None = None,
    ) -> Executed:
        """A classic transaction: ``build_ops`` appends its operations (fee: the classic
        inclusion bid per operation); signed by ``source`` and ``signers``."""
        async with self.sequences.account(source.public_key) as slot:
            await self._clear_doubt(slot, self.direct)

            async def build() -> tuple[TransactionEnvelope, None]:
                sequence, ledger, fee = await _all(
                    slot.current(), self.rpc.latest_ledger(), self.fees.classic_fee()
                )
                builder = TransactionBuilder(
                    Account(source.public_key, sequence), self.passphrase, base_fee=fee
                ).add_time_bounds(0, _time_base(ledger.close_time) + self.tx_timeout)
                build_ops(builder)
                envelope = builder.build()
                envelope.sign(source)
                for signer in signers:
                    if signer.public_key != source.public_key:
                        envelope.sign(signer)
                return envelope, None

            envelope, _, signed, result = await self._send_built(slot, build, self.direct, on_signed)
            return Executed(signed, result, None, envelope)

    # ------------------------------------------------------------ resume

    async def resume(self, tx_hash: str, envelope_xdr: str) -> Executed:
        """Follow an already signed (maybe sent) envelope to its end, without re-signing."""
        signed = SignedTx.parse(envelope_xdr, self.passphrase, tx_hash)
        submitter = self.submitter if self._is_contract_call(signed) else self.direct
        async with self.sequences.account(signed.source) as slot:
            try:
                result = await submitter.resume(signed)
            finally:
                if slot.doubt is not None and slot.doubt.tx_hash == signed.tx_hash:
                    slot.resolved()
                slot.stale()
        if not result.success:
            raise await self._failure(result, signed)
        return Executed(signed, result)

    def _is_contract_call(self, signed: SignedTx) -> bool:
        env = TransactionBuilder.from_xdr(signed.envelope_xdr, self.passphrase)
        inner = (
            env.transaction.inner_transaction_envelope if isinstance(env, FeeBumpTransactionEnvelope) else env
        )
        return inner.transaction.is_soroban_transaction()

    # ------------------------------------------------------------ internals

    async def _record(self, signed: SignedTx, on_signed: OnSigned | None) -> None:
        for hook in (self.on_signed, on_signed):
            if hook is not None:
                await hook(signed.tx_hash, signed.envelope_xdr)

    async def _clear_doubt(self, slot: AccountSlot[SignedTx], submitter: Submitter) -> None:
        """Learn the fate of the account's doubtful transaction before signing anything."""
        pending = slot.doubt
        if pending is None:
            return
        log.info("tx.resolving_doubt", account=slot.account, tx_hash=pending.tx_hash)
        try:
            await submitter.resume(pending)
        except TxInDoubt as exc:
            if not exc.expired:
                raise TxInDoubt(
                    f"{slot.account} has a transaction in doubt ({pending.tx_hash}); "
                    "nothing new is signed for it until its fate is known",
                    tx=pending.attempt(),
                ) from exc
        except GatewayError:
            pass  # expired or rejected on re-send: it was never applied
        slot.resolved()
        slot.stale()

    async def _submit(self, slot: AccountSlot[SignedTx], signed: SignedTx, submitter: Submitter) -> TxResult:
        try:
            result = await submitter.submit(signed)
        except TxRejected as exc:
            if exc.result_code == "txBAD_SEQ" or not submitter.keeps_envelope:
                slot.stale()
            else:
                slot.unused()
            raise
        except (TxThrottled, TxExpired, NetworkError):  # never applied / never sent
            if submitter.keeps_envelope:
                slot.unused()
            else:
                slot.stale()
            raise
        except SimulationFailed as exc:  # a relay that simulates again (Launchtube)
            slot.stale()
            raise self.simulation_error(exc.error, exc.events) from None
        except TxInDoubt as exc:
            if exc.expired:
                slot.stale()
            else:
                slot.in_doubt(signed)
            raise
        except BaseException:  # cancelled or broken mid-send: the fate is unknown
            slot.in_doubt(signed)
            raise
        if submitter.keeps_envelope:
            slot.applied(signed.sequence)
        else:
            slot.stale()
        return result

    async def _failure(self, result: TxResult, signed: SignedTx) -> Exception:
        """The classified exception for a transaction applied with a failure."""
        attempt = signed.attempt(result.ledger, result.fee_charged)
        errors = event_errors(result.events)
        found: Exception | None = contract_error(errors, farm_id=self.farm_id, token_id=self.token_id)
        if found is None and is_race_failure(result.result, errors):
            found = RaceLost(
                "the transaction's footprint or resources no longer matched the chain "
                f"({', '.join(result.result.op_codes)})",
                tx=attempt,
            )
        if found is None and not errors and self._is_contract_call(signed):
            found = await self._diagnose(signed, attempt)
        if found is None:
            first = host_error(errors)
            found = TxFailed(
                result.result.code,
                op_codes=result.result.op_codes,
                host_error=str(first) if first is not None else None,
                tx=attempt,
            )
        if isinstance(found, ContractError):
            attach_attempt(found, attempt)
        elif isinstance(found, GatewayError) and found.tx is None:
            found.tx = attempt
        return found

    async def _diagnose(self, signed: SignedTx, attempt: TxAttempt) -> Exception | None:
        """A failed contract call with no diagnostic events: simulate it again.

        A contract error now names the failure; a clean simulation means the state
        the transaction was built for has moved on (a lost race).
        """
        envelope = TransactionEnvelope.from_xdr(signed.envelope_xdr, self.passphrase)
        try:
            response = await self.rpc.simulate(envelope)
        except NetworkError:
            return None
        if response.error:
            found = self.simulation_error(response.error, response.events)
            return found if isinstance(found, ContractError) else None
        return RaceLost("the transaction failed and simulates cleanly now: the chain moved on", tx=attempt)


async def _all(a: Awaitable[A], b: Awaitable[B], c: Awaitable[C]) -> tuple[A, B, C]:
    """Await three things at once; the first failure is raised once all have ended
    (none is left running unobserved)."""
    results = await asyncio.gather(a, b, c, return_exceptions=True)
    for item in results:
        if isinstance(item, BaseException):
            raise item
    return results[0], results[1], results[2]  # type: ignore[return-value]


def _assemble(envelope: TransactionEnvelope, sim: wire.SimulateTransactionResponse) -> None:
    """Apply a simulation to an unsigned envelope we built, in place (as stellar-sdk's
    ``prepare_transaction`` does on a deep copy): resource data, fee, recorded auth."""
    assert sim.transaction_data is not None and sim.min_resource_fee is not None
    tx = envelope.transaction
    if tx.soroban_data is not None:
        tx.fee -= tx.soroban_data.resource_fee.int64
    tx.fee += sim.min_resource_fee
    tx.soroban_data = sx.SorobanTransactionData.from_xdr(sim.transaction_data)
    op = tx.operations[0]
    results = sim.results or []
    if isinstance(op, InvokeHostFunction) and not op.auth and results and results[0].auth:
        op.auth = [sx.SorobanAuthorizationEntry.from_xdr(a) for a in results[0].auth]
    envelope.signatures = []


def _time_base(close_time: int) -> int:
    """Where a transaction's validity window starts: the later of the latest ledger's
    close time and this machine's clock (a client clock running behind the network's
    must not produce transactions that are already too late)."""
    return max(close_time, int(time.time()))


def _credential_address(credentials: sx.SorobanCredentials) -> str | None:
    """The address an auth entry's credentials speak for; None for source-account ones."""
    T = sx.SorobanCredentialsType
    node: sx.SorobanAddressCredentials | None = None
    if credentials.type == T.SOROBAN_CREDENTIALS_ADDRESS:
        node = credentials.address
    elif credentials.type == T.SOROBAN_CREDENTIALS_ADDRESS_V2:
        node = credentials.address_v2
    elif credentials.type == T.SOROBAN_CREDENTIALS_ADDRESS_WITH_DELEGATES:
        wd = credentials.address_with_delegates
        node = wd.address_credentials if wd is not None else None
    if node is None:
        return None
    return Address.from_xdr_sc_address(node.address).address
