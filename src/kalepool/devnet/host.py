"""A small Soroban host: storage with footprints, authorization, events and errors.

One :class:`Host` runs one ``InvokeHostFunction`` (a simulation or an applied
transaction) against a copy-on-write :class:`~kalepool.devnet.ledger.Overlay`:

- **Footprint.** In recording mode (simulation) every ledger key read is recorded
  read-only and every key written read-write; in enforcing mode (apply) touching a key
  outside the transaction's footprint, or writing a read-only one, fails with
  ``Error(Storage, ExceededLimit)`` like the real host. This is what turns a plant
  simulated before a block rollover but applied after it into a failed transaction.
- **Authorization.** ``require_auth(address)`` is matched against the transaction's auth
  entries as a tree (a sub-call's ``require_auth`` must appear among the children of the
  matched parent), address credentials are authenticated lazily on first use (ed25519
  signature over the preimage, expiration ledger, nonce never seen before) and their
  nonce is consumed as a temporary ledger entry. In recording mode the entries are
  built instead, with a random nonce, as stellar-rpc does.
- **Errors.** Contract failures become ``Error(Contract, #N)`` attributed to the
  contract that raised them, with diagnostic events naming that contract.

Contracts are Python objects with ``call(host, fn, args) -> SCVal``: the KALE farm
(:class:`FarmContractImpl`, the rules in :mod:`kalepool.devnet.farm`) and the Stellar
Asset Contract (:mod:`kalepool.devnet.sac`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, Protocol

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    PERSISTENT,
    TEMPORARY,
    ContractData,
    Entry,
    EntryData,
    KeyBytes,
    account_key,
    address_scval,
    address_str,
    code_key,
    contract_data_key,
    contract_id_bytes,
    contract_id_xdr,
    instance_key,
    nonce_key,
    raw_account_key,
    sc_address,
    sha256,
)
from kalepool.devnet.farm import FarmContract, LedgerContext
from kalepool.devnet.ledger import MAX_ENTRY_TTL, MIN_PERSISTENT_TTL, Overlay
from kalepool.kale.errors import FarmError, TokenError
from kalepool.kale.storage import block_key, pail_key
from kalepool.kale.types import Block, FarmInstance, Pail

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
    (``ExceededLimit``, ...). ``contract`` is the contract that raised it, if any.
    """

    def __init__(
        self,
        kind: str,
        code: int | str,
        message: str,
        contract: str | None = None,
        args: Sequence[sx.SCVal] = (),
    ) -> None:
        self.kind = kind
        self.code = code
        self.message = message
        self.contract = contract
        self.values = list(args)
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


# ----------------------------------------------------------------------------- auth


class AuthNode:
    """One node of an authorized invocation tree."""

    __slots__ = ("args", "children", "contract", "exhausted", "fn")

    def __init__(self, contract: str, fn: str, args: Sequence[sx.SCVal]) -> None:
        self.contract = contract
        self.fn = fn
        self.args = list(args)
        self.children: list[AuthNode] = []
        self.exhausted = False

    @classmethod
    def from_xdr(cls, inv: sx.SorobanAuthorizedInvocation) -> AuthNode:
        function = inv.function
        if (
            function.type == sx.SorobanAuthorizedFunctionType.SOROBAN_AUTHORIZED_FUNCTION_TYPE_CONTRACT_FN
            and function.contract_fn is not None
        ):
            fn_args = function.contract_fn
            node = cls(
                address_str(fn_args.contract_address),
                fn_args.function_name.sc_symbol.decode(),
                fn_args.args,
            )
        else:  # contract creation: never matches a call the devnet makes
            node = cls("", "", [])
            node.exhausted = True
        node.children = [cls.from_xdr(sub) for sub in inv.sub_invocations]
        return node

    def to_xdr(self) -> sx.SorobanAuthorizedInvocation:
        return sx.SorobanAuthorizedInvocation(
            function=sx.SorobanAuthorizedFunction(
                sx.SorobanAuthorizedFunctionType.SOROBAN_AUTHORIZED_FUNCTION_TYPE_CONTRACT_FN,
                contract_fn=sx.InvokeContractArgs(
                    contract_address=sc_address(self.contract),
                    function_name=sx.SCSymbol(self.fn.encode()),
                    args=list(self.args),
                ),
            ),
            sub_invocations=[c.to_xdr() for c in self.children],
        )

    def matches(self, frame: Frame) -> bool:
        return self.contract == frame.contract and self.fn == frame.fn and self.args == frame.args


