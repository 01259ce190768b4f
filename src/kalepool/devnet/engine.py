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

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stellar_sdk import Keypair, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.apply import Changes, apply_transaction, charge_fee, event_records, refund_fee, to_record
from kalepool.devnet.auth import AuthManager
from kalepool.devnet.codec import (
    TEMPORARY,
    Account,
    AssetKey,
    ContractCode,
    ContractData,
    Entry,
    Trustline,
    account_key,
    entry_data_from_xdr,
    key_of,
    network_id,
    sha256,
    trustline_key,
    unb64,
)
from kalepool.devnet.events import asset_contract
from kalepool.devnet.farm_host import FarmContractImpl, FarmKeyCache, HostFarmStorage
from kalepool.devnet.fees import FeeSchedule
from kalepool.devnet.history import tx_set_hash
from kalepool.devnet.host import (
    Footprint,
    Frame,
    Host,
    InstanceValue,
    instance_data,
)
from kalepool.devnet.ledger import (
    BASE_FEE,
    MAX_ENTRY_TTL,
    PROTOCOL_VERSION,
    EventRecord,
    LedgerInfo,
    LedgerState,
    Overlay,
    TxRecord,
    make_header,
    soroban_size,
)
from kalepool.devnet.meta import validation_events
from kalepool.devnet.sac import SacInstance, StellarAssetContract, sac_executable
from kalepool.devnet.simulate import SimulationResult, simulate
from kalepool.devnet.transactions import (
    OT,
    ParsedTx,
    TxError,
    check_signatures,
    check_structure,
    check_valid,
    parse_envelope,
    transaction_result,
)
from kalepool.devnet.wasm import farm_wasm
from kalepool.errors import KalePoolError
from kalepool.kale.errors import FarmError
from kalepool.kale.networks import DEVNET, DEVNET_ISSUER_SEED, KALE_CODE
from kalepool.kale.types import FarmInstance

