"""The devnet engine: one ledger, its transaction queue, and the controls tests use.

:class:`Devnet` is what the JSON-RPC façade (:mod:`kalepool.devnet.rpc`) talks to, and
what unit tests may drive directly. Its public methods are thread-safe (one lock).

- ``send`` validates a transaction (signatures, sequence number, fee, balance, time
  bounds) and queues it; nothing is applied before ``close_ledger``.
- ``close_ledger`` applies the queue in submission order, each transaction atomically
  (fees and the sequence-number bump are kept when it fails, as on Stellar), then
  seals the ledger with a new sequence number, close time and header hash.
- ``simulate`` runs an ``InvokeHostFunction`` against the latest ledger in recording
  mode and reports the footprint, resources, fee, auth entries and events.
- Controls: ``advance_time``, ``close_ledgers``, ``snapshot``/``revert``, ``fund``,
  ``set_entry``, ``construct_farm``.

Time. Every closed ledger gets a close time: in ``virtual`` clock mode (tests) each close
adds ``ledger_seconds`` (at least one second); in ``wall`` mode (a running devnet) it is
the wall clock. ``advance_time`` moves both forward. Transaction time bounds are checked
against the wall clock, because clients compute them from their own clock.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stellar_sdk import Keypair, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.auth import AuthManager
from kalepool.devnet.codec import (
    TEMPORARY,
    Account,
    AssetKey,
    ContractCode,
    ContractData,
    Entry,
    KeyBytes,
    Trustline,
    account_key,
    entry_data_from_xdr,
    entry_size,
    key_of,
    network_id,
    sha256,
    trustline_key,
    unb64,
)
from kalepool.devnet.farm_host import FarmContractImpl, FarmKeyCache, HostFarmStorage
from kalepool.devnet.host import (
    Footprint,
    Frame,
    Host,
    HostError,
    InstanceValue,
    contract_event,
    diagnostic_event,
    instance_data,
)
from kalepool.devnet.ledger import (
    BASE_FEE,
    MAX_ENTRY_TTL,
    PROTOCOL_VERSION,
    EventRecord,
    Lazy,
    LedgerInfo,
    LedgerState,
    Overlay,
    TxRecord,
    make_header,
)
from kalepool.devnet.meta import error_text, meta_xdr, state_changes
from kalepool.devnet.sac import SacInstance, StellarAssetContract, sac_executable
from kalepool.devnet.transactions import (
    OT,
    TRC,
    OpOutcome,
    ParsedTx,
    TxError,
    apply_classic_op,
    check_signatures,
    check_structure,
    check_valid,
    parse_envelope,
    transaction_result,
)
from kalepool.errors import KalePoolError
from kalepool.kale.errors import FarmError
from kalepool.kale.networks import DEVNET, DEVNET_ISSUER_SEED, KALE_CODE
from kalepool.kale.types import FarmInstance

XLM = 10_000_000
#: Seed of the farm's homesteader (admin) account; public on purpose (devnet only).
HOMESTEADER_SEED = sha256(b"kalepool devnet KALE homesteader")
#: The farm contract's code is not real WASM: a fixed blob standing for it.
FARM_WASM = b"\0asm\x01\0\0\0kalepool devnet emulation of kalepail/KALE-sc"
FARM_WASM_HASH = sha256(FARM_WASM)
GENESIS_SEQUENCE = 1
MAX_QUEUE = 20_000

ClockMode = Literal["wall", "virtual"]


@dataclass
class DevnetConfig:
    """Everything that shapes a devnet; the defaults match the issue's CLI defaults."""

    ledger_seconds: float = 5.0
    block_interval: int = 300
    temp_ttl: int = 17_280
    clock: ClockMode = "wall"
    retention_ledgers: int = 1_440  # ~2 h at 5 s: transactions and events kept in memory
    friendbot_xlm: int = 10_000 * XLM
    passphrase: str = DEVNET.passphrase
    farm_contract_id: str = DEVNET.farm_contract_id
    kale_code: str = KALE_CODE
    kale_issuer: str = DEVNET.kale_issuer
    kale_sac_id: str = DEVNET.kale_sac_id
    wall_clock: Callable[[], float] = field(default=time.time, repr=False)
    seed: int | None = None  # seeds the recording-auth nonces (tests)

    def __post_init__(self) -> None:
        if self.ledger_seconds <= 0:
            raise ValueError("ledger_seconds: must be positive")
        if self.block_interval < 1:
            raise ValueError("block_interval: must be at least 1 second")
        if self.temp_ttl < 1:
            raise ValueError("temp_ttl: must be at least 1 ledger")


