"""The devnet's ledger entries and their XDR: keys, native entry records, conversions.

The engine keeps every ledger entry as a small frozen record (:class:`Account`,
:class:`Trustline`, :class:`ContractData`, :class:`ContractCode`) wrapped in an
:class:`Entry` that carries ``last_modified`` and, for Soroban entries, ``live_until``.
Entries are identified by the XDR bytes of their ``LedgerKey`` (:data:`KeyBytes`), the
identity the real network uses. Records are never mutated: a change replaces the record,
so a shallow copy of the entry map is a consistent snapshot.

XDR is produced only at the edges (``getLedgerEntries``, transaction meta, the state
file), never on the hot path of applying a transaction.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from stellar_sdk import StrKey
from stellar_sdk import xdr as sx

KeyBytes = bytes

TEMPORARY = sx.ContractDataDurability.TEMPORARY
PERSISTENT = sx.ContractDataDurability.PERSISTENT

INT64_MAX = 2**63 - 1
THRESHOLDS_MASTER_ONLY = bytes([1, 0, 0, 0])

#: Trustline flag: authorized to hold and transact the asset.
AUTHORIZED_FLAG = 1


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """Strict base64 decoding (raises ``ValueError`` on bad input)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a base64 string, got {type(text).__name__}")
    return base64.b64decode(text.encode("ascii"), validate=True)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def network_id(passphrase: str) -> bytes:
    return sha256(passphrase.encode())


# ------------------------------------------------------------------------ addresses


def account_id_xdr(account: str) -> sx.AccountID:
    return sx.AccountID(
        sx.PublicKey(
            sx.PublicKeyType.PUBLIC_KEY_TYPE_ED25519,
            ed25519=sx.Uint256(StrKey.decode_ed25519_public_key(account)),
        )
    )


def account_id_str(account_id: sx.AccountID) -> str:
    assert account_id.account_id.ed25519 is not None
    return _encode_g(account_id.account_id.ed25519.uint256)


def muxed_to_g(muxed: sx.MuxedAccount) -> str:
    """The G... account behind a (possibly muxed) account."""
    if muxed.ed25519 is not None:
        return _encode_g(muxed.ed25519.uint256)
    assert muxed.med25519 is not None
    return _encode_g(muxed.med25519.ed25519.uint256)


@lru_cache(maxsize=65536)
def sc_address(address: str) -> sx.SCAddress:
    """``SCAddress`` of a G... or C... string (cached; never mutate the result)."""
    if address.startswith("G"):
        return sx.SCAddress(sx.SCAddressType.SC_ADDRESS_TYPE_ACCOUNT, account_id=account_id_xdr(address))
    if address.startswith("C"):
        return sx.SCAddress(
            sx.SCAddressType.SC_ADDRESS_TYPE_CONTRACT,
            contract_id=sx.ContractID(sx.Hash(StrKey.decode_contract(address))),
        )
    raise ValueError(f"unsupported address {address!r}")


def address_str(address: sx.SCAddress) -> str:
    """G... or C... of an ``SCAddress``; other kinds raise ``ValueError``."""
    if address.type == sx.SCAddressType.SC_ADDRESS_TYPE_ACCOUNT:
        assert address.account_id is not None and address.account_id.account_id.ed25519 is not None
        return _encode_g(address.account_id.account_id.ed25519.uint256)
    if address.type == sx.SCAddressType.SC_ADDRESS_TYPE_CONTRACT:
        assert address.contract_id is not None
        return _encode_c(address.contract_id.contract_id.hash)
    raise ValueError(f"unsupported address type {address.type.name}")


@lru_cache(maxsize=65536)
def _encode_g(raw: bytes) -> str:
    return StrKey.encode_ed25519_public_key(raw)


@lru_cache(maxsize=4096)
def _encode_c(raw: bytes) -> str:
    return StrKey.encode_contract(raw)


@lru_cache(maxsize=4096)
def contract_id_bytes(contract: str) -> bytes:
    return StrKey.decode_contract(contract)


@lru_cache(maxsize=4096)
def contract_id_xdr(contract: str) -> sx.ContractID:
    """``ContractID`` of a C... address (cached; never mutate the result)."""
    return sx.ContractID(sx.Hash(contract_id_bytes(contract)))