@dataclass(slots=True)
class AuthTracker:
    """One auth entry (or, when recording, one address's recorded tree)."""

    address: str
    root: AuthNode
    is_source: bool
    nonce: int | None = None
    expiration: int = 0
    signature: sx.SCVal | None = None
    credentials_type: sx.SorobanCredentialsType = sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS
    verified: bool = False
    stack: list[AuthNode | None] = field(default_factory=list)
    entry: sx.SorobanAuthorizationEntry | None = None

    def deepest_match(self) -> AuthNode | None:
        for node in reversed(self.stack[:-1]):
            if node is not None:
                return node
        return None

    def try_match(self, frame: Frame) -> bool:
        if not self.stack or self.stack[-1] is not None:
            return False
        parent = self.deepest_match()
        node: AuthNode | None
        if parent is None:
            node = self.root if not self.root.exhausted and self.root.matches(frame) else None
        else:
            node = next((c for c in parent.children if not c.exhausted and c.matches(frame)), None)
        if node is None:
            return False
        node.exhausted = True
        self.stack[-1] = node
        return True

    def to_entry(self, upgraded: bool) -> sx.SorobanAuthorizationEntry:
        if self.is_source:
            credentials = sx.SorobanCredentials(sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_SOURCE_ACCOUNT)
        else:
            assert self.nonce is not None
            creds = sx.SorobanAddressCredentials(
                address=sc_address(self.address),
                nonce=sx.Int64(self.nonce),
                signature_expiration_ledger=sx.Uint32(0),
                signature=sx.SCVal(sx.SCValType.SCV_VOID),
            )
            if upgraded:
                credentials = sx.SorobanCredentials(
                    sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS_V2, address_v2=creds
                )
            else:
                credentials = sx.SorobanCredentials(
                    sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS, address=creds
                )
        return sx.SorobanAuthorizationEntry(credentials=credentials, root_invocation=self.root.to_xdr())


_RNG = random.Random()