def root_keypair(passphrase: str) -> Keypair:
    """The network's root account (``sha256(passphrase)`` seed, as stellar-core); the
    friendbot pays from it."""
    return Keypair.from_raw_ed25519_seed(sha256(passphrase.encode()))


def issuer_keypair() -> Keypair:
    return Keypair.from_raw_ed25519_seed(DEVNET_ISSUER_SEED)


def homesteader_keypair() -> Keypair:
    return Keypair.from_raw_ed25519_seed(HOMESTEADER_SEED)


# ------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True)
class SendResult:
    status: str  # PENDING | DUPLICATE | TRY_AGAIN_LATER | ERROR
    hash: str
    latest_ledger: int
    latest_close_time: int
    error_result_xdr: str | None = None
    diagnostic_events_xdr: list[str] | None = None


@dataclass(slots=True)
class SimulationResult:
    latest_ledger: int
    error: str | None = None
    result_xdr: str | None = None
    auth: list[str] = field(default_factory=list)
    transaction_data: str | None = None
    min_resource_fee: int | None = None
    events: list[str] = field(default_factory=list)
    state_changes: list[dict[str, Any]] = field(default_factory=list)
    cost: tuple[int, int] = (0, 0)


@dataclass(slots=True)
class Resources:
    instructions: int
    read_only: int
    read_write: int
    disk_read_bytes: int
    write_bytes: int


def resource_fee(r: Resources) -> int:
    """The devnet's deterministic Soroban resource fee, in stroops, roughly mainnet's
    prices: 25 per 10k instructions, 6,250 per entry accessed, 10,000 per entry
    written, 1,786 per KiB read from disk and 11,800 per KiB written."""
    return (
        math.ceil(r.instructions * 25 / 10_000)
        + 6_250 * (r.read_only + r.read_write)
        + 10_000 * r.read_write
        + math.ceil(r.disk_read_bytes * 1_786 / 1024)
        + math.ceil(r.write_bytes * 11_800 / 1024)
    )


def declared_resources(data: sx.SorobanTransactionData) -> Resources:
    res = data.resources
    return Resources(
        instructions=res.instructions.uint32,
        read_only=len(res.footprint.read_only),
        read_write=len(res.footprint.read_write),
        disk_read_bytes=res.disk_read_bytes.uint32,
        write_bytes=res.write_bytes.uint32,
    )


class DevnetError(KalePoolError, ValueError):
    """A control or query was given something it cannot use (→ JSON-RPC -32602)."""

    code = "devnet_error"


# ------------------------------------------------------------------- engine


