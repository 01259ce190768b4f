"""Ledger state: entries, the chain of closed ledgers, transaction results and events.

:class:`LedgerState` is plain data. The rules that change it (validating and applying
transactions, closing ledgers) live in :mod:`kalepool.devnet.engine`;
:class:`Overlay` is the copy-on-write view a transaction works on, committed only when
the transaction succeeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from stellar_sdk import xdr as sx

from kalepool.devnet.codec import ContractCode, ContractData, Entry, KeyBytes, b64, ledger_entry_size, sha256

PROTOCOL_VERSION = 23
BASE_FEE = 100  # stroops per operation
BASE_RESERVE = 5_000_000  # 0.5 XLM
TOTAL_COINS = 100_000_000_000 * 10_000_000  # 100 billion XLM
MAX_TX_SET_SIZE = 10_000
#: Soroban state archival settings (ledgers), mainnet-like.
MAX_ENTRY_TTL = 3_110_400
MIN_PERSISTENT_TTL = 2_073_600
INSTANCE_TTL_THRESHOLD = MAX_ENTRY_TTL - 120_960


class EntryMap(Protocol):
    def get(self, key: KeyBytes, /) -> Entry | None: ...


class Overlay:
    """Buffered writes over a base map; ``None`` in ``changes`` marks a deletion.

    Reads fall through to the base. ``commit()`` pushes the changes down one level (into
    a parent overlay or the ledger's dict); dropping the overlay discards them.
    """

    __slots__ = ("base", "changes")

    def __init__(self, base: EntryMap | dict[KeyBytes, Entry]) -> None:
        self.base = base
        self.changes: dict[KeyBytes, Entry | None] = {}

    def get(self, key: KeyBytes, /) -> Entry | None:
        changes = self.changes
        if key in changes:
            return changes[key]
        return self.base.get(key)

    def put(self, key: KeyBytes, entry: Entry | None) -> None:
        self.changes[key] = entry

    def commit(self) -> None:
        base = self.base
        if isinstance(base, Overlay):
            base.changes.update(self.changes)
        elif isinstance(base, dict):
            for key, entry in self.changes.items():
                if entry is None:
                    base.pop(key, None)
                else:
                    base[key] = entry
        else:  # pragma: no cover - only dicts and overlays are used
            raise TypeError(f"cannot commit into {type(base).__name__}")
        self.changes = {}


@dataclass(frozen=True, slots=True)
class LedgerInfo:
    """One closed ledger's header fields."""

    sequence: int
    close_time: int
    hash: bytes
    header_xdr: str
    tx_count: int = 0
    soroban_bytes: int = 0  # the live contract state's size after it (LedgerCloseMeta)

    @property
    def hash_hex(self) -> str:
        return self.hash.hex()


def make_header(
    sequence: int,
    close_time: int,
    previous_hash: bytes,
    tx_set_hash: bytes,
    result_hash: bytes,
    fee_pool: int,
    tx_count: int,
    soroban_bytes: int = 0,
) -> LedgerInfo:
    """A real ``LedgerHeader`` (so ``headerXdr`` decodes) and its hash, the ledger id."""
    header = sx.LedgerHeader(
        ledger_version=sx.Uint32(PROTOCOL_VERSION),
        previous_ledger_hash=sx.Hash(previous_hash),
        scp_value=sx.StellarValue(
            tx_set_hash=sx.Hash(tx_set_hash),
            close_time=sx.TimePoint(sx.Uint64(close_time)),
            upgrades=[],
            ext=sx.StellarValueExt(sx.StellarValueType.STELLAR_VALUE_BASIC),
        ),
        tx_set_result_hash=sx.Hash(result_hash),
        bucket_list_hash=sx.Hash(sha256(b"kalepool devnet bucket list" + sequence.to_bytes(4, "big"))),
        ledger_seq=sx.Uint32(sequence),
        total_coins=sx.Int64(TOTAL_COINS),
        fee_pool=sx.Int64(fee_pool),
        inflation_seq=sx.Uint32(0),
        id_pool=sx.Uint64(0),
        base_fee=sx.Uint32(BASE_FEE),
        base_reserve=sx.Uint32(BASE_RESERVE),
        max_tx_set_size=sx.Uint32(MAX_TX_SET_SIZE),
        skip_list=[sx.Hash(bytes(32)) for _ in range(4)],
        ext=sx.LedgerHeaderExt(0),
    )
    raw = header.to_xdr_bytes()
    return LedgerInfo(sequence, close_time, sha256(raw), b64(raw), tx_count, soroban_bytes)


class Lazy:
    """A value built on first use and then kept (XDR of results, meta, events)."""

    __slots__ = ("_build", "_value")

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build: Callable[[], Any] | None = build
        self._value: Any = None

    @classmethod
    def of(cls, value: Any) -> Lazy:
        lazy = cls(lambda: value)
        lazy.get()
        return lazy

    def get(self) -> Any:
        if self._build is not None:
            self._value = self._build()
            self._build = None
        return self._value


#: An empty ``LedgerEntryChanges``, base64.
NO_CHANGES = "AAAAAA=="
#: A transaction index above every real one: the events after all transactions.
AFTER_ALL_TXS = (1 << 20) - 1


@dataclass(slots=True)
class EventRecord:
    """An event ``getEvents`` serves: a contract (or SAC) event of an operation, or a
    transaction-level fee event, at its stellar-rpc position.

    Positions follow stellar-rpc: ``(ledger, transaction index, operation index, event
    index)``. Fee charges come first (transaction index 0), then each transaction's
    operations' events (1-based application order), then the refunds
    (:data:`AFTER_ALL_TXS`); the event index counts within its group."""

    ledger: int
    close_time: int
    tx_index: int
    op_index: int
    event_index: int
    contract_id: str
    topics: list[sx.SCVal]
    value: sx.SCVal
    tx_hash: str
    successful: bool = True
    type: str = "contract"
    _topic_b64: list[str] | None = None
    _value_b64: str | None = None

    @property
    def toid(self) -> int:
        return (self.ledger << 32) | (self.tx_index << 12) | (self.op_index & 0xFFF)

    @property
    def position(self) -> tuple[int, int]:
        return self.toid, self.event_index

    @property
    def id(self) -> str:
        return f"{self.toid:019d}-{self.event_index:010d}"

    @property
    def topic_b64(self) -> list[str]:
        if self._topic_b64 is None:
            self._topic_b64 = [t.to_xdr() for t in self.topics]
        return self._topic_b64

    @property
    def value_b64(self) -> str:
        if self._value_b64 is None:
            self._value_b64 = self.value.to_xdr()
        return self._value_b64


@dataclass(slots=True)
class TxRecord:
    """An applied transaction and everything ``getTransaction`` reports about it."""

    hash: str
    ledger: int
    close_time: int
    application_order: int
    fee_bump: bool
    envelope_xdr: str
    successful: bool
    fee_charged: int
    result: Lazy  # -> base64 TransactionResult
    meta: Lazy  # -> base64 TransactionMeta (v4)
    events: Lazy  # -> list[list[str]]: base64 ContractEvents per operation
    diagnostic_events: Lazy  # -> list[str]: base64 DiagnosticEvents
    return_value: sx.SCVal | None = None
    inclusion_fee: int = 0  # the inclusion fee bid per operation (fee stats)
    soroban: bool = False
    tx_events: Lazy = field(default_factory=lambda: Lazy.of([]))  # -> list[str]: TransactionEvents
    #: -> base64 LedgerEntryChanges of the fee charge and of the refund (LedgerCloseMeta)
    fee_changes: Lazy = field(default_factory=lambda: Lazy.of(NO_CHANGES))
    refund_changes: Lazy = field(default_factory=lambda: Lazy.of(NO_CHANGES))


@dataclass
class LedgerState:
    """Everything the devnet knows; copied by ``snapshot`` (entries are immutable)."""

    entries: dict[KeyBytes, Entry] = field(default_factory=dict)
    ledgers: list[LedgerInfo] = field(default_factory=list)  # closed ledgers, oldest first
    txs: dict[str, TxRecord] = field(default_factory=dict)  # hex hash -> record
    tx_ledgers: dict[int, list[str]] = field(default_factory=dict)  # ledger -> hashes in order
    events: list[EventRecord] = field(default_factory=list)
    fee_pool: int = 0
    #: seconds added to the clock by ``advance_time``
    time_shift: float = 0.0
    #: seconds of virtual time elapsed (virtual clock only)
    virtual_elapsed: float = 0.0
    genesis_time: int = 0
    #: XDR bytes of the live contract state (data and code): what the rent price follows
    soroban_bytes: int = 0

    @property
    def latest(self) -> LedgerInfo:
        return self.ledgers[-1]

    @property
    def oldest(self) -> LedgerInfo:
        return self.ledgers[0]

    def live_entry(self, key: KeyBytes, sequence: int) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None or not entry.alive(sequence):
            return None
        return entry

    def prune(self, retention: int) -> None:
        """Forget ledgers, transactions and events older than ``retention`` ledgers."""
        if len(self.ledgers) <= retention:
            return
        drop = len(self.ledgers) - retention
        cutoff = self.ledgers[drop].sequence
        del self.ledgers[:drop]
        for seq in [s for s in self.tx_ledgers if s < cutoff]:
            for tx_hash in self.tx_ledgers.pop(seq):
                self.txs.pop(tx_hash, None)
        if self.events and self.events[0].ledger < cutoff:
            self.events = [e for e in self.events if e.ledger >= cutoff]

    def purge_expired(self, sequence: int) -> int:
        """Drop temporary entries that died before ``sequence`` (real eviction)."""
        dead = [k for k, e in self.entries.items() if not e.alive(sequence)]
        for key in dead:
            self.soroban_bytes -= soroban_size(self.entries.pop(key))
        return len(dead)

    def copy(self) -> LedgerState:
        """A snapshot: new containers around the same immutable records."""
        return LedgerState(
            entries=dict(self.entries),
            ledgers=list(self.ledgers),
            txs=dict(self.txs),
            tx_ledgers={k: list(v) for k, v in self.tx_ledgers.items()},
            events=list(self.events),
            fee_pool=self.fee_pool,
            time_shift=self.time_shift,
            virtual_elapsed=self.virtual_elapsed,
            genesis_time=self.genesis_time,
            soroban_bytes=self.soroban_bytes,
        )

    def iter_events(self, start: int, end: int | None) -> Iterator[EventRecord]:
        for event in self.events:
            if event.ledger < start:
                continue
            if end is not None and event.ledger >= end:
                break
            yield event


def soroban_size(entry: Entry | None) -> int:
    """What an entry adds to the live contract state: its ``LedgerEntry`` size for
    contract data and code, 0 for classic entries."""
    if entry is None or not isinstance(entry.data, ContractData | ContractCode):
        return 0
    return ledger_entry_size(entry)