class AuthManager:
    """Enforces the transaction's auth entries, or records the ones a call needs."""

    def __init__(
        self,
        recording: bool,
        entries: Sequence[sx.SorobanAuthorizationEntry] = (),
        source_account: str = "",
        allow_non_root: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.recording = recording
        self.source_account = source_account
        self.allow_non_root = allow_non_root
        self.rng = rng or _RNG
        self.trackers: list[AuthTracker] = []
        self.depth = 0
        for entry in entries:
            self.trackers.append(self._tracker(entry))

    def _tracker(self, entry: sx.SorobanAuthorizationEntry) -> AuthTracker:
        creds = entry.credentials
        root = AuthNode.from_xdr(entry.root_invocation)
        t = creds.type
        if t == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_SOURCE_ACCOUNT:
            return AuthTracker(self.source_account, root, True, verified=True, entry=entry)
        addr: sx.SorobanAddressCredentials | None
        if t == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS:
            addr = creds.address
        elif t == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS_V2:
            addr = creds.address_v2
        else:
            assert creds.address_with_delegates is not None
            addr = creds.address_with_delegates.address_credentials
        assert addr is not None
        return AuthTracker(
            address_str(addr.address),
            root,
            False,
            nonce=addr.nonce.int64,
            expiration=addr.signature_expiration_ledger.uint32,
            signature=addr.signature,
            credentials_type=t,
            entry=entry,
        )

    def push(self) -> None:
        self.depth += 1
        for tracker in self.trackers:
            tracker.stack.append(None)

    def pop(self) -> None:
        self.depth -= 1
        for tracker in self.trackers:
            tracker.stack.pop()

    def require_auth(self, host: Host, address: str) -> None:
        frame = host.frames[-1]
        # the direct invoker contract is implicitly authorized
        if address.startswith("C") and len(host.frames) >= 2 and host.frames[-2].contract == address:
            return
        if self.recording:
            self._record(host, address, frame)
            return
        for tracker in self.trackers:
            if tracker.address != address or not tracker.try_match(frame):
                continue
            if not tracker.verified:
                try:
                    host.authenticate(tracker)
                except HostError as err:
                    if err.kind == "Auth" or (err.kind == "Storage" and err.code == "ExceededLimit"):
                        raise
                    raise HostError(
                        "Auth",
                        "InvalidAction",
                        f"failed account authentication with error {err.text}: {err.message}",
                        args=[address_scval(address)],
                    ) from err
                host.consume_nonce(tracker)
                tracker.verified = True
            return
        raise HostError(
            "Auth",
            "InvalidAction",
            "Unauthorized function call for address",
            contract=frame.contract,
            args=[address_scval(address)],
        )

    def _record(self, host: Host, address: str, frame: Frame) -> None:
        for tracker in self.trackers:
            if tracker.address != address or all(n is None for n in tracker.stack):
                continue
            if tracker.stack[-1] is not None:
                raise HostError("Auth", "ExistingValue", "frame is already authorized")
            parent = tracker.deepest_match()
            assert parent is not None
            node = AuthNode(frame.contract, frame.fn, frame.args)
            node.exhausted = True
            parent.children.append(node)
            tracker.stack[-1] = node
            return
        if not self.allow_non_root and self.depth > 1:
            raise HostError(
                "Auth",
                "InvalidAction",
                "[recording authorization only] encountered authorization not tied to the root "
                "contract invocation for an address. Use `require_auth()` in the top invocation "
                "or enable non-root authorization.",
                args=[address_scval(address)],
            )
        is_source = address == self.source_account
        root = AuthNode(frame.contract, frame.fn, frame.args)
        root.exhausted = True
        tracker = AuthTracker(address, root, is_source, verified=True)
        tracker.stack = [None] * (self.depth - 1) + [root]
        if not is_source:
            tracker.nonce = self.rng.randint(0, 2**63 - 1)
            tracker.expiration = host.max_live_until
            if address.startswith("G"):
                host.get(*account_key(address))  # the signer's account is read to authenticate
            host.consume_nonce(tracker)
            host.instructions += COST_SIGNATURE
        self.trackers.append(tracker)

    def recorded_entries(self, upgraded: bool = False) -> list[sx.SorobanAuthorizationEntry]:
        return [t.to_entry(upgraded) for t in self.trackers]


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
        self.diagnostic_events: list[sx.DiagnosticEvent] = []
        self.diagnostics = diagnostics
        self.instructions = COST_BASE
        self.failed_contract: str | None = None

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
        """Invoke ``contract.fn(args)``: load its instance (and code), run it in a new frame."""
        self.instructions += COST_INVOKE
        self.frames.append(Frame(contract, fn, args))
        self.auth.push()
        self._diag(
            contract,
            [_symbol("fn_call"), _contract_bytes(contract), _symbol(fn)],
            scval.to_vec(args) if args else sx.SCVal(sx.SCValType.SCV_VOID),
        )
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
            impl = self.contracts.get(contract)
            if impl is None:
                raise HostError(
                    "Context",
                    "InvalidAction",
                    "the kalepool devnet runs only the KALE farm and Stellar asset contracts",
                    contract=contract,
                )
            result = impl.call(self, fn, args)
        except HostError as err:
            if err.contract is None:
                err.contract = contract
            if self.failed_contract is None:
                self.failed_contract = err.contract
                self._error_diag(err)
            raise
        finally:
            self.auth.pop()
            self.frames.pop()
        self._diag(contract, [_symbol("fn_return"), _symbol(fn)], result)
        return result

    def require_auth(self, address: str) -> None:
        self.auth.require_auth(self, address)

    def emit(self, topics: list[sx.SCVal], data: sx.SCVal) -> None:
        contract = self.current_contract
        assert contract is not None
        self.instructions += COST_EVENT
        self.events.append(HostEvent(contract, topics, data))
        if self.diagnostics:
            self.diagnostic_events.append(
                sx.DiagnosticEvent(
                    in_successful_contract_call=True,
                    event=contract_event(contract, topics, data),
                )
            )

    # ------------------------------------------------------------------ auth

    def authenticate(self, tracker: AuthTracker) -> None:
        """Check an address credential's signature (G accounts, master key only)."""
        address = tracker.address
        if not address.startswith("G"):
            raise HostError(
                "Auth", "InvalidAction", "custom account contracts are not supported by the devnet"
            )
        account = self.get(*account_key(address))
        if account is None:
            raise HostError("Storage", "MissingValue", "account entry is missing")
        assert tracker.entry is not None and tracker.signature is not None
        payload = sha256(self._preimage(tracker).to_xdr_bytes())
        signatures = _account_signatures(tracker.signature)
        if not signatures:
            raise HostError("Auth", "InvalidInput", "no signatures provided")
        raw_key = raw_account_key(address)
        previous = b""
        for public_key, signature in signatures:
            if public_key <= previous:
                raise HostError("Auth", "InvalidInput", "signatures must be sorted by public key")
            previous = public_key
            if public_key != raw_key:
                raise HostError("Auth", "InvalidAction", "signer does not belong to account")
            self.instructions += COST_SIGNATURE
            try:
                VerifyKey(public_key).verify(payload, signature)
            except (BadSignatureError, ValueError) as exc:
                raise HostError("Crypto", "InvalidInput", "failed ED25519 verification") from exc

    def _preimage(self, tracker: AuthTracker) -> sx.HashIDPreimage:
        assert tracker.entry is not None and tracker.nonce is not None
        invocation = tracker.entry.root_invocation
        if tracker.credentials_type == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS:
            return sx.HashIDPreimage(
                sx.EnvelopeType.ENVELOPE_TYPE_SOROBAN_AUTHORIZATION,
                soroban_authorization=sx.HashIDPreimageSorobanAuthorization(
                    network_id=sx.Hash(self.network_id),
                    nonce=sx.Int64(tracker.nonce),
                    signature_expiration_ledger=sx.Uint32(tracker.expiration),
                    invocation=invocation,
                ),
            )
        return sx.HashIDPreimage(
            sx.EnvelopeType.ENVELOPE_TYPE_SOROBAN_AUTHORIZATION_WITH_ADDRESS,
            soroban_authorization_with_address=sx.HashIDPreimageSorobanAuthorizationWithAddress(
                network_id=sx.Hash(self.network_id),
                nonce=sx.Int64(tracker.nonce),
                signature_expiration_ledger=sx.Uint32(tracker.expiration),
                address=sc_address(tracker.address),
                invocation=invocation,
            ),
        )

    def consume_nonce(self, tracker: AuthTracker) -> None:
        """Expiration checks, then record the nonce so it can never be used again."""
        if tracker.is_source:
            return
        assert tracker.nonce is not None
        if not self.auth.recording:
            if self.sequence > tracker.expiration:
                raise HostError("Auth", "InvalidInput", "signature has expired")
            if tracker.expiration > self.max_live_until:
                raise HostError("Auth", "InvalidInput", "signature expiration is too late")
        key, lk = nonce_key(tracker.address, tracker.nonce)
        try:
            existing = self.get(key, lk)
        except HostError as err:
            raise HostError(
                "Storage", "ExceededLimit", "trying to access nonce outside of footprint for address"
            ) from err
        if existing is not None:
            raise HostError("Auth", "ExistingValue", "nonce already exists for address")
        assert lk.contract_data is not None
        live_until = max(tracker.expiration, self.sequence + self.temp_ttl - 1)
        self.footprint.write(key, lk)
        self.view.put(
            key,
            Entry(
                ContractData(
                    tracker.address, lk.contract_data.key, TEMPORARY, sx.SCVal(sx.SCValType.SCV_VOID)
                ),
                self.sequence,
                live_until,
            ),
        )

    # ----------------------------------------------------------- diagnostics

    def _diag(self, contract: str | None, topics: list[sx.SCVal], data: sx.SCVal, ok: bool = True) -> None:
        if not self.diagnostics:
            return
        self.diagnostic_events.append(diagnostic_event(contract, topics, data, ok))

    def _error_diag(self, err: HostError) -> None:
        message = scval.to_string(err.message)
        data = scval.to_vec([message, *err.values]) if err.values else message
        self.diagnostic_events.append(
            diagnostic_event(err.contract, [scval.to_symbol("error"), error_scval(err)], data, False)
        )


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


def _account_signatures(sig: sx.SCVal) -> list[tuple[bytes, bytes]]:
    """``Vec<Map{public_key: Bytes, signature: Bytes}>`` → ``[(key, signature)]``."""
    try:
        if sig.type != sx.SCValType.SCV_VEC or sig.vec is None:
            raise ValueError("signature is not a vector")
        out = []
        for item in sig.vec.sc_vec:
            fields = scval.to_native(item)
            if not isinstance(fields, dict) or set(fields) != {"public_key", "signature"}:
                raise ValueError("bad signature map")
            public_key, signature = fields["public_key"], fields["signature"]
            if not isinstance(public_key, bytes) or len(public_key) != 32:
                raise ValueError("bad public key")
            if not isinstance(signature, bytes) or len(signature) != 64:
                raise ValueError("bad signature")
            out.append((public_key, signature))
        return out
    except (ValueError, TypeError, AttributeError) as exc:
        raise HostError("Value", "UnexpectedType", f"malformed account signature: {exc}") from exc


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


def encode_instance(native: Any) -> sx.SCVal:
    assert isinstance(native, InstanceValue)
    return native.to_scval()


def instance_data(contract: str, value: InstanceValue) -> ContractData:
    return ContractData(
        contract,
        instance_key(contract)[1].contract_data.key,  # type: ignore[union-attr]
        PERSISTENT,
        native=value,
        encoder=encode_instance,
    )


def _encode_block(native: Any) -> sx.SCVal:
    assert isinstance(native, Block)
    return native.to_scval()


def _encode_pail(native: Any) -> sx.SCVal:
    assert isinstance(native, Pail)
    return native.to_scval()


# --------------------------------------------------------------------- the KALE farm


class HostFarmStorage:
    """:class:`~kalepool.devnet.farm.FarmStorage` over the host (footprint recorded)."""

    def __init__(self, host: Host, contract: str, keys: FarmKeyCache) -> None:
        self.host = host
        self.contract = contract
        self.keys = keys

    def _instance(self) -> tuple[Entry, InstanceValue]:
        key, lk = instance_key(self.contract)
        entry = self.host.get(key, lk)
        if entry is None:
            raise HostError("Storage", "MissingValue", "contract instance is missing")
        data = entry.data
        assert isinstance(data, ContractData)
        native = data.native
        if not isinstance(native, InstanceValue):
            val = data.val
            assert val.instance is not None
            native = InstanceValue(val.instance.executable, FarmInstance.from_instance_scval(val))
            data.native = native  # cache the decoding (the record is otherwise unchanged)
        return entry, native

    def get_instance(self) -> FarmInstance:
        storage = self._instance()[1].storage
        assert isinstance(storage, FarmInstance)
        return storage

    def put_instance(self, inst: FarmInstance) -> None:
        executable = self._instance()[1].executable
        key, lk = instance_key(self.contract)
        self.host.put(key, lk, instance_data(self.contract, InstanceValue(executable, inst)))

    def get_block(self, index: int) -> Block | None:
        key, lk = self.keys.block(self.contract, index)
        entry = self.host.get(key, lk)
        if entry is None:
            return None
        data = entry.data
        assert isinstance(data, ContractData)
        if not isinstance(data.native, Block):
            data.native = Block.from_scval(data.val)
        return data.native

    def put_block(self, index: int, block: Block) -> None:
        key, lk = self.keys.block(self.contract, index)
        assert lk.contract_data is not None
        self.host.put(
            key,
            lk,
            ContractData(self.contract, lk.contract_data.key, TEMPORARY, native=block, encoder=_encode_block),
        )

    def delete_block(self, index: int) -> None:
        self.host.delete(*self.keys.block(self.contract, index))

    def get_pail(self, farmer: str, index: int) -> Pail | None:
        key, lk = self.keys.pail(self.contract, farmer, index)
        entry = self.host.get(key, lk)
        if entry is None:
            return None
        data = entry.data
        assert isinstance(data, ContractData)
        if not isinstance(data.native, Pail):
            data.native = Pail.from_scval(data.val)
        return data.native

    def put_pail(self, farmer: str, index: int, pail: Pail) -> None:
        key, lk = self.keys.pail(self.contract, farmer, index)
        assert lk.contract_data is not None
        self.host.put(
            key,
            lk,
            ContractData(self.contract, lk.contract_data.key, TEMPORARY, native=pail, encoder=_encode_pail),
        )

    def delete_pail(self, farmer: str, index: int) -> None:
        self.host.delete(*self.keys.pail(self.contract, farmer, index))

    def extend_instance_ttl(self) -> None:
        from kalepool.devnet.ledger import INSTANCE_TTL_THRESHOLD

        self.host.extend_ttl(*instance_key(self.contract), INSTANCE_TTL_THRESHOLD, MAX_ENTRY_TTL - 1)


class FarmKeyCache:
    """Ledger keys of ``Block(i)`` and ``Pail(f, i)``, built once each (XDR is slow)."""

    def __init__(self, size: int = 100_000) -> None:
        self.size = size
        self._blocks: dict[tuple[str, int], tuple[KeyBytes, sx.LedgerKey]] = {}
        self._pails: dict[tuple[str, str, int], tuple[KeyBytes, sx.LedgerKey]] = {}

    def block(self, contract: str, index: int) -> tuple[KeyBytes, sx.LedgerKey]:
        k = (contract, index)
        hit = self._blocks.get(k)
        if hit is None:
            if len(self._blocks) >= self.size:
                self._blocks.clear()
            hit = self._blocks[k] = contract_data_key(contract, block_key(index), TEMPORARY)
        return hit

    def pail(self, contract: str, farmer: str, index: int) -> tuple[KeyBytes, sx.LedgerKey]:
        k = (contract, farmer, index)
        hit = self._pails.get(k)
        if hit is None:
            if len(self._pails) >= self.size:
                self._pails.clear()
            hit = self._pails[k] = contract_data_key(contract, pail_key(farmer, index), TEMPORARY)
        return hit


class HostToken:
    """:class:`~kalepool.devnet.farm.TokenPort`: the farm's calls into the KALE SAC."""

    def __init__(self, host: Host, sac: str) -> None:
        self.host = host
        self.sac = sac

    def _call(self, fn: str, address: str, amount: int) -> None:
        try:
            self.host.call(self.sac, fn, [address_scval(address), scval.to_int128(amount)])
        except HostError as err:
            if err.kind == "Contract" and err.contract == self.sac:
                assert isinstance(err.code, int)
                raise TokenError(err.code, err.message, contract_id=self.sac) from err
            raise

    def burn(self, from_: str, amount: int) -> None:
        self._call("burn", from_, amount)

    def mint(self, to: str, amount: int) -> None:
        self._call("mint", to, amount)


class FarmContractImpl:
    """The KALE farm as a host contract: argument conversion, then :class:`FarmContract`."""

    FUNCTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "plant": ("address", "i128"),
        "work": ("address", "bytes32", "u64"),
        "harvest": ("address", "u32"),
        "pause": (),
        "unpause": (),
        "remove_block": ("u32",),
    }

    def __init__(
        self, contract: str, sac: str, block_interval: int, keys: FarmKeyCache | None = None
    ) -> None:
        self.contract = contract
        self.sac = sac
        self.block_interval = block_interval
        self.keys = keys or FarmKeyCache()

    def farm(self, host: Host) -> FarmContract:
        return FarmContract(
            HostFarmStorage(host, self.contract, self.keys),
            HostToken(host, self.sac),
            host.ledger,
            host.require_auth,
            block_interval=self.block_interval,
        )

    def call(self, host: Host, fn: str, args: list[sx.SCVal]) -> sx.SCVal:
        if fn == "__constructor":
            raise HostError(
                "Context", "InvalidAction", "the constructor can only run when the contract is created"
            )
        if fn == "upgrade":
            raise HostError("Context", "InvalidAction", "upgrade is not supported by the kalepool devnet")
        spec = self.FUNCTIONS.get(fn)
        if spec is None:
            raise HostError("WasmVm", "MissingValue", "trying to invoke non-existent contract function")
        values = convert_args(args, spec)
        farm = self.farm(host)
        try:
            if fn == "plant":
                farm.plant(values[0], values[1])
                return scval.to_void()
            if fn == "work":
                return scval.to_uint32(farm.work(values[0], values[1], values[2]))
            if fn == "harvest":
                return scval.to_int128(farm.harvest(values[0], values[1]))
            if fn == "pause":
                farm.pause()
            elif fn == "unpause":
                farm.unpause()
            else:
                farm.remove_block(values[0])
            return scval.to_void()
        except FarmError as err:
            raise HostError(
                "Contract", int(err.code), err.code.contract_name, contract=self.contract
            ) from err
        except TokenError as err:
            raise HostError(
                "Contract", int(err.code), err.detail or err.name, contract=err.contract_id or self.sac
            ) from err
        except ArithmeticError as err:
            raise HostError(
                "WasmVm", "InvalidAction", f"contract trapped: {err}", contract=self.contract
            ) from err
        except ValueError as err:  # argument validation inside the rules
            raise HostError("Value", "UnexpectedType", str(err), contract=self.contract) from err


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
