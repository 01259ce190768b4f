"""Soroban authorization as the host enforces it, and records it in simulation.

``require_auth(address)`` is matched against the transaction's auth entries as a tree
(a sub-call's ``require_auth`` must appear among the children of the matched parent).
Address credentials are authenticated lazily on first use: the ed25519 signature of the
account over the preimage, the expiration ledger, and a nonce never seen before, which
is then consumed as a temporary ledger entry. In recording mode (simulation) the entries
are built instead, with a random nonce, as stellar-rpc does. Source-account credentials
are covered by the envelope signature.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    TEMPORARY,
    ContractData,
    Entry,
    account_key,
    address_scval,
    address_str,
    nonce_key,
    raw_account_key,
    sc_address,
    sha256,
)
from kalepool.devnet.host import COST_SIGNATURE, HostError

if TYPE_CHECKING:
    from kalepool.devnet.host import Frame, Host

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
                    self.authenticate(host, tracker)
                except HostError as err:
                    if err.kind == "Auth" or (err.kind == "Storage" and err.code == "ExceededLimit"):
                        raise
                    raise HostError(
                        "Auth",
                        "InvalidAction",
                        f"failed account authentication with error {err.text}: {err.message}",
                        args=[address_scval(address)],
                    ) from err
                self.consume_nonce(host, tracker)
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
            self.consume_nonce(host, tracker)
            host.instructions += COST_SIGNATURE
        self.trackers.append(tracker)

    def recorded_entries(self, upgraded: bool = False) -> list[sx.SorobanAuthorizationEntry]:
        return [t.to_entry(upgraded) for t in self.trackers]

    # ------------------------------------------------------------ credentials

    def authenticate(self, host: Host, tracker: AuthTracker) -> None:
        """Check an address credential's signature (G accounts, master key only)."""
        address = tracker.address
        if not address.startswith("G"):
            raise HostError(
                "Auth", "InvalidAction", "custom account contracts are not supported by the devnet"
            )
        account = host.get(*account_key(address))
        if account is None:
            raise HostError("Storage", "MissingValue", "account entry is missing")
        assert tracker.entry is not None and tracker.signature is not None
        payload = sha256(self._preimage(host, tracker).to_xdr_bytes())
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
            host.instructions += COST_SIGNATURE
            try:
                VerifyKey(public_key).verify(payload, signature)
            except (BadSignatureError, ValueError) as exc:
                raise HostError("Crypto", "InvalidInput", "failed ED25519 verification") from exc

    def _preimage(self, host: Host, tracker: AuthTracker) -> sx.HashIDPreimage:
        assert tracker.entry is not None and tracker.nonce is not None
        invocation = tracker.entry.root_invocation
        if tracker.credentials_type == sx.SorobanCredentialsType.SOROBAN_CREDENTIALS_ADDRESS:
            return sx.HashIDPreimage(
                sx.EnvelopeType.ENVELOPE_TYPE_SOROBAN_AUTHORIZATION,
                soroban_authorization=sx.HashIDPreimageSorobanAuthorization(
                    network_id=sx.Hash(host.network_id),
                    nonce=sx.Int64(tracker.nonce),
                    signature_expiration_ledger=sx.Uint32(tracker.expiration),
                    invocation=invocation,
                ),
            )
        return sx.HashIDPreimage(
            sx.EnvelopeType.ENVELOPE_TYPE_SOROBAN_AUTHORIZATION_WITH_ADDRESS,
            soroban_authorization_with_address=sx.HashIDPreimageSorobanAuthorizationWithAddress(
                network_id=sx.Hash(host.network_id),
                nonce=sx.Int64(tracker.nonce),
                signature_expiration_ledger=sx.Uint32(tracker.expiration),
                address=sc_address(tracker.address),
                invocation=invocation,
            ),
        )

    def consume_nonce(self, host: Host, tracker: AuthTracker) -> None:
        """Expiration checks, then record the nonce so it can never be used again."""
        if tracker.is_source:
            return
        assert tracker.nonce is not None
        if not self.recording:
            if host.sequence > tracker.expiration:
                raise HostError("Auth", "InvalidInput", "signature has expired")
            if tracker.expiration > host.max_live_until:
                raise HostError("Auth", "InvalidInput", "signature expiration is too late")
        key, lk = nonce_key(tracker.address, tracker.nonce)
        try:
            existing = host.get(key, lk)
        except HostError as err:
            raise HostError(
                "Storage", "ExceededLimit", "trying to access nonce outside of footprint for address"
            ) from err
        if existing is not None:
            raise HostError("Auth", "ExistingValue", "nonce already exists for address")
        assert lk.contract_data is not None
        live_until = max(tracker.expiration, host.sequence + host.temp_ttl - 1)
        host.footprint.write(key, lk)
        host.view.put(
            key,
            Entry(
                ContractData(
                    tracker.address, lk.contract_data.key, TEMPORARY, sx.SCVal(sx.SCValType.SCV_VOID)
                ),
                host.sequence,
                live_until,
            ),
        )


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