@lru_cache(maxsize=65536)
def address_scval(address: str) -> sx.SCVal:
    """``ScVal::Address`` of a G... or C... string (cached; never mutate the result)."""
    return sx.SCVal(sx.SCValType.SCV_ADDRESS, address=sc_address(address))


@lru_cache(maxsize=65536)
def raw_account_key(account: str) -> bytes:
    return StrKey.decode_ed25519_public_key(account)


# ---------------------------------------------------------------------------- assets

AssetKey = tuple[str, str]  # (code, issuer)


def asset_key_from_xdr(asset: sx.Asset | sx.TrustLineAsset | sx.ChangeTrustAsset) -> AssetKey | None:
    """``(code, issuer)`` of a credit asset, ``None`` for native; pool shares raise."""
    t = asset.type
    if t == sx.AssetType.ASSET_TYPE_NATIVE:
        return None
    if t == sx.AssetType.ASSET_TYPE_CREDIT_ALPHANUM4:
        assert asset.alpha_num4 is not None
        return (
            asset.alpha_num4.asset_code.asset_code4.rstrip(b"\0").decode(),
            account_id_str(asset.alpha_num4.issuer),
        )
    if t == sx.AssetType.ASSET_TYPE_CREDIT_ALPHANUM12:
        assert asset.alpha_num12 is not None
        return (
            asset.alpha_num12.asset_code.asset_code12.rstrip(b"\0").decode(),
            account_id_str(asset.alpha_num12.issuer),
        )
    raise ValueError(f"unsupported asset type {t.name}")


def trustline_asset_xdr(asset: AssetKey) -> sx.TrustLineAsset:
    code, issuer = asset
    raw = code.encode()
    if len(raw) <= 4:
        return sx.TrustLineAsset(
            sx.AssetType.ASSET_TYPE_CREDIT_ALPHANUM4,
            alpha_num4=sx.AlphaNum4(sx.AssetCode4(raw.ljust(4, b"\0")), account_id_xdr(issuer)),
        )
    return sx.TrustLineAsset(
        sx.AssetType.ASSET_TYPE_CREDIT_ALPHANUM12,
        alpha_num12=sx.AlphaNum12(sx.AssetCode12(raw.ljust(12, b"\0")), account_id_xdr(issuer)),
    )


def asset_name(asset: AssetKey | None) -> str:
    """The SEP-11 name the SAC uses in its events: ``native`` or ``CODE:ISSUER``."""
    return "native" if asset is None else f"{asset[0]}:{asset[1]}"


# ------------------------------------------------------------------------ ledger keys


@lru_cache(maxsize=65536)
def account_key(account: str) -> tuple[KeyBytes, sx.LedgerKey]:
    lk = sx.LedgerKey(sx.LedgerEntryType.ACCOUNT, account=sx.LedgerKeyAccount(account_id_xdr(account)))
    return lk.to_xdr_bytes(), lk


@lru_cache(maxsize=65536)
def trustline_key(account: str, asset: AssetKey) -> tuple[KeyBytes, sx.LedgerKey]:
    lk = sx.LedgerKey(
        sx.LedgerEntryType.TRUSTLINE,
        trust_line=sx.LedgerKeyTrustLine(account_id_xdr(account), trustline_asset_xdr(asset)),
    )
    return lk.to_xdr_bytes(), lk


def contract_data_key(
    contract: str, key: sx.SCVal, durability: sx.ContractDataDurability
) -> tuple[KeyBytes, sx.LedgerKey]:
    lk = sx.LedgerKey(
        sx.LedgerEntryType.CONTRACT_DATA,
        contract_data=sx.LedgerKeyContractData(sc_address(contract), key, durability),
    )
    return lk.to_xdr_bytes(), lk


INSTANCE_KEY_SCVAL = sx.SCVal(sx.SCValType.SCV_LEDGER_KEY_CONTRACT_INSTANCE)


@lru_cache(maxsize=256)
def instance_key(contract: str) -> tuple[KeyBytes, sx.LedgerKey]:
    return contract_data_key(contract, INSTANCE_KEY_SCVAL, PERSISTENT)


