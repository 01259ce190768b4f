"""The Stellar Asset Contract (SAC) of a classic credit asset, as the host runs it.

Balances of G accounts live in their classic trustlines (the issuer's balance is
unlimited and never stored); balances of C contracts live in persistent
``Balance(address)`` contract data. Functions: ``balance``, ``transfer``, ``burn``,
``mint`` (admin), ``admin``, ``decimals``, ``name``, ``symbol``. Failures raise the SAC's
own contract errors (``Error(Contract, #10)`` balance, ``#13`` trustline missing, ...);
events follow CAP-67 (``mint`` and ``burn`` carry no admin topic).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from stellar_sdk import StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    AUTHORIZED_FLAG,
    INT64_MAX,
    PERSISTENT,
    AssetKey,
    ContractData,
    Trustline,
    account_key,
    address_scval,
    asset_name,
    contract_data_key,
    trustline_key,
)
from kalepool.devnet.host import Host, HostError, convert_args, load_instance
from kalepool.kale.errors import TokenErrorCode

T = TokenErrorCode
DECIMALS = 7
#: issuer account flags
AUTH_REQUIRED_FLAG = 1


@dataclass(frozen=True, slots=True)
class SacInstance:
    """The SAC's instance storage: asset, admin and metadata."""

    asset: AssetKey
    admin: str

    def to_scval_storage(self) -> list[sx.SCMapEntry]:
        code, issuer = self.asset
        metadata = scval.to_map(
            {
                scval.to_symbol("decimal"): scval.to_uint32(DECIMALS),
                scval.to_symbol("name"): scval.to_string(asset_name(self.asset)),
                scval.to_symbol("symbol"): scval.to_string(code),
            }
        )
        kind = "AlphaNum4" if len(code) <= 4 else "AlphaNum12"
        asset_info = scval.to_vec(
            [
                scval.to_symbol(kind),
                scval.to_map(
                    {
                        scval.to_symbol("asset_code"): scval.to_string(code),
                        scval.to_symbol("issuer"): scval.to_bytes(StrKey.decode_ed25519_public_key(issuer)),
                    }
                ),
            ]
        )
        return [
            sx.SCMapEntry(key=scval.to_symbol("METADATA"), val=metadata),
            sx.SCMapEntry(key=scval.to_vec([scval.to_symbol("Admin")]), val=scval.to_address(self.admin)),
            sx.SCMapEntry(key=scval.to_vec([scval.to_symbol("AssetInfo")]), val=asset_info),
        ]

    @classmethod
    def from_instance_scval(cls, val: sx.SCVal, asset: AssetKey) -> SacInstance:
        admin = asset[1]
        instance = val.instance
        if instance is not None and instance.storage is not None:
            for entry in instance.storage.sc_map:
                native_key = scval.to_native(entry.key)
                if native_key == ["Admin"]:
                    admin = scval.from_address(entry.val).address
        return cls(asset, admin)


def sac_executable() -> sx.ContractExecutable:
    return sx.ContractExecutable(sx.ContractExecutableType.CONTRACT_EXECUTABLE_STELLAR_ASSET)


def balance_key_scval(address: str) -> sx.SCVal:
    return scval.to_vec([scval.to_symbol("Balance"), scval.to_address(address)])


