"""The KALE farm bound to the devnet's host: storage, token port, argument conversion.

:class:`FarmContractImpl` is the farm as a host contract: it converts the call's
arguments, runs :class:`~kalepool.devnet.farm.FarmContract` (the rules) over
:class:`HostFarmStorage` (the farm's instance and its temporary ``Block``/``Pail``
entries, footprint recorded) and :class:`HostToken` (the KALE SAC's ``burn`` and
``mint``), and turns the rules' errors into host errors. It sits beside
:mod:`kalepool.devnet.sac`, the other contract the devnet runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def host_function(name: str) -> Iterator[None]:
    """Name the host function a failure inside this block came from (the host logs it
    when it escalates the error to a trap of the farm's VM)."""
    try:
        yield
    except HostError as err:
        err.host_fn = err.host_fn or name
        raise


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
        with host_function("get_contract_data"):
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
        shape = (
            "farm instance",
            executable.type,
            inst.homesteader and inst.homesteader[0],
            inst.asset and inst.asset[0],
            inst.farm_index != 0,
            inst.farm_block is not None,
            inst.paused,
        )  # what its size depends on: every other field is of fixed width
        with host_function("put_contract_data"):
            self.host.put(key, lk, instance_data(self.contract, InstanceValue(executable, inst), shape))

    def get_block(self, index: int) -> Block | None:
        block: Block | None = self._native(self.keys.block(self.contract, index), Block.from_scval)
        return block

    def put_block(self, index: int, block: Block) -> None:
        self._put_temporary(self.keys.block(self.contract, index), block, _encode_block, ("block",))

    def delete_block(self, index: int) -> None:
        with host_function("del_contract_data"):
            self.host.delete(*self.keys.block(self.contract, index))

    def get_pail(self, farmer: str, index: int) -> Pail | None:
        pail: Pail | None = self._native(self.keys.pail(self.contract, farmer, index), Pail.from_scval)
        return pail

    def put_pail(self, farmer: str, index: int, pail: Pail) -> None:
        shape = ("pail", farmer[0], pail.gap is None, pail.zeros is None)
        self._put_temporary(self.keys.pail(self.contract, farmer, index), pail, _encode_pail, shape)

    def _put_temporary(
        self,
        key: tuple[KeyBytes, sx.LedgerKey],
        native: Any,
        encoder: Callable[[Any], sx.SCVal],
        shape: tuple[Any, ...],
    ) -> None:
        """Write a temporary entry (``shape``: what its size depends on; a Block's fields
        are all of fixed width, a Pail's options are not)."""
        raw, lk = key
        assert lk.contract_data is not None
        data = ContractData(
            self.contract, lk.contract_data.key, TEMPORARY, native=native, encoder=encoder, shape=shape
        )
        with host_function("put_contract_data"):
            self.host.put(raw, lk, data)

    def delete_pail(self, farmer: str, index: int) -> None:
        with host_function("del_contract_data"):
            self.host.delete(*self.keys.pail(self.contract, farmer, index))

    def extend_instance_ttl(self) -> None:
        with host_function("extend_current_contract_instance_and_code_ttl"):
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
            self.host.call_from(self.sac, fn, [address_scval(address), scval.to_int128(amount)])
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

    #: A Wasm contract on the real network: the host logs its traps (see ``Host.call``).
    wasm = True

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
        except FarmError as err:  # the contract's panic_with_error!
            code = int(err.code)
            raise HostError(
                "Contract",
                code,
                "failing with contract error",
                contract=self.contract,
                args=[scval.to_uint32(code)],
                host_fn="fail_with_error",
            ) from err
        except TokenError as err:  # the token call failed: the host's error, as it was
            if isinstance(err.__cause__, HostError):
                raise err.__cause__ from None
            raise HostError("Contract", int(err.code), err.detail or err.name, contract=self.sac) from err
        except ArithmeticError as err:  # overflow checks: a Rust panic, the VM's unreachable trap
            raise HostError(
                "WasmVm",
                "InvalidAction",
                "VM call trapped: UnreachableCodeReached",
                contract=self.contract,
                args=[scval.to_symbol(fn)],
            ) from err
        except ValueError as err:  # argument validation inside the rules
            raise HostError("Value", "UnexpectedType", str(err), contract=self.contract) from err