@lru_cache(maxsize=256)
def code_key(wasm_hash: bytes) -> tuple[KeyBytes, sx.LedgerKey]:
    lk = sx.LedgerKey(
        sx.LedgerEntryType.CONTRACT_CODE, contract_code=sx.LedgerKeyContractCode(sx.Hash(wasm_hash))
    )
    return lk.to_xdr_bytes(), lk


def nonce_key(address: str, nonce: int) -> tuple[KeyBytes, sx.LedgerKey]:
    key = sx.SCVal(sx.SCValType.SCV_LEDGER_KEY_NONCE, nonce_key=sx.SCNonceKey(sx.Int64(nonce)))
    return contract_data_key(address, key, TEMPORARY)


# --------------------------------------------------------------------- entry records


@dataclass(frozen=True, slots=True)
class Account:
    account_id: str
    balance: int
    seq_num: int
    num_subentries: int = 0
    flags: int = 0
    xdr_cache: bytes | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Trustline:
    account_id: str
    asset: AssetKey
    balance: int
    limit: int
    flags: int = AUTHORIZED_FLAG
    xdr_cache: bytes | None = field(default=None, compare=False, repr=False)


class ContractData:
    """A contract-data entry. ``val`` may be built lazily from ``native`` (a decoded,
    immutable value such as a ``Block``) with ``encoder``; whoever decodes ``val`` may
    cache the result in ``native``. Immutable by convention.

    ``shape``, when given, names everything the entry's XDR size depends on (e.g. a
    ``Pail`` key with an account farmer and no gap yet): entries of one shape have one
    size, so the size is packed once per shape, not once per entry."""

    __slots__ = ("_encoder", "_val", "contract", "durability", "key", "native", "shape", "xdr_cache")

    def __init__(
        self,
        contract: str,
        key: sx.SCVal,
        durability: sx.ContractDataDurability,
        val: sx.SCVal | None = None,
        native: Any = None,
        encoder: Callable[[Any], sx.SCVal] | None = None,
        shape: Hashable | None = None,
    ) -> None:
        if val is None and (native is None or encoder is None):
            raise ValueError("ContractData needs a value, or a native value and its encoder")
        self.contract = contract  # G... (nonces) or C...
        self.key = key
        self.durability = durability
        self._val = val
        self.native = native
        self._encoder = encoder
        self.shape = shape
        self.xdr_cache: bytes | None = None

    @property
    def val(self) -> sx.SCVal:
        if self._val is None:
            assert self._encoder is not None
            self._val = self._encoder(self.native)
        return self._val

    def __repr__(self) -> str:
        return f"ContractData({self.contract}, {self.key.type.name}, {self.durability.name})"


@dataclass(frozen=True, slots=True)
class ContractCode:
    hash: bytes
    code: bytes
    xdr_cache: bytes | None = field(default=None, compare=False, repr=False)


EntryData = Account | Trustline | ContractData | ContractCode


@dataclass(frozen=True, slots=True)
class Entry:
    data: EntryData
    last_modified: int
    live_until: int | None = None

    @property
    def is_temporary(self) -> bool:
        return isinstance(self.data, ContractData) and self.data.durability == TEMPORARY

    def alive(self, sequence: int) -> bool:
        """Whether the entry is live in ledger ``sequence`` (an expired temporary entry
        is gone; an expired persistent one would be archived, which the devnet never does)."""
        return self.live_until is None or not self.is_temporary or self.live_until >= sequence


def key_of(data: EntryData) -> tuple[KeyBytes, sx.LedgerKey]:
    if isinstance(data, Account):
        return account_key(data.account_id)
    if isinstance(data, Trustline):
        return trustline_key(data.account_id, data.asset)
    if isinstance(data, ContractData):
        return contract_data_key(data.contract, data.key, data.durability)
    return code_key(data.hash)