class StellarAssetContract:
    """The SAC of ``asset`` at ``contract``."""

    FUNCTIONS: ClassVar[dict[str, tuple[str, ...]]] = {
        "balance": ("address",),
        "transfer": ("address", "address", "i128"),
        "burn": ("address", "i128"),
        "mint": ("address", "i128"),
        "admin": (),
        "decimals": (),
        "name": (),
        "symbol": (),
    }
    UNSUPPORTED = frozenset(
        {
            "approve",
            "allowance",
            "transfer_from",
            "burn_from",
            "clawback",
            "set_admin",
            "set_authorized",
            "authorized",
            "trust",
        }
    )

    def __init__(self, contract: str, asset: AssetKey) -> None:
        self.contract = contract
        self.asset = asset
        self.issuer = asset[1]
        self.name = asset_name(asset)
        self.name_scval = scval.to_string(self.name)
        self.symbols = {n: scval.to_symbol(n) for n in ("transfer", "mint", "burn")}

    # -------------------------------------------------------------- dispatch

    def call(self, host: Host, fn: str, args: list[sx.SCVal]) -> sx.SCVal:
        spec = self.FUNCTIONS.get(fn)
        if spec is None:
            if fn in self.UNSUPPORTED:
                raise self._error(
                    host, T.OPERATION_NOT_SUPPORTED, f"{fn} is not supported by the kalepool devnet"
                )
            raise HostError("WasmVm", "MissingValue", "trying to invoke non-existent contract function")
        values = convert_args(args, spec)
        if fn == "balance":
            return scval.to_int128(self.balance(host, values[0]))
        if fn == "transfer":
            self.transfer(host, values[0], values[1], values[2])
        elif fn == "burn":
            self.burn(host, values[0], values[1])
        elif fn == "mint":
            self.mint(host, values[0], values[1])
        elif fn == "admin":
            return scval.to_address(self.admin(host))
        elif fn == "decimals":
            return scval.to_uint32(DECIMALS)
        elif fn == "name":
            return self.name_scval
        elif fn == "symbol":
            return scval.to_string(self.asset[0])
        return scval.to_void()

    def _error(self, host: Host, code: TokenErrorCode, message: str, *args: sx.SCVal) -> HostError:
        """The SAC's own error, with the values the host logs beside its message."""
        return HostError("Contract", int(code), message, contract=self.contract, args=args)

    # ------------------------------------------------------------- functions

    def balance(self, host: Host, address: str) -> int:
        if address.startswith("G"):
            if address == self.issuer:
                return INT64_MAX
            return self._trustline(host, address).balance
        entry = host.get(*self._balance_key(address))
        return 0 if entry is None else self._contract_balance(entry.data)[0]

    def transfer(self, host: Host, from_: str, to: str, amount: int) -> None:
        self._nonnegative(host, amount)
        host.require_auth(from_)
        self._spend(host, from_, amount)
        self._receive(host, to, amount)
        if from_ != to and from_ == self.issuer:
            host.emit(
                [self.symbols["mint"], address_scval(to), self.name_scval],
                scval.to_int128(amount),
            )
        elif from_ != to and to == self.issuer:
            host.emit(
                [self.symbols["burn"], address_scval(from_), self.name_scval],
                scval.to_int128(amount),
            )
        else:
            host.emit(
                [
                    self.symbols["transfer"],
                    address_scval(from_),
                    address_scval(to),
                    self.name_scval,
                ],
                scval.to_int128(amount),
            )

    def burn(self, host: Host, from_: str, amount: int) -> None:
        self._nonnegative(host, amount)
        if from_ == self.issuer:
            raise self._error(host, T.OPERATION_NOT_SUPPORTED, "operation invalid on issuer")
        host.require_auth(from_)
        self._spend(host, from_, amount)
        host.emit(
            [self.symbols["burn"], address_scval(from_), self.name_scval],
            scval.to_int128(amount),
        )

    def mint(self, host: Host, to: str, amount: int) -> None:
        self._nonnegative(host, amount)
        if to == self.issuer:
            raise self._error(host, T.OPERATION_NOT_SUPPORTED, "operation invalid on issuer")
        host.require_auth(self.admin(host))
        self._receive(host, to, amount)
        host.emit(
            [self.symbols["mint"], address_scval(to), self.name_scval],
            scval.to_int128(amount),
        )

    def admin(self, host: Host) -> str:
        storage = load_instance(host, self.contract, self._decode_instance).storage
        assert isinstance(storage, SacInstance)
        return storage.admin

    def _decode_instance(self, val: sx.SCVal) -> SacInstance:
        return SacInstance.from_instance_scval(val, self.asset)

    # --------------------------------------------------------------- balances

    def _nonnegative(self, host: Host, amount: int) -> None:
        if amount < 0:
            raise self._error(
                host, T.NEGATIVE_AMOUNT, "negative amount is not allowed", scval.to_int128(amount)
            )

    def _out_of_range(self, host: Host, new: int, limit: int) -> HostError:
        """A trustline balance leaving ``[0, limit]`` (the host logs min, new, max)."""
        values = (scval.to_int64(0), scval.to_int64(new), scval.to_int64(limit))
        return self._error(
            host, T.BALANCE_ERROR, "resulting balance is not within the allowed range", *values
        )

    def _i64(self, host: Host, amount: int) -> int:
        if amount > INT64_MAX:
            raise self._error(host, T.OVERFLOW, "amount is too large for an i64")
        return amount

    def _trustline(self, host: Host, account: str) -> Trustline:
        entry = host.get(*trustline_key(account, self.asset))
        if entry is None:
            raise self._error(
                host, T.TRUSTLINE_MISSING, "trustline entry is missing for account", address_scval(account)
            )
        assert isinstance(entry.data, Trustline)
        return entry.data

    def _balance_key(self, address: str) -> tuple[bytes, sx.LedgerKey]:
        return contract_data_key(self.contract, balance_key_scval(address), PERSISTENT)

    @staticmethod
    def _contract_balance(data: object) -> tuple[int, bool, bool]:
        assert isinstance(data, ContractData)
        fields = scval.to_native(data.val)
        if not isinstance(fields, dict):
            raise HostError("Value", "UnexpectedType", "malformed balance entry")
        return int(fields["amount"]), bool(fields["authorized"]), bool(fields["clawback"])

    def _spend(self, host: Host, address: str, amount: int) -> None:
        if address.startswith("G"):
            if address == self.issuer:
                return
            tl = self._trustline(host, address)
            if not tl.flags & AUTHORIZED_FLAG:
                raise self._error(host, T.BALANCE_DEAUTHORIZED, "balance is deauthorized")
            new = tl.balance - self._i64(host, amount)
            if new < 0:
                raise self._out_of_range(host, new, tl.limit)
            host.put(
                *trustline_key(address, self.asset),
                Trustline(tl.account_id, tl.asset, new, tl.limit, tl.flags),
            )
            return
        key, lk = self._balance_key(address)
        entry = host.get(key, lk)
        if entry is None:
            if amount > 0:
                raise self._error(
                    host, T.BALANCE_ERROR, "zero balance is not sufficient to spend", scval.to_int128(amount)
                )
            return
        have, authorized, clawback = self._contract_balance(entry.data)
        if not authorized:
            raise self._error(host, T.BALANCE_DEAUTHORIZED, "balance is deauthorized")
        if have < amount:
            raise self._error(
                host,
                T.BALANCE_ERROR,
                "balance is not sufficient to spend",
                scval.to_int128(have),
                scval.to_int128(amount),
            )
        self._write_contract_balance(host, address, have - amount, authorized, clawback)

    def _receive(self, host: Host, address: str, amount: int) -> None:
        if address.startswith("G"):
            if address == self.issuer:
                return
            tl = self._trustline(host, address)
            if not tl.flags & AUTHORIZED_FLAG:
                raise self._error(host, T.BALANCE_DEAUTHORIZED, "balance is deauthorized")
            new = tl.balance + self._i64(host, amount)
            if new > tl.limit:
                raise self._out_of_range(host, new, tl.limit)
            host.put(
                *trustline_key(address, self.asset),
                Trustline(tl.account_id, tl.asset, new, tl.limit, tl.flags),
            )
            return
        key, lk = self._balance_key(address)
        entry = host.get(key, lk)
        if entry is None:
            issuer = host.get(*account_key(self.issuer))
            flags = getattr(issuer.data, "flags", 0) if issuer is not None else 0
            if flags & AUTH_REQUIRED_FLAG:
                raise self._error(host, T.BALANCE_DEAUTHORIZED, "balance is deauthorized")
            have, authorized, clawback = 0, True, False
        else:
            have, authorized, clawback = self._contract_balance(entry.data)
            if not authorized:
                raise self._error(host, T.BALANCE_DEAUTHORIZED, "balance is deauthorized")
        self._write_contract_balance(host, address, have + amount, authorized, clawback)

    def _write_contract_balance(
        self, host: Host, address: str, amount: int, authorized: bool, clawback: bool
    ) -> None:
        key, lk = self._balance_key(address)
        val = scval.to_map(
            {
                scval.to_symbol("amount"): scval.to_int128(amount),
                scval.to_symbol("authorized"): scval.to_bool(authorized),
                scval.to_symbol("clawback"): scval.to_bool(clawback),
            }
        )
        assert lk.contract_data is not None
        host.put(key, lk, ContractData(self.contract, lk.contract_data.key, PERSISTENT, val))