class Devnet:
    """A single-node Stellar network with the KALE farm and its token."""

    def __init__(self, config: DevnetConfig | None = None, state: LedgerState | None = None) -> None:
        self.config = config or DevnetConfig()
        self.network_id = network_id(self.config.passphrase)
        self.lock = threading.RLock()
        self.queue: list[ParsedTx] = []
        self.queued: dict[str, ParsedTx] = {}  # hex hash -> tx
        self.queued_sources: dict[str, int] = {}  # source -> pending txs
        self.rng = random.Random(self.config.seed)
        self.farm_keys = FarmKeyCache()
        self.asset: AssetKey = (self.config.kale_code, self.config.kale_issuer)
        self.farm = FarmContractImpl(
            self.config.farm_contract_id, self.config.kale_sac_id, self.config.block_interval, self.farm_keys
        )
        self.sac = StellarAssetContract(self.config.kale_sac_id, self.asset)
        self.contracts: dict[str, Any] = {self.farm.contract: self.farm, self.sac.contract: self.sac}
        self.snapshots: dict[int, tuple[LedgerState, list[ParsedTx]]] = {}
        self._next_snapshot = 1
        self.on_close: list[Callable[[LedgerInfo], None]] = []
        self.dropped: dict[str, str] = {}  # hash -> why it left the queue unapplied
        self.state = state if state is not None else self._genesis()

    # ----------------------------------------------------------------- clock

    def wall(self) -> float:
        return self.config.wall_clock()

    def _next_close_time(self) -> int:
        s = self.state
        prev = s.latest.close_time
        if self.config.clock == "virtual":
            s.virtual_elapsed += max(1.0, self.config.ledger_seconds)
            now = s.genesis_time + s.virtual_elapsed + s.time_shift
        else:
            now = self.wall() + s.time_shift
        return max(prev + 1, int(now))

    def advance_time(self, seconds: float) -> int:
        """Move the clock forward; the next ledger closes at least that much later.
        Returns the earliest close time of the next ledger."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise DevnetError("seconds: must be a non-negative number (time only moves forward)")
        with self.lock:
            self.state.time_shift += seconds
            s = self.state
            if self.config.clock == "virtual":
                base = s.genesis_time + s.virtual_elapsed + max(1.0, self.config.ledger_seconds)
            else:
                base = self.wall()
            return max(s.latest.close_time + 1, int(base + s.time_shift))

    # --------------------------------------------------------------- genesis

    def _genesis(self) -> LedgerState:
        cfg = self.config
        now = int(self.wall())
        state = LedgerState(genesis_time=now)
        seq = GENESIS_SEQUENCE
        entries = state.entries

        def add(data: Any, live_until: int | None = None) -> None:
            entries[key_of(data)[0]] = Entry(data, seq, live_until)

        root = root_keypair(cfg.passphrase).public_key
        issuer = cfg.kale_issuer
        homesteader = homesteader_keypair().public_key
        funded = 10_000 * XLM
        add(Account(root, 100_000_000_000 * XLM - 2 * funded, 0))
        add(Account(issuer, funded, seq << 32))
        add(Account(homesteader, funded, seq << 32))
        forever = seq + MAX_ENTRY_TTL - 1
        add(ContractCode(FARM_WASM_HASH, FARM_WASM), forever)
        wasm = sx.ContractExecutable(
            sx.ContractExecutableType.CONTRACT_EXECUTABLE_WASM, wasm_hash=sx.Hash(FARM_WASM_HASH)
        )
        add(instance_data(cfg.farm_contract_id, InstanceValue(wasm, FarmInstance())), forever)
        add(
            instance_data(
                cfg.kale_sac_id,
                InstanceValue(sac_executable(), SacInstance(self.asset, cfg.farm_contract_id)),
            ),
            forever,
        )
        header = make_header(seq, now, bytes(32), sha256(b""), sha256(b""), 0, 0)
        state.ledgers.append(header)
        self.state = state
        # the constructor runs at deployment: homesteader, asset = the KALE SAC
        err = self._construct(homesteader, cfg.kale_sac_id, commit=True)
        assert err is None, err
        return state

    def _construct(self, homesteader: str, asset: str, commit: bool) -> str | None:
        view = Overlay(self.state.entries)
        latest = self.state.latest
        host = self._host(
            view,
            latest.sequence,
            latest.close_time,
            Footprint(True),
            AuthManager(True, source_account=homesteader),
        )
        host.frames.append(
            Frame(
                self.farm.contract, "__constructor", [scval.to_address(homesteader), scval.to_address(asset)]
            )
        )
        host.auth.push()
        try:
            self.farm.farm(host).construct(homesteader, asset)
        except FarmError as exc:
            return f"HostError: Error(Contract, #{int(exc.code)})"
        if commit:
            view.commit()
        return None

    def construct_farm(self, homesteader: str, asset: str) -> str | None:
        """Run the farm's constructor again (control): the real contract's constructor
        runs once at deployment, so on the devnet this always yields
        ``HostError: Error(Contract, #1)`` (HomesteadExists) unless the instance storage
        was cleared with ``set_entry``. Returns the error string, or None (committed)."""
        with self.lock:
            return self._construct(homesteader, asset, commit=True)

    # ------------------------------------------------------------- host glue

    def _host(
        self,
        view: Overlay,
        seq: int,
        timestamp: int,
        footprint: Footprint,
        auth: AuthManager,
        diagnostics: bool = True,
    ) -> Host:
        return Host(
            view=view,
            sequence=seq,
            timestamp=timestamp,
            network_id=self.network_id,
            contracts=self.contracts,
            footprint=footprint,
            auth=auth,
            temp_ttl=self.config.temp_ttl,
            diagnostics=diagnostics,
        )

    # ------------------------------------------------------------------ send

    def send(self, envelope_b64: str) -> SendResult:
        """``sendTransaction``: ``ValueError`` for undecodable XDR (→ -32602)."""
        tx = parse_envelope(envelope_b64, self.network_id)
        pre_error: TxError | None = None
        try:
            check_structure(tx)
            check_signatures(tx)
            if tx.soroban is not None:
                tx.footprint()
        except TxError as err:
            pre_error = err
        with self.lock:
            latest = self.state.latest
            h = tx.hash_hex
            if h in self.queued:
                return SendResult("DUPLICATE", h, latest.sequence, latest.close_time)
            try:
                if pre_error is not None:
                    raise pre_error
                self._check_queueable(tx)
            except TxError as err:
                return SendResult(
                    "ERROR",
                    h,
                    latest.sequence,
                    latest.close_time,
                    error_result_xdr=transaction_result(
                        err.code, BASE_FEE * len(tx.ops), err.op_results, tx.fee_bump, tx.tx_hash
                    ).to_xdr(),
                    diagnostic_events_xdr=[
                        diagnostic_event(
                            None, [scval.to_symbol("error")], scval.to_string(err.message), False
                        ).to_xdr()
                    ],
                )
            except _TryAgain:
                return SendResult("TRY_AGAIN_LATER", h, latest.sequence, latest.close_time)
            self._enqueue(tx)
            return SendResult("PENDING", h, latest.sequence, latest.close_time)

    def _check_queueable(self, tx: ParsedTx) -> None:
        if len(self.queue) >= MAX_QUEUE:
            raise _TryAgain
        if not tx.internal and self.queued_sources.get(tx.source):
            raise _TryAgain  # core keeps one pending transaction per source account
        required = resource_fee(declared_resources(tx.soroban)) if tx.soroban is not None else 0
        pending = None
        if tx.internal and self.queued_sources.get(tx.source):
            account = self.state.entries[account_key(tx.source)[0]].data
            assert isinstance(account, Account)
            pending = account.seq_num + self.queued_sources[tx.source]
        check_valid(self.state.entries, tx, self.state.latest.sequence + 1, self.wall(), required, pending)

    def _enqueue(self, tx: ParsedTx) -> None:
        self.queue.append(tx)
        self.queued[tx.hash_hex] = tx
        self.queued_sources[tx.source] = self.queued_sources.get(tx.source, 0) + 1
        self.dropped.pop(tx.hash_hex, None)

    def pending(self) -> list[str]:
        with self.lock:
            return [tx.hash_hex for tx in self.queue]

    # ----------------------------------------------------------------- close

    def close_ledger(self) -> LedgerInfo:
        """Apply the queued transactions and seal a new ledger."""
        with self.lock:
            s = self.state
            seq = s.latest.sequence + 1
            close_time = self._next_close_time()
            queue, self.queue = self.queue, []
            self.queued.clear()
            self.queued_sources.clear()
            now = self.wall()
            hashes: list[str] = []
            results: list[bytes] = []
            order = 0
            for tx in queue:
                try:
                    check_valid(s.entries, tx, seq, now)
                except TxError as err:  # dropped from the set, like core's tx-set trimming
                    self.dropped[tx.hash_hex] = f"{err.code.name}: {err.message}"
                    continue
                order += 1
                record = self._apply(tx, seq, close_time, order)
                s.txs[record.hash] = record
                hashes.append(record.hash)
                results.append(tx.hash)
            s.tx_ledgers[seq] = hashes
            info = make_header(
                seq,
                close_time,
                s.latest.hash,
                sha256(b"".join(results)),
                sha256(b"".join(results) + b"results"),
                s.fee_pool,
                len(hashes),
            )
            s.ledgers.append(info)
            s.prune(self.config.retention_ledgers)
            if seq % 64 == 0:
                s.purge_expired(seq)
            for callback in list(self.on_close):
                callback(info)
            return info

    def close_ledgers(self, count: int = 1) -> LedgerInfo:
        if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 100_000:
            raise DevnetError("count: must be an integer in [1, 100000]")
        info = self.state.latest
        for _ in range(count):
            info = self.close_ledger()
        return info

    def _apply(self, tx: ParsedTx, seq: int, close_time: int, order: int) -> TxRecord:
        s = self.state
        entries = s.entries
        fee = tx.fee_charged()
        # fees and sequence number: always, even if the transaction then fails
        before: list[tuple[sx.LedgerKey, Entry | None, Entry | None]] = []
        payer_key, payer_lk = account_key(tx.payer)
        payer_entry = entries[payer_key]
        payer = payer_entry.data
        assert isinstance(payer, Account)
        payer_new = Entry(
            Account(payer.account_id, payer.balance - fee, payer.seq_num, payer.num_subentries, payer.flags),
            seq,
        )
        entries[payer_key] = payer_new
        before.append((payer_lk, payer_entry, payer_new))
        src_key, src_lk = account_key(tx.source)
        src_entry = entries[src_key]
        src = src_entry.data
        assert isinstance(src, Account)
        src_new = Entry(Account(src.account_id, src.balance, tx.seq, src.num_subentries, src.flags), seq)
        entries[src_key] = src_new
        before.append((src_lk, src_entry, src_new))
        s.fee_pool += fee

        tx_view = Overlay(entries)
        outcomes: list[OpOutcome] = []
        op_changes: list[list[tuple[sx.LedgerKey | KeyBytes, Entry | None, Entry | None]]] = []
        op_events: list[list[Any]] = []
        diagnostics: list[sx.DiagnosticEvent] = []
        return_value: sx.SCVal | None = None
        ok = True
        for op in tx.ops:
            op_view = Overlay(tx_view)
            events: list[Any] = []
            if op.body.type == OT.INVOKE_HOST_FUNCTION:
                outcome, return_value, events, diags = self._invoke(op_view, tx, op, seq, close_time)
                diagnostics.extend(diags)
            else:
                outcome = apply_classic_op(op_view, tx, op, seq)
            outcomes.append(outcome)
            if not outcome.success:
                ok = False  # later operations still run (for their results), then all is undone
                continue
            op_changes.append([(k, tx_view.get(k), e) for k, e in op_view.changes.items()])
            op_events.append(events)
            op_view.commit()
        if ok:
            tx_view.commit()
        else:
            op_changes = []
            op_events = []
            return_value = None
        code = TRC.txSUCCESS if ok else TRC.txFAILED
        h = tx.hash_hex
        if ok:
            for op_index, events in enumerate(op_events):
                for event_index, ev in enumerate(events):
                    s.events.append(
                        EventRecord(
                            seq, close_time, order, op_index, event_index, ev.contract, ev.topics, ev.data, h
                        )
                    )
        # the lazies capture plain values, not the decoded envelope (memory over a long run)
        fee_bump, inner_hash = tx.fee_bump, tx.tx_hash
        soroban, resource = tx.is_soroban, tx.resource_fee
        result = Lazy(lambda: transaction_result(code, fee, outcomes, fee_bump, inner_hash).to_xdr())
        meta = Lazy(
            lambda: meta_xdr(before, op_changes, op_events, return_value, diagnostics, soroban, resource)
        )
        events_lazy = Lazy(
            lambda: [
                [contract_event(e.contract, e.topics, e.data).to_xdr() for e in evs] for evs in op_events
            ]
        )
        diag_lazy = Lazy(lambda: [d.to_xdr() for d in diagnostics])
        bid = (tx.max_fee - tx.resource_fee) // (len(tx.ops) + (1 if tx.fee_bump else 0))
        return TxRecord(
            h,
            seq,
            close_time,
            order,
            tx.fee_bump,
            tx.envelope_b64,
            ok,
            fee,
            result,
            meta,
            events_lazy,
            diag_lazy,
            return_value,
            bid,
            tx.is_soroban,
        )

    def _invoke(
        self, view: Overlay, tx: ParsedTx, op: sx.Operation, seq: int, close_time: int
    ) -> tuple[OpOutcome, sx.SCVal | None, list[Any], list[sx.DiagnosticEvent]]:
        assert op.body.invoke_host_function_op is not None and tx.soroban is not None
        ihf = op.body.invoke_host_function_op
        ic = ihf.host_function.invoke_contract
        assert ic is not None
        host = self._host(
            view,
            seq,
            close_time,
            Footprint(False, *tx.footprint()),
            AuthManager(False, ihf.auth, tx.op_source(op)),
            diagnostics=False,  # only the error events of a failure are kept
        )
        try:
            contract, fn, args = _call_target(ic)
            value = host.call(contract, fn, args)
        except HostError as err:
            if host.failed_contract is None:
                host._error_diag(err)
            view.changes.clear()
            return OpOutcome(OT.INVOKE_HOST_FUNCTION, "inner", -2), None, [], host.diagnostic_events
        events = host.events

        def success_hash() -> bytes:
            preimage = sx.InvokeHostFunctionSuccessPreImage(
                value, [contract_event(e.contract, e.topics, e.data) for e in events]
            )
            return sha256(preimage.to_xdr_bytes())

        return (
            OpOutcome(OT.INVOKE_HOST_FUNCTION, "inner", 0, extra=success_hash),
            value,
            events,
            host.diagnostic_events,
        )

    # -------------------------------------------------------------- simulate

    def simulate(
        self,
        envelope_b64: str,
        auth_mode: str | None = None,
        instruction_leeway: int = 0,
        upgraded_auth: bool = False,
    ) -> SimulationResult:
        """``simulateTransaction``; ``ValueError`` for undecodable XDR (→ -32602)."""
        tx = parse_envelope(envelope_b64, self.network_id)
        with self.lock:
            latest = self.state.latest
            result = SimulationResult(latest.sequence)
            if len(tx.ops) != 1:
                result.error = (
                    "Transaction contains more than one operation"
                    if tx.ops
                    else "Transaction contains no operations"
                )
                return result
            op = tx.ops[0]
            if op.body.type != OT.INVOKE_HOST_FUNCTION:
                result.error = (
                    f"unsupported operation type {op.body.type.name}: the devnet simulates "
                    "only contract invocations"
                )
                return result
            assert op.body.invoke_host_function_op is not None
            ihf = op.body.invoke_host_function_op
            ic = ihf.host_function.invoke_contract
            if ic is None:
                result.error = "the devnet simulates only InvokeContract host functions"
                return result
            if auth_mode not in (None, "enforce", "record", "record_allow_nonroot"):
                raise ValueError(f"authMode: unknown mode {auth_mode!r}")
            if auth_mode is None:
                auth_mode = "enforce" if ihf.auth else "record"
            if auth_mode != "enforce" and ihf.auth:
                result.error = f"cannot set authMode to '{auth_mode}' with an auth footprint"
                return result
            recording = auth_mode != "enforce"
            view = Overlay(self.state.entries)
            auth = AuthManager(
                recording,
                ihf.auth,
                tx.op_source(op),
                allow_non_root=auth_mode == "record_allow_nonroot",
                rng=self.rng,
            )
            host = self._host(view, latest.sequence + 1, latest.close_time, Footprint(True), auth)
            try:
                contract, fn, args = _call_target(ic)
                value = host.call(contract, fn, args)
            except HostError as err:
                if host.failed_contract is None:
                    host._error_diag(err)
                result.error = error_text(err, host.diagnostic_events)
                result.events = [d.to_xdr() for d in host.diagnostic_events]
                return result
            fp = host.footprint
            disk_read = 0
            for key in list(fp.read_only) + list(fp.read_write):
                entry = self.state.entries.get(key)
                if entry is not None and isinstance(entry.data, Account | Trustline):
                    disk_read += entry_size(entry.data)
            write_bytes = 0
            for key in fp.read_write:
                entry = view.get(key)
                if entry is not None:
                    write_bytes += entry_size(entry.data)
            instructions = host.instructions + max(0, instruction_leeway)
            resources = Resources(instructions, len(fp.read_only), len(fp.read_write), disk_read, write_bytes)
            fee = resource_fee(resources)
            data = sx.SorobanTransactionData(
                ext=sx.SorobanTransactionDataExt(0),
                resources=sx.SorobanResources(
                    footprint=fp.to_xdr(),
                    instructions=sx.Uint32(instructions),
                    disk_read_bytes=sx.Uint32(disk_read),
                    write_bytes=sx.Uint32(write_bytes),
                ),
                resource_fee=sx.Int64(fee),
            )
            result.result_xdr = value.to_xdr()
            result.auth = (
                [e.to_xdr() for e in auth.recorded_entries(upgraded_auth)]
                if recording
                else [e.to_xdr() for e in ihf.auth]
            )
            result.transaction_data = data.to_xdr()
            result.min_resource_fee = fee
            result.events = [d.to_xdr() for d in host.diagnostic_events]
            result.state_changes = state_changes(view, self.state.entries)
            result.cost = (instructions, 0)
            return result

    # --------------------------------------------------------------- queries

    def get_transaction(self, tx_hash: str) -> TxRecord | None:
        with self.lock:
            return self.state.txs.get(tx_hash.lower())

    def get_ledger_entries(self, keys: Sequence[str]) -> list[tuple[str, Entry]]:
        """``(key as given, entry)`` for each live entry, in request order; missing ones
        are left out. ``ValueError`` for an undecodable or TTL key."""
        decoded: list[tuple[str, bytes]] = []
        for key in keys:
            try:
                lk = sx.LedgerKey.from_xdr_bytes(unb64(key))
            except Exception as exc:
                raise ValueError(f"cannot unmarshal key value {key!r}: {exc}") from exc
            if lk.type == sx.LedgerEntryType.TTL:
                raise ValueError("ledger ttl entries cannot be queried directly")
            decoded.append((key, lk.to_xdr_bytes()))
        with self.lock:
            seq = self.state.latest.sequence
            out = []
            for key, raw in decoded:
                entry = self.state.live_entry(raw, seq)
                if entry is not None:
                    out.append((key, entry))
            return out

    def latest(self) -> LedgerInfo:
        return self.state.latest

    def oldest(self) -> LedgerInfo:
        return self.state.oldest

    def entry(self, key: bytes) -> Entry | None:
        with self.lock:
            return self.state.live_entry(key, self.state.latest.sequence)

    def account(self, account: str) -> Account | None:
        entry = self.entry(account_key(account)[0])
        return entry.data if entry is not None and isinstance(entry.data, Account) else None

    def kale_balance(self, account: str) -> int | None:
        entry = self.entry(trustline_key(account, self.asset)[0])
        return entry.data.balance if entry is not None and isinstance(entry.data, Trustline) else None

    def farm_instance(self) -> FarmInstance:
        with self.lock:
            view = Overlay(self.state.entries)
            latest = self.state.latest
            host = self._host(view, latest.sequence, latest.close_time, Footprint(True), AuthManager(True))
            return HostFarmStorage(host, self.farm.contract, self.farm_keys).get_instance()

    def fee_stats(self, window: int = 50) -> tuple[list[int], list[int], int]:
        """Inclusion fees bid per operation over the last ``window`` ledgers:
        ``(soroban, classic, ledger count)``."""
        with self.lock:
            ledgers = self.state.ledgers[-window:]
            soroban: list[int] = []
            classic: list[int] = []
            for info in ledgers:
                for h in self.state.tx_ledgers.get(info.sequence, []):
                    rec = self.state.txs.get(h)
                    if rec is not None:
                        (soroban if rec.soroban else classic).append(rec.inclusion_fee)
            return soroban, classic, len(ledgers)

    # -------------------------------------------------------------- controls

    def snapshot(self) -> int:
        with self.lock:
            sid = self._next_snapshot
            self._next_snapshot += 1
            self.snapshots[sid] = (self.state.copy(), list(self.queue))
            return sid

    def revert(self, snapshot_id: int) -> None:
        with self.lock:
            if snapshot_id not in self.snapshots:
                raise DevnetError(f"id: unknown snapshot {snapshot_id!r}")
            state, queue = self.snapshots[snapshot_id]
            # later snapshots die with the reverted history; this one stays usable
            for sid in [k for k in self.snapshots if k > snapshot_id]:
                del self.snapshots[sid]
            self.state = state.copy()
            self.queue = list(queue)
            self.queued = {tx.hash_hex: tx for tx in self.queue}
            self.queued_sources = {}
            for tx in self.queue:
                self.queued_sources[tx.source] = self.queued_sources.get(tx.source, 0) + 1

    def set_entry(self, key_b64: str, entry_b64: str | None, live_until: int | None = None) -> None:
        """Write (or, with ``entry_b64`` None, delete) a ledger entry directly (control)."""
        try:
            lk = sx.LedgerKey.from_xdr_bytes(unb64(key_b64))
            data = (
                entry_data_from_xdr(sx.LedgerEntryData.from_xdr_bytes(unb64(entry_b64)))
                if entry_b64
                else None
            )
        except Exception as exc:
            raise DevnetError(f"cannot decode the key or entry: {exc}") from exc
        with self.lock:
            raw = lk.to_xdr_bytes()
            seq = self.state.latest.sequence
            if data is None:
                self.state.entries.pop(raw, None)
                return
            if key_of(data)[0] != raw:
                raise DevnetError("the entry does not belong to the key")
            if isinstance(data, ContractData | ContractCode):
                if live_until is None:
                    old = self.state.entries.get(raw)
                    if old is not None and old.alive(seq) and old.live_until is not None:
                        live_until = old.live_until
                    elif isinstance(data, ContractData) and data.durability == TEMPORARY:
                        live_until = seq + self.config.temp_ttl - 1
                    else:
                        live_until = seq + MAX_ENTRY_TTL - 1
            else:
                live_until = None
            self.state.entries[raw] = Entry(data, seq, live_until)

    def fund(self, address: str, xlm: int | None = None, kale: int = 0) -> None:
        """Create or top up an account directly (control): ``xlm`` stroops (friendbot's
        amount by default) and, when ``kale`` > 0, a KALE trustline holding ``kale`` more
        stroops of KALE."""
        try:
            Keypair.from_public_key(address)
        except Exception as exc:
            raise DevnetError(f"address: {address!r} is not a G... account") from exc
        if xlm is None:
            xlm = self.config.friendbot_xlm
        if xlm < 0 or kale < 0:
            raise DevnetError("amounts must be non-negative")
        with self.lock:
            s = self.state
            seq = s.latest.sequence
            akey = account_key(address)[0]
            old = s.entries.get(akey)
            account = old.data if old is not None else Account(address, 0, seq << 32)
            assert isinstance(account, Account)
            subentries = account.num_subentries
            tkey = trustline_key(address, self.asset)[0]
            line = s.entries.get(tkey)
            if kale > 0 or line is not None:
                balance = line.data.balance if line is not None and isinstance(line.data, Trustline) else 0
                if line is None:
                    subentries += 1
                s.entries[tkey] = Entry(Trustline(address, self.asset, balance + kale, 2**63 - 1), seq)
            s.entries[akey] = Entry(
                Account(address, account.balance + xlm, account.seq_num, subentries, account.flags), seq
            )

    def friendbot_tx(self, address: str) -> str:
        """Queue the friendbot's ``create_account`` for ``address``; returns its hash.
        ``DevnetError`` when the address is invalid or already funded."""
        from stellar_sdk import Account as SdkAccount
        from stellar_sdk import TransactionBuilder

        try:
            Keypair.from_public_key(address)
        except Exception as exc:
            raise DevnetError(f"addr: {address!r} is not a valid G... account") from exc
        with self.lock:
            if self.account(address) is not None or any(_creates(tx, address) for tx in self.queue):
                raise DevnetError("account already funded to starting balance")
            root = root_keypair(self.config.passphrase)
            root_account = self.account(root.public_key)
            assert root_account is not None
            seq = root_account.seq_num + self.queued_sources.get(root.public_key, 0)
            builder = TransactionBuilder(
                SdkAccount(root.public_key, seq), self.config.passphrase, base_fee=BASE_FEE
            )
            builder.append_create_account_op(address, _amount(self.config.friendbot_xlm))
            envelope = builder.add_time_bounds(0, 0).build()
            envelope.sign(root)
            tx = parse_envelope(envelope.to_xdr(), self.network_id)
            tx.internal = True
            self._check_queueable(tx)
            self._enqueue(tx)
            return tx.hash_hex


class _TryAgain(Exception):
    pass


def _creates(tx: ParsedTx, address: str) -> bool:
    for op in tx.ops:
        if op.body.type == OT.CREATE_ACCOUNT and op.body.create_account_op is not None:
            dest = op.body.create_account_op.destination.account_id.ed25519
            if dest is not None and Keypair.from_raw_ed25519_public_key(dest.uint256).public_key == address:
                return True
    return False


def _amount(stroops: int) -> str:
    return f"{stroops // XLM}.{stroops % XLM:07d}"


def _call_target(ic: sx.InvokeContractArgs) -> tuple[str, str, list[sx.SCVal]]:
    from kalepool.devnet.codec import address_str

    try:
        contract = address_str(ic.contract_address)
    except ValueError as exc:
        raise HostError("Value", "UnexpectedType", str(exc)) from exc
    if not contract.startswith("C"):
        raise HostError("Value", "UnexpectedType", "the invoked address is not a contract")
    return contract, ic.function_name.sc_symbol.decode(errors="replace"), list(ic.args)


__all__ = [
    "FARM_WASM_HASH",
    "PROTOCOL_VERSION",
    "Devnet",
    "DevnetConfig",
    "DevnetError",
    "SendResult",
    "SimulationResult",
    "homesteader_keypair",
    "issuer_keypair",
    "root_keypair",
]
