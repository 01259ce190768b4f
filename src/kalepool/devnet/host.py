"""A small Soroban host: storage with footprints, contract calls, events and errors.

One :class:`Host` runs one ``InvokeHostFunction`` (a simulation or an applied
transaction) against a copy-on-write :class:`~kalepool.devnet.ledger.Overlay`:

- **Footprint.** In recording mode (simulation) every ledger key read is recorded
  read-only and every key written read-write; in enforcing mode (apply) touching a key
  outside the transaction's footprint, or writing a read-only one, fails with
  ``Error(Storage, ExceededLimit)`` like the real host. This is what turns a plant
  simulated before a block rollover but applied after it into a failed transaction.
- **Authorization** is :mod:`kalepool.devnet.auth`'s: the host asks its
  :class:`~kalepool.devnet.auth.AuthManager` on every ``require_auth``.
- **Errors.** Contract failures become ``Error(Contract, #N)`` attributed to the
  contract that raised them, with diagnostic events naming that contract.

Contracts are Python objects with ``call(host, fn, args) -> SCVal``: the KALE farm
(:mod:`kalepool.devnet.farm_host`, the rules in :mod:`kalepool.devnet.farm`) and the
Stellar Asset Contract (:mod:`kalepool.devnet.sac`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    PERSISTENT,
    TEMPORARY,
    ContractData,
    Entry,
    EntryData,
    KeyBytes,
    address_str,
    code_key,
    contract_id_bytes,
    contract_id_xdr,
    instance_key,
)
from kalepool.devnet.farm import LedgerContext
from kalepool.devnet.ledger import MAX_ENTRY_TTL, MIN_PERSISTENT_TTL, Overlay

if TYPE_CHECKING:
    from kalepool.devnet.auth import AuthManager

SCE = sx.SCErrorType
SCEC = sx.SCErrorCode

_TYPE_NAMES = {
    "Contract": SCE.SCE_CONTRACT,
    "WasmVm": SCE.SCE_WASM_VM,
    "Context": SCE.SCE_CONTEXT,
    "Storage": SCE.SCE_STORAGE,
    "Object": SCE.SCE_OBJECT,
    "Crypto": SCE.SCE_CRYPTO,
    "Events": SCE.SCE_EVENTS,
    "Budget": SCE.SCE_BUDGET,
    "Value": SCE.SCE_VALUE,
    "Auth": SCE.SCE_AUTH,
}
_CODE_NAMES = {
    "ArithDomain": SCEC.SCEC_ARITH_DOMAIN,
    "IndexBounds": SCEC.SCEC_INDEX_BOUNDS,
    "InvalidInput": SCEC.SCEC_INVALID_INPUT,
    "MissingValue": SCEC.SCEC_MISSING_VALUE,
    "ExistingValue": SCEC.SCEC_EXISTING_VALUE,
    "ExceededLimit": SCEC.SCEC_EXCEEDED_LIMIT,
    "InvalidAction": SCEC.SCEC_INVALID_ACTION,
    "InternalError": SCEC.SCEC_INTERNAL_ERROR,
    "UnexpectedType": SCEC.SCEC_UNEXPECTED_TYPE,
    "UnexpectedSize": SCEC.SCEC_UNEXPECTED_SIZE,
}

#: Deterministic instruction costs (the devnet meters no real VM).
COST_INVOKE = 1_000_000
COST_STORAGE = 40_000
COST_SIGNATURE = 400_000
COST_EVENT = 20_000
COST_BASE = 500_000


class HostError(Exception):
    """A Soroban host error: ``Error(<type>, <code>)``.

    ``kind`` is the error type (``Contract``, ``Storage``, ``Auth``, ...), ``code`` the
    contract's number for ``Contract`` errors, else an ``ScErrorCode`` name
    (``ExceededLimit``, ...). ``contract`` is the contract that raised it, if any;
    ``host_fn`` the host function a Wasm contract called when it was raised
    (``fail_with_error`` for the contract's own errors, ``call``, ``require_auth``...),
    which the host names when it escalates the error to a VM trap. ``recorded`` is set
    once its ``error`` diagnostic event is.
    """

    def __init__(
        self,
        kind: str,
        code: int | str,
        message: str,
        contract: str | None = None,
        args: Sequence[sx.SCVal] = (),
        host_fn: str | None = None,
    ) -> None:
        self.kind = kind
        self.code = code
        self.message = message
        self.contract = contract
        self.values = list(args)
        self.host_fn = host_fn
        self.recorded = False
        super().__init__(f"{self.text}: {message}")

    @property
    def text(self) -> str:
        """``Error(Contract, #8)`` / ``Error(Storage, ExceededLimit)``: the real spelling."""
        code = f"#{self.code}" if self.kind == "Contract" else str(self.code)
        return f"Error({self.kind}, {code})"

    def sc_error(self) -> sx.SCError:
        kind = _TYPE_NAMES[self.kind]
        if kind == SCE.SCE_CONTRACT:
            assert isinstance(self.code, int)
            return sx.SCError(kind, contract_code=sx.Uint32(self.code))
        assert isinstance(self.code, str)
        return sx.SCError(kind, code=_CODE_NAMES[self.code])


# ------------------------------------------------------------------------- footprint


class Footprint:
    """Recording: collects the keys touched. Enforcing: refuses keys it does not list."""

    __slots__ = ("read_only", "read_write", "recording")

    def __init__(
        self,
        recording: bool,
        read_only: dict[KeyBytes, sx.LedgerKey] | None = None,
        read_write: dict[KeyBytes, sx.LedgerKey] | None = None,
    ) -> None:
        self.recording = recording
        self.read_only: dict[KeyBytes, sx.LedgerKey] = read_only or {}
        self.read_write: dict[KeyBytes, sx.LedgerKey] = read_write or {}

    @classmethod
    def enforcing(cls, footprint: sx.LedgerFootprint) -> Footprint:
        return cls(
            False,
            {k.to_xdr_bytes(): k for k in footprint.read_only},
            {k.to_xdr_bytes(): k for k in footprint.read_write},
        )

    def read(self, key: KeyBytes, lk: sx.LedgerKey) -> None:
        if self.recording:
            if key not in self.read_write:
                self.read_only[key] = lk
        elif key not in self.read_only and key not in self.read_write:
            raise HostError(
                "Storage",
                "ExceededLimit",
                "trying to access contract storage key outside of the correct footprint",
            )

    def write(self, key: KeyBytes, lk: sx.LedgerKey) -> None:
        if self.recording:
            self.read_only.pop(key, None)
            self.read_write[key] = lk
        elif key not in self.read_write:
            raise HostError(
                "Storage",
                "ExceededLimit",
                "trying to write to contract storage key outside of the read-write footprint",
            )

    def to_xdr(self) -> sx.LedgerFootprint:
        return sx.LedgerFootprint(
            read_only=[self.read_only[k] for k in sorted(self.read_only)],
            read_write=[self.read_write[k] for k in sorted(self.read_write)],
        )


# ----------------------------------------------------------------------------- host


@dataclass(slots=True)
class Frame:
    contract: str
    fn: str
    args: list[sx.SCVal]


class Contract(Protocol):
    def call(self, host: Host, fn: str, args: list[sx.SCVal]) -> sx.SCVal: ...


@dataclass(slots=True)
class HostEvent:
    contract: str
    topics: list[sx.SCVal]
    data: sx.SCVal


class Host:
    """Runs contract calls for one transaction (or one simulation)."""

    def __init__(
        self,
        *,
        view: Overlay,
        sequence: int,
        timestamp: int,
        network_id: bytes,
        contracts: dict[str, Contract],
        footprint: Footprint,
        auth: AuthManager,
        temp_ttl: int,
        diagnostics: bool = True,
    ) -> None:
        self.view = view
        self.sequence = sequence
        self.timestamp = timestamp
        self.network_id = network_id
        self.contracts = contracts
        self.footprint = footprint
        self.auth = auth
        self.temp_ttl = temp_ttl
        self.frames: list[Frame] = []
        self.events: list[HostEvent] = []
        self.diagnostic_events: list[DiagnosticRecord] = []
        #: how many events the host's error carried when it was last raised (its debug log)
        self.error_log_size = 0
        self.diagnostics = diagnostics
        self.instructions = COST_BASE

    @property
    def max_live_until(self) -> int:
        return self.sequence + MAX_ENTRY_TTL - 1

    @property
    def ledger(self) -> LedgerContext:
        return LedgerContext(self.sequence, self.timestamp)

    @property
    def current_contract(self) -> str | None:
        return self.frames[-1].contract if self.frames else None

    # --------------------------------------------------------------- storage

    def get(self, key: KeyBytes, lk: sx.LedgerKey) -> Entry | None:
        self.footprint.read(key, lk)
        self.instructions += COST_STORAGE
        entry = self.view.get(key)
        if entry is None or not entry.alive(self.sequence):
            return None
        return entry

    def put(self, key: KeyBytes, lk: sx.LedgerKey, data: EntryData) -> None:
        self.footprint.write(key, lk)
        self.instructions += COST_STORAGE
        old = self.view.get(key)
        live_until: int | None = None
        if isinstance(data, ContractData):
            if old is not None and old.alive(self.sequence) and old.live_until is not None:
                live_until = old.live_until  # overwriting keeps the TTL
            elif data.durability == TEMPORARY:
                live_until = self.sequence + self.temp_ttl - 1
            else:
                live_until = self.sequence + MIN_PERSISTENT_TTL - 1
        self.view.put(key, Entry(data, self.sequence, live_until))

    def delete(self, key: KeyBytes, lk: sx.LedgerKey) -> None:
        self.footprint.write(key, lk)
        self.instructions += COST_STORAGE
        self.view.put(key, None)

    def extend_ttl(self, key: KeyBytes, lk: sx.LedgerKey, threshold: int, extend_to: int) -> None:
        """Extend a live entry to ``sequence + extend_to`` when fewer than ``threshold``
        ledgers remain (read-only footprint access suffices, as on the host)."""
        entry = self.get(key, lk)
        if entry is None:
            raise HostError("Storage", "MissingValue", "trying to extend the TTL of a missing entry")
        assert entry.live_until is not None
        target = min(self.sequence + extend_to, self.max_live_until)
        if entry.live_until - self.sequence < threshold and target > entry.live_until:
            self.view.put(key, Entry(entry.data, entry.last_modified, target))

    # ------------------------------------------------------------------ calls

    def call(self, contract: str, fn: str, args: list[sx.SCVal]) -> sx.SCVal:
        """Invoke ``contract.fn(args)``: load its instance (and code), run it in a new frame.

        Diagnostic events as the host records them: ``fn_call`` (by the caller, none at
        the top), ``fn_return`` (by the callee); when the call fails, the error's event
        where it was raised, then in a Wasm contract the escalation of a failed host
        function to a VM trap and the trap itself, and in a calling contract ``contract
        call failed``. A failed top-level call marks every event as not in a successful
        call."""
        caller = self.current_contract
        self.instructions += COST_INVOKE
        self._diag(
            caller, [_symbol("fn_call"), _contract_bytes(contract), _symbol(fn)], _diagnostic_data(args)
        )
        self.frames.append(Frame(contract, fn, args))
        self.auth.push()
        impl = self.contracts.get(contract)
        failed = False
        try:
            instance = self.get(*instance_key(contract))
            if instance is None:
                raise HostError(
                    "Storage",
                    "MissingValue",
                    "trying to get non-existing value for contract instance",
                    contract=contract,
                )
            assert isinstance(instance.data, ContractData)
            executable = _executable(instance.data)
            wasm = executable.wasm_hash if executable is not None else None
            if wasm is not None and self.get(*code_key(wasm.hash)) is None:
                raise HostError("Storage", "MissingValue", "contract code is missing", contract=contract)
            if impl is None:
                raise HostError(
                    "Context",
                    "InvalidAction",
                    "the kalepool devnet runs only the KALE farm and Stellar asset contracts",
                    contract=contract,
                )
            result = impl.call(self, fn, args)
        except HostError as err:
            failed = True
            if err.contract is None:
                err.contract = contract
            self.error_event(err)
            if getattr(impl, "wasm", False) and err.host_fn is not None:
                self._diag(
                    contract,
                    [_symbol("error"), error_scval(err)],
                    scval.to_string(
                        f"escalating error to VM trap from failed host function call: {err.host_fn}"
                    ),
                )
                self.error_log_size = len(self.diagnostic_events)
                self._diag(
                    contract,
                    [_symbol("log")],
                    scval.to_vec(
                        [scval.to_string("VM call trapped with HostError"), _symbol(fn), error_scval(err)]
                    ),
                )
            raise
        finally:
            self.auth.pop()
            self.frames.pop()
            if failed and caller is None:
                for record in self.diagnostic_events:
                    record.ok = False
        self._diag(contract, [_symbol("fn_return"), _symbol(fn)], result)
        return result

    def call_from(self, contract: str, fn: str, args: list[sx.SCVal]) -> sx.SCVal:
        """A contract's ``call`` host function: a failure is logged by the calling
        contract (``contract call failed``) and escalates as a failed ``call``."""
        caller = self.current_contract
        try:
            return self.call(contract, fn, args)
        except HostError as err:
            self._diag(
                caller,
                [_symbol("error"), error_scval(err)],
                scval.to_vec([scval.to_string("contract call failed"), _symbol(fn), scval.to_vec(args)]),
            )
            self.error_log_size = len(self.diagnostic_events)
            err.host_fn = "call"
            raise

    def require_auth(self, address: str) -> None:
        try:
            self.auth.require_auth(self, address)
        except HostError as err:
            err.host_fn = err.host_fn or "require_auth"
            raise

    def emit(self, topics: list[sx.SCVal], data: sx.SCVal) -> None:
        contract = self.current_contract
        assert contract is not None
        self.instructions += COST_EVENT
        self.events.append(HostEvent(contract, topics, data))
        if self.diagnostics:
            self.diagnostic_events.append(
                DiagnosticRecord(contract, topics, data, kind=sx.ContractEventType.CONTRACT)
            )

    # ----------------------------------------------------------- diagnostics

    def _diag(self, contract: str | None, topics: list[sx.SCVal], data: sx.SCVal) -> None:
        if self.diagnostics:
            self.diagnostic_events.append(DiagnosticRecord(contract, topics, data))

    def error_event(self, err: HostError) -> None:
        """Record ``[error, Error(..)]`` with ``message`` or ``[message, args...]``, once
        per error (the contract that raised it names it)."""
        if err.recorded:
            return
        err.recorded = True
        message = scval.to_string(err.message)
        data = scval.to_vec([message, *err.values]) if err.values else message
        self._diag(err.contract, [_symbol("error"), error_scval(err)], data)
        self.error_log_size = len(self.diagnostic_events)


@dataclass(slots=True)
class DiagnosticRecord:
    """A diagnostic event as recorded (its XDR is built when somebody asks for it)."""

    contract: str | None
    topics: list[sx.SCVal]
    data: sx.SCVal
    ok: bool = True  # in a successful contract call
    kind: sx.ContractEventType = sx.ContractEventType.DIAGNOSTIC

    def to_event(self) -> sx.DiagnosticEvent:
        return sx.DiagnosticEvent(
            in_successful_contract_call=self.ok,
            event=contract_event(self.contract, self.topics, self.data, self.kind),
        )

    def to_xdr_bytes(self) -> bytes:
        return self.to_event().to_xdr_bytes()

    def to_xdr(self) -> str:
        return self.to_event().to_xdr()


def _diagnostic_data(args: list[sx.SCVal]) -> sx.SCVal:
    """The host's data of a diagnostic event with these values: none is ``Void``, one is
    itself, more are a ``Vec``."""
    if not args:
        return sx.SCVal(sx.SCValType.SCV_VOID)
    if len(args) == 1:
        return args[0]
    return scval.to_vec(args)


def diagnostic_event(
    contract: str | None, topics: list[sx.SCVal], data: sx.SCVal, in_successful_call: bool = True
) -> sx.DiagnosticEvent:
    return sx.DiagnosticEvent(
        in_successful_contract_call=in_successful_call,
        event=contract_event(contract, topics, data, sx.ContractEventType.DIAGNOSTIC),
    )


def contract_event(
    contract: str | None,
    topics: list[sx.SCVal],
    data: sx.SCVal,
    kind: sx.ContractEventType = sx.ContractEventType.CONTRACT,
) -> sx.ContractEvent:
    return sx.ContractEvent(
        ext=sx.ExtensionPoint(0),
        contract_id=contract_id_xdr(contract) if contract else None,
        type=kind,
        body=sx.ContractEventBody(0, v0=sx.ContractEventV0(topics=topics, data=data)),
    )


def error_scval(err: HostError) -> sx.SCVal:
    return sx.SCVal(sx.SCValType.SCV_ERROR, error=err.sc_error())


@lru_cache(maxsize=1024)
def _contract_bytes(contract: str) -> sx.SCVal:
    return scval.to_bytes(contract_id_bytes(contract))


@lru_cache(maxsize=1024)
def _symbol(name: str) -> sx.SCVal:
    return scval.to_symbol(name)


def _executable(data: ContractData) -> sx.ContractExecutable | None:
    native = data.native
    if isinstance(native, InstanceValue):
        return native.executable
    val = data.val
    if val.type == sx.SCValType.SCV_CONTRACT_INSTANCE and val.instance is not None:
        return val.instance.executable
    return None


# --------------------------------------------------------------- contract instances


@dataclass(frozen=True, slots=True)
class InstanceValue:
    """A decoded contract instance: its executable and the storage as a native object."""

    executable: sx.ContractExecutable
    storage: Any  # FarmInstance for the farm, SacInstance for the SAC

    def to_scval(self) -> sx.SCVal:
        entries = self.storage.to_scval_storage()
        return sx.SCVal(
            sx.SCValType.SCV_CONTRACT_INSTANCE,
            instance=sx.SCContractInstance(executable=self.executable, storage=sx.SCMap(entries)),
        )


def load_instance(host: Host, contract: str, decode: Callable[[sx.SCVal], Any]) -> InstanceValue:
    """A contract's instance (footprint recorded), its storage decoded once with ``decode``
    and cached on the entry (the record is otherwise unchanged)."""
    entry = host.get(*instance_key(contract))
    if entry is None:
        raise HostError("Storage", "MissingValue", "contract instance is missing")
    data = entry.data
    assert isinstance(data, ContractData)
    native = data.native
    if not isinstance(native, InstanceValue):
        val = data.val
        assert val.instance is not None
        native = InstanceValue(val.instance.executable, decode(val))
        data.native = native
    return native


def encode_instance(native: Any) -> sx.SCVal:
    assert isinstance(native, InstanceValue)
    return native.to_scval()


def instance_data(contract: str, value: InstanceValue, shape: Hashable | None = None) -> ContractData:
    return ContractData(
        contract,
        instance_key(contract)[1].contract_data.key,  # type: ignore[union-attr]
        PERSISTENT,
        native=value,
        encoder=encode_instance,
        shape=shape,
    )


_ARG_TYPES: dict[str, sx.SCValType] = {
    "address": sx.SCValType.SCV_ADDRESS,
    "i128": sx.SCValType.SCV_I128,
    "u32": sx.SCValType.SCV_U32,
    "u64": sx.SCValType.SCV_U64,
    "bytes32": sx.SCValType.SCV_BYTES,
    "bool": sx.SCValType.SCV_BOOL,
}


def convert_args(args: Sequence[sx.SCVal], spec: Sequence[str]) -> list[Any]:
    """Host-side argument conversion: count, types, ``BytesN<32>`` length; addresses as str."""
    if len(args) != len(spec):
        raise HostError("WasmVm", "InvalidAction", f"function expects {len(spec)} arguments, got {len(args)}")
    out: list[Any] = []
    for arg, kind in zip(args, spec, strict=True):
        if arg.type != _ARG_TYPES[kind]:
            raise HostError("Value", "UnexpectedType", f"expected {kind}, got {arg.type.name}")
        if kind == "address":
            assert arg.address is not None
            try:
                out.append(address_str(arg.address))
            except ValueError as exc:
                raise HostError("Value", "UnexpectedType", str(exc)) from exc
        elif kind == "bytes32":
            value = scval.from_bytes(arg)
            if len(value) != 32:
                raise HostError("Value", "UnexpectedSize", f"expected 32 bytes, got {len(value)}")
            out.append(value)
        else:
            out.append(scval.to_native(arg))
    return out
