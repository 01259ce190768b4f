"""The KALE farm bound to the devnet's host: storage, token port, argument conversion.

:class:`FarmContractImpl` is the farm as a host contract: it converts the call's
arguments, runs :class:`~kalepool.devnet.farm.FarmContract` (the rules) over
:class:`HostFarmStorage` (the farm's instance and its temporary ``Block``/``Pail``
entries, footprint recorded) and :class:`HostToken` (the KALE SAC's ``burn`` and
``mint``), and turns the rules' errors into host errors. It sits beside
:mod:`kalepool.devnet.sac`, the other contract the devnet runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    TEMPORARY,
    ContractData,
    KeyBytes,
    address_scval,
    contract_data_key,
    instance_key,
)
from kalepool.devnet.farm import FarmContract
from kalepool.devnet.host import (
    Host,
    HostError,
    InstanceValue,
    convert_args,
    instance_data,
    load_instance,
)
from kalepool.devnet.ledger import INSTANCE_TTL_THRESHOLD, MAX_ENTRY_TTL
from kalepool.kale.errors import FarmError, TokenError
from kalepool.kale.storage import block_key, pail_key
from kalepool.kale.types import Block, FarmInstance, Pail


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

    def _instance(self) -> InstanceValue:
        return load_instance(self.host, self.contract, FarmInstance.from_instance_scval)

    def _native(self, key: tuple[KeyBytes, sx.LedgerKey], decode: Callable[[sx.SCVal], Any]) -> Any:
        """The decoded value of a live entry (cached on it), or None."""
        entry = self.host.get(*key)
        if entry is None:
            return None
        data = entry.data
        assert isinstance(data, ContractData)
        if data.native is None:
            data.native = decode(data.val)
        return data.native

    def get_instance(self) -> FarmInstance:
        storage = self._instance().storage
        assert isinstance(storage, FarmInstance)
        return storage

    def put_instance(self, inst: FarmInstance) -> None:
        executable = self._instance().executable
        key, lk = instance_key(self.contract)
        self.host.put(key, lk, instance_data(self.contract, InstanceValue(executable, inst)))

    def get_block(self, index: int) -> Block | None:
        block: Block | None = self._native(self.keys.block(self.contract, index), Block.from_scval)
        return block

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
        pail: Pail | None = self._native(self.keys.pail(self.contract, farmer, index), Pail.from_scval)
        return pail

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