def entry_data_xdr(data: EntryData) -> sx.LedgerEntryData:
    if isinstance(data, Account):
        return sx.LedgerEntryData(
            sx.LedgerEntryType.ACCOUNT,
            account=sx.AccountEntry(
                account_id=account_id_xdr(data.account_id),
                balance=sx.Int64(data.balance),
                seq_num=sx.SequenceNumber(sx.Int64(data.seq_num)),
                num_sub_entries=sx.Uint32(data.num_subentries),
                inflation_dest=None,
                flags=sx.Uint32(data.flags),
                home_domain=sx.String32(b""),
                thresholds=sx.Thresholds(THRESHOLDS_MASTER_ONLY),
                signers=[],
                ext=sx.AccountEntryExt(0),
            ),
        )
    if isinstance(data, Trustline):
        return sx.LedgerEntryData(
            sx.LedgerEntryType.TRUSTLINE,
            trust_line=sx.TrustLineEntry(
                account_id=account_id_xdr(data.account_id),
                asset=trustline_asset_xdr(data.asset),
                balance=sx.Int64(data.balance),
                limit=sx.Int64(data.limit),
                flags=sx.Uint32(data.flags),
                ext=sx.TrustLineEntryExt(0),
            ),
        )
    if isinstance(data, ContractData):
        return sx.LedgerEntryData(
            sx.LedgerEntryType.CONTRACT_DATA,
            contract_data=sx.ContractDataEntry(
                ext=sx.ExtensionPoint(0),
                contract=sc_address(data.contract),
                key=data.key,
                durability=data.durability,
                val=data.val,
            ),
        )
    return sx.LedgerEntryData(
        sx.LedgerEntryType.CONTRACT_CODE,
        contract_code=sx.ContractCodeEntry(
            ext=sx.ContractCodeEntryExt(0), hash=sx.Hash(data.hash), code=data.code
        ),
    )


def entry_data_from_xdr(data: sx.LedgerEntryData) -> EntryData:
    """The record for a ``LedgerEntryData``; kinds the devnet does not keep raise ``ValueError``."""
    t = data.type
    if t == sx.LedgerEntryType.ACCOUNT:
        a = data.account
        assert a is not None
        if a.signers or a.thresholds.thresholds != THRESHOLDS_MASTER_ONLY:
            raise ValueError("accounts with extra signers or thresholds are not supported")
        return Account(
            account_id=account_id_str(a.account_id),
            balance=a.balance.int64,
            seq_num=a.seq_num.sequence_number.int64,
            num_subentries=a.num_sub_entries.uint32,
            flags=a.flags.uint32,
        )
    if t == sx.LedgerEntryType.TRUSTLINE:
        tl = data.trust_line
        assert tl is not None
        asset = asset_key_from_xdr(tl.asset)
        if asset is None:
            raise ValueError("a trustline cannot hold the native asset")
        return Trustline(
            account_id=account_id_str(tl.account_id),
            asset=asset,
            balance=tl.balance.int64,
            limit=tl.limit.int64,
            flags=tl.flags.uint32,
        )
    if t == sx.LedgerEntryType.CONTRACT_DATA:
        cd = data.contract_data
        assert cd is not None
        return ContractData(
            contract=address_str(cd.contract), key=cd.key, durability=cd.durability, val=cd.val
        )
    if t == sx.LedgerEntryType.CONTRACT_CODE:
        cc = data.contract_code
        assert cc is not None
        return ContractCode(hash=cc.hash.hash, code=cc.code)
    raise ValueError(f"ledger entries of type {t.name} are not kept by the devnet")


def entry_data_bytes(data: EntryData) -> bytes:
    """The ``LedgerEntryData`` XDR of a record, packed once and cached on it."""
    cached = data.xdr_cache
    if cached is None:
        cached = entry_data_xdr(data).to_xdr_bytes()
        object.__setattr__(data, "xdr_cache", cached)
    return cached


def ledger_entry_bytes(entry: Entry) -> bytes:
    """``LedgerEntry`` XDR: ``lastModifiedLedgerSeq``, the data, an empty extension."""
    return entry.last_modified.to_bytes(4, "big") + entry_data_bytes(entry.data) + b"\0\0\0\0"


_SHAPE_SIZES: dict[Hashable, int] = {}


def ledger_entry_size(entry: Entry) -> int:
    """The ``LedgerEntry`` XDR size in bytes (what reads, writes and rent are charged for)."""
    data = entry.data
    if data.xdr_cache is None and isinstance(data, ContractData) and data.shape is not None:
        size = _SHAPE_SIZES.get(data.shape)
        if size is None:
            size = _SHAPE_SIZES[data.shape] = len(entry_data_bytes(data))
        return size + 8
    return len(entry_data_bytes(data)) + 8