XLM = 10_000_000
#: Seed of the farm's homesteader (admin) account; public on purpose (devnet only).
HOMESTEADER_SEED = sha256(b"kalepool devnet KALE homesteader")
#: The farm contract's code: a valid module with KALE-sc's interface, no rules (:mod:`.wasm`).
FARM_WASM = farm_wasm()
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
    fees: FeeSchedule = field(default_factory=FeeSchedule)  # the network's fee settings
    #: chain seconds per wall second (ledger close times follow the wall clock × this)
    time_scale: float = 1.0
    #: diagnostic events in applied transactions' meta (stellar-core's
    #: ENABLE_SOROBAN_DIAGNOSTIC_EVENTS, on at stellar-rpc's public nodes); simulation has them always
    diagnostic_events: bool = True

    def __post_init__(self) -> None:
        if self.ledger_seconds <= 0:
            raise ValueError("ledger_seconds: must be positive")
        if not self.time_scale > 0:
            raise ValueError("time_scale: must be positive")
        if self.ledger_seconds * self.time_scale < 1:
            raise ValueError(
                f"ledger_seconds × time_scale = {self.ledger_seconds * self.time_scale:g}: close times are "
                "whole seconds and strictly increasing, so a ledger must stand for at least one second of "
                f"chain time; set time_scale to {1 / self.ledger_seconds:g} or more to run chain time that "
                "much faster than the wall clock"
            )
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
        self._anchor_wall = self.wall()
        self._anchor_chain = self._anchor_wall
        self.state = state if state is not None else self._genesis()
        # a chain loaded from a file runs on from where it was if it is ahead of the clock
        self._anchor_chain = max(self._anchor_wall, self.state.latest.close_time - self.state.time_shift)

    # ----------------------------------------------------------------- clock

    def wall(self) -> float:
        return self.config.wall_clock()

    def chain_time(self) -> float:
        """What the clock says now, in chain seconds: in ``wall`` mode the wall clock
        × ``time_scale`` since this engine started (from where the chain was), in
        ``virtual`` mode the ledgers closed × ``ledger_seconds × time_scale``; plus the
        time advanced by ``advance_time``."""
        s = self.state
        if self.config.clock == "virtual":
            return s.genesis_time + s.virtual_elapsed + s.time_shift
        return self._anchor_chain + (self.wall() - self._anchor_wall) * self.config.time_scale + s.time_shift

    def ahead_seconds(self) -> int:
        """How far the latest close time runs ahead of the clock (ledgers closed faster
        than one per chain second, by the controls): 0 when it does not."""
        return max(0, self.state.latest.close_time - int(self.chain_time()))

    def _ledger_step(self) -> float:
        return self.config.ledger_seconds * self.config.time_scale

    def _next_close_time(self) -> int:
        s = self.state
        if self.config.clock == "virtual":
            s.virtual_elapsed += self._ledger_step()
        return max(s.latest.close_time + 1, int(self.chain_time()))

    def advance_time(self, seconds: float) -> int:
        """Move the clock forward; the next ledger closes at least that much later.
        Returns the earliest close time of the next ledger."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise DevnetError("seconds: must be a non-negative number (time only moves forward)")
        with self.lock:
            self.state.time_shift += seconds
            step = self._ledger_step() if self.config.clock == "virtual" else 0.0
            return max(self.state.latest.close_time + 1, int(self.chain_time() + step))

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
        state.soroban_bytes = sum(soroban_size(e) for e in entries.values())
        return state

    def _construct(self, homesteader: str, asset: str, commit: bool) -> str | None:
        view = Overlay(self.state.entries)
        latest = self.state.latest
        host = self.host(
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

    def host(
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
                        err.code, tx.validation_fee(), err.op_results, tx.fee_bump, tx.tx_hash
                    ).to_xdr(),
                    diagnostic_events_xdr=[d.to_xdr() for d in validation_events(err)],
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
        pending = None
        if tx.internal and self.queued_sources.get(tx.source):
            account = self.state.entries[account_key(tx.source)[0]].data
            assert isinstance(account, Account)
            pending = account.seq_num + self.queued_sources[tx.source]
        check_valid(
            self.state.entries, tx, self.state.latest.sequence + 1, self.wall(), self.config.fees, pending
        )

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
        """Apply the queued transactions and seal a new ledger (see :mod:`.apply`)."""
        with self.lock:
            s = self.state
            seq = s.latest.sequence + 1
            close_time = self._next_close_time()
            queue, self.queue = self.queue, []
            self.queued.clear()
            self.queued_sources.clear()
            now = self.wall()
            charged: list[tuple[ParsedTx, int, Changes]] = []
            sequences: dict[str, int] = {}
            for tx in queue:
                try:
                    check_valid(s.entries, tx, seq, now, self.config.fees, sequences.get(tx.source))
                except TxError as err:  # dropped from the set, like core's tx-set trimming
                    self.dropped[tx.hash_hex] = f"{err.code.name}: {err.message}"
                    continue
                sequences[tx.source] = tx.seq
                charged.append((tx, *charge_fee(self, tx, seq)))
            applied = [
                apply_transaction(self, tx, seq, close_time, order, fee, changes)
                for order, (tx, fee, changes) in enumerate(charged, 1)
            ]
            native = asset_contract(None, self.config.passphrase)
            counters = [0, 0]
            charges: list[EventRecord] = []
            operations: list[EventRecord] = []
            refunds: list[EventRecord] = []
            for (tx, _, _), done in zip(charged, applied, strict=True):
                refund_fee(self, done, seq)
                record = to_record(tx, done, seq, close_time, native)
                s.txs[record.hash] = record
                first, ops, last = event_records(done, seq, close_time, native, counters)
                charges += first
                operations += ops
                refunds += last
            s.events += charges + operations + refunds  # stellar-rpc's order within a ledger
            hashes = [d.hash for d in applied]
            s.tx_ledgers[seq] = hashes
            results = b"".join(tx.hash for tx, _, _ in charged)
            envelopes = [(unb64(tx.envelope_b64), tx.is_soroban) for tx, _, _ in charged]
            info = make_header(
                seq,
                close_time,
                s.latest.hash,
                tx_set_hash(s.latest.hash, envelopes),
                sha256(results + b"results"),
                s.fee_pool,
                len(hashes),
                s.soroban_bytes,
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

    # -------------------------------------------------------------- simulate

    def simulate(
        self,
        envelope_b64: str,
        auth_mode: str | None = None,
        instruction_leeway: int = 0,
        upgraded_auth: bool = False,
    ) -> SimulationResult:
        """``simulateTransaction`` (:mod:`.simulate`); ``ValueError`` for undecodable XDR."""
        return simulate(self, envelope_b64, auth_mode, instruction_leeway, upgraded_auth)

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
            host = self.host(view, latest.sequence, latest.close_time, Footprint(True), AuthManager(True))
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
                self.state.soroban_bytes -= soroban_size(self.state.entries.pop(raw, None))
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
            entry = Entry(data, seq, live_until)
            self.state.soroban_bytes += soroban_size(entry) - soroban_size(self.state.entries.get(raw))
            self.state.entries[raw] = entry

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
