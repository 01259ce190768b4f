"""The farm contract's data types and their ScVal encodings (``kale-contract.md`` §2).

- :class:`Block`: the ``FarmBlock`` accumulator (instance storage) and the per-index
  ``Block(i)`` (temporary storage) share this struct.
- :class:`Pail`: one farmer's entry in one block.
- :class:`FarmInstance`: the five keys of the contract's instance storage.

A ``#[contracttype]`` struct is an ``SCV_MAP`` keyed by ``Symbol(field)``, sorted by key
bytes. Decoding requires every field, rejects unknown ones and ignores order; encoding
sorts. Values are range-checked on construction, and a bad one raises
:class:`~kalepool.errors.InvalidInput` (a ``ValueError``) naming the field.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Self

from stellar_sdk import Address, StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.errors import InvalidInput
from kalepool.kale.constants import I128_MAX, I128_MIN, U32_MAX, U64_MAX

ENTROPY_LENGTH = 32
ZERO_ENTROPY = bytes(ENTROPY_LENGTH)

T = sx.SCValType

# ---------------------------------------------------------------------------- checks


def _check_int(value: object, field: str, low: int, high: int, kind: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(field, f"expected an integer ({kind}), got {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInput(field, f"{value} is outside the {kind} range [{low}, {high}]")
    return value


def check_u32(value: object, field: str) -> int:
    return _check_int(value, field, 0, U32_MAX, "u32")


def check_u64(value: object, field: str) -> int:
    return _check_int(value, field, 0, U64_MAX, "u64")


def check_i128(value: object, field: str) -> int:
    return _check_int(value, field, I128_MIN, I128_MAX, "i128")


def check_entropy(value: object, field: str = "entropy") -> bytes:
    if not isinstance(value, bytes | bytearray):
        raise InvalidInput(field, f"expected 32 bytes, got {type(value).__name__}")
    if len(value) != ENTROPY_LENGTH:
        raise InvalidInput(field, f"expected exactly 32 bytes, got {len(value)}")
    return bytes(value)


@functools.lru_cache(maxsize=65_536)
def _is_address(value: str) -> bool:
    # strkey decoding (base32 + CRC) is costly and the same few addresses recur constantly
    return StrKey.is_valid_ed25519_public_key(value) or StrKey.is_valid_contract(value)


def check_address(value: object, field: str) -> str:
    """A G... account or C... contract address (the two kinds the farm deals with)."""
    if isinstance(value, str) and _is_address(value):
        return value
    raise InvalidInput(field, f"{value!r} is not a valid G... account or C... contract address")


# ------------------------------------------------------------------ ScVal helpers


def _expect(sc: sx.SCVal, kind: sx.SCValType, field: str) -> sx.SCVal:
    if not isinstance(sc, sx.SCVal):
        raise InvalidInput(field, f"expected an SCVal, got {type(sc).__name__}")
    if sc.type != kind:
        raise InvalidInput(field, f"expected {kind.name}, got {sc.type.name}")
    return sc


def _dec_u32(sc: sx.SCVal, field: str) -> int:
    return scval.from_uint32(_expect(sc, T.SCV_U32, field))


def _dec_u64(sc: sx.SCVal, field: str) -> int:
    return scval.from_uint64(_expect(sc, T.SCV_U64, field))


def _dec_i128(sc: sx.SCVal, field: str) -> int:
    return scval.from_int128(_expect(sc, T.SCV_I128, field))


def _dec_bytes(sc: sx.SCVal, field: str) -> bytes:
    return scval.from_bytes(_expect(sc, T.SCV_BYTES, field))


def _dec_opt_u32(sc: sx.SCVal, field: str) -> int | None:
    if isinstance(sc, sx.SCVal) and sc.type == T.SCV_VOID:
        return None
    return _dec_u32(sc, field)


def _enc_opt_u32(value: int | None) -> sx.SCVal:
    return scval.to_void() if value is None else scval.to_uint32(value)


def _dec_address(sc: sx.SCVal, field: str) -> str:
    return check_address(scval.from_address(_expect(sc, T.SCV_ADDRESS, field)).address, field)


def _dec_bool(sc: sx.SCVal, field: str) -> bool:
    return scval.from_bool(_expect(sc, T.SCV_BOOL, field))


def encode_struct(values: Mapping[str, sx.SCVal]) -> sx.SCVal:
    """An ``SCV_MAP`` with ``Symbol`` keys sorted by their bytes, as the host requires."""
    entries = [
        sx.SCMapEntry(key=scval.to_symbol(name), val=values[name])
        for name in sorted(values, key=lambda n: n.encode())
    ]
    return sx.SCVal(T.SCV_MAP, map=sx.SCMap(sc_map=entries))


def decode_struct(sc: sx.SCVal, struct: str, names: Sequence[str]) -> dict[str, sx.SCVal]:
    """The fields of a struct map: every name required, none unknown, any order."""
    _expect(sc, T.SCV_MAP, struct)
    entries = sc.map.sc_map if sc.map is not None else []
    out: dict[str, sx.SCVal] = {}
    for entry in entries:
        key = _expect(entry.key, T.SCV_SYMBOL, f"{struct} key")
        name = scval.from_symbol(key)
        if name not in names:
            raise InvalidInput(f"{struct}.{name}", "unknown field")
        if name in out:
            raise InvalidInput(f"{struct}.{name}", "duplicate field")
        out[name] = entry.val
    missing = [n for n in names if n not in out]
    if missing:
        raise InvalidInput(f"{struct}.{missing[0]}", f"missing field(s) {', '.join(missing)}")
    return out


# ------------------------------------------------------------------------- Block


@dataclass(frozen=True, slots=True)
class Block:
    """The ``Block`` struct: a block's frozen ranges and entropy plus running totals.

    As ``FarmBlock`` it is the accumulator of the current block (its totals stay 0);
    as ``Block(i)`` its ranges are the previous block's statistics (§2.1).
    """

    timestamp: int
    min_gap: int
    min_stake: int
    min_zeros: int
    max_gap: int
    max_stake: int
    max_zeros: int
    entropy: bytes
    staked_total: int
    normalized_total: int

    _U32: ClassVar[tuple[str, ...]] = ("min_gap", "min_zeros", "max_gap", "max_zeros")
    _I128: ClassVar[tuple[str, ...]] = ("min_stake", "max_stake", "staked_total", "normalized_total")

    def __post_init__(self) -> None:
        check_u64(self.timestamp, "block.timestamp")
        for name in self._U32:
            check_u32(getattr(self, name), f"block.{name}")
        for name in self._I128:
            check_i128(getattr(self, name), f"block.{name}")
        object.__setattr__(self, "entropy", check_entropy(self.entropy, "block.entropy"))

    @classmethod
    def fresh_accumulator(cls, timestamp: int) -> Block:
        """A reset ``FarmBlock``: the sentinels of §2.1, zero entropy, zero totals."""
        return cls(
            timestamp=timestamp,
            min_gap=U32_MAX,
            min_stake=I128_MAX,
            min_zeros=U32_MAX,
            max_gap=0,
            max_stake=I128_MIN,
            max_zeros=0,
            entropy=ZERO_ENTROPY,
            staked_total=0,
            normalized_total=0,
        )

    @classmethod
    def from_accumulator(cls, acc: Block, timestamp: int) -> Block:
        """A new ``Block(i)`` created at ``timestamp`` from the accumulator ``acc`` (§3.3 5a/5c).

        Each min/max is copied with a sentinel turned into 0, the entropy is the last
        applied work's hash, and both totals start at 0.
        """

        def unsentinel(value: int, sentinel: int) -> int:
            return 0 if value == sentinel else value

        return cls(
            timestamp=timestamp,
            min_gap=unsentinel(acc.min_gap, U32_MAX),
            min_stake=unsentinel(acc.min_stake, I128_MAX),
            min_zeros=unsentinel(acc.min_zeros, U32_MAX),
            max_gap=acc.max_gap,
            max_stake=unsentinel(acc.max_stake, I128_MIN),
            max_zeros=acc.max_zeros,
            entropy=acc.entropy,
            staked_total=0,
            normalized_total=0,
        )

    def to_scval(self) -> sx.SCVal:
        return encode_struct(
            {
                "timestamp": scval.to_uint64(self.timestamp),
                "min_gap": scval.to_uint32(self.min_gap),
                "min_stake": scval.to_int128(self.min_stake),
                "min_zeros": scval.to_uint32(self.min_zeros),
                "max_gap": scval.to_uint32(self.max_gap),
                "max_stake": scval.to_int128(self.max_stake),
                "max_zeros": scval.to_uint32(self.max_zeros),
                "entropy": scval.to_bytes(self.entropy),
                "staked_total": scval.to_int128(self.staked_total),
                "normalized_total": scval.to_int128(self.normalized_total),
            }
        )

    @classmethod
    def from_scval(cls, sc: sx.SCVal) -> Block:
        f = decode_struct(sc, "block", BLOCK_FIELDS)
        return cls(
            timestamp=_dec_u64(f["timestamp"], "block.timestamp"),
            min_gap=_dec_u32(f["min_gap"], "block.min_gap"),
            min_stake=_dec_i128(f["min_stake"], "block.min_stake"),
            min_zeros=_dec_u32(f["min_zeros"], "block.min_zeros"),
            max_gap=_dec_u32(f["max_gap"], "block.max_gap"),
            max_stake=_dec_i128(f["max_stake"], "block.max_stake"),
            max_zeros=_dec_u32(f["max_zeros"], "block.max_zeros"),
            entropy=_dec_bytes(f["entropy"], "block.entropy"),
            staked_total=_dec_i128(f["staked_total"], "block.staked_total"),
            normalized_total=_dec_i128(f["normalized_total"], "block.normalized_total"),
        )

    def to_native(self) -> dict[str, int | bytes]:
        """The struct as ``scval.to_native`` gives it: field name → int or bytes."""
        return {name: getattr(self, name) for name in BLOCK_FIELDS}

    @classmethod
    def from_native(cls, data: Mapping[str, Any]) -> Block:
        return cls(**_native_fields(data, "block", BLOCK_FIELDS))


BLOCK_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Block))


# -------------------------------------------------------------------------- Pail


@dataclass(frozen=True, slots=True)
class Pail:
    """The ``Pail`` struct: one farmer's plant (and work, once done) in one block."""

    sequence: int
    gap: int | None
    stake: int
    zeros: int | None

    def __post_init__(self) -> None:
        check_u32(self.sequence, "pail.sequence")
        if self.gap is not None:
            check_u32(self.gap, "pail.gap")
        check_i128(self.stake, "pail.stake")
        if self.zeros is not None:
            check_u32(self.zeros, "pail.zeros")

    @property
    def worked(self) -> bool:
        """Whether a ``work`` has been applied (both ``gap`` and ``zeros`` are set)."""
        return self.gap is not None and self.zeros is not None

    def to_scval(self) -> sx.SCVal:
        return encode_struct(
            {
                "sequence": scval.to_uint32(self.sequence),
                "gap": _enc_opt_u32(self.gap),
                "stake": scval.to_int128(self.stake),
                "zeros": _enc_opt_u32(self.zeros),
            }
        )

    @classmethod
    def from_scval(cls, sc: sx.SCVal) -> Pail:
        f = decode_struct(sc, "pail", PAIL_FIELDS)
        return cls(
            sequence=_dec_u32(f["sequence"], "pail.sequence"),
            gap=_dec_opt_u32(f["gap"], "pail.gap"),
            stake=_dec_i128(f["stake"], "pail.stake"),
            zeros=_dec_opt_u32(f["zeros"], "pail.zeros"),
        )

    def to_native(self) -> dict[str, int | None]:
        """The struct as ``scval.to_native`` gives it; ``None`` for an unset option."""
        return {name: getattr(self, name) for name in PAIL_FIELDS}

    @classmethod
    def from_native(cls, data: Mapping[str, Any]) -> Pail:
        return cls(**_native_fields(data, "pail", PAIL_FIELDS))


PAIL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Pail))


def _native_fields(data: Mapping[str, Any], struct: str, names: Sequence[str]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput(struct, f"expected a mapping, got {type(data).__name__}")
    unknown = [k for k in data if k not in names]
    if unknown:
        raise InvalidInput(f"{struct}.{unknown[0]}", "unknown field")
    missing = [n for n in names if n not in data]
    if missing:
        raise InvalidInput(f"{struct}.{missing[0]}", f"missing field(s) {', '.join(missing)}")
    return {n: data[n] for n in names}


# ------------------------------------------------------------------ FarmInstance

#: Names of the instance-storage keys (each stored as ``Vec[Symbol(name)]``).
HOMESTEADER = "Homesteader"
HOMESTEAD_ASSET = "HomesteadAsset"
FARM_INDEX = "FarmIndex"
FARM_BLOCK = "FarmBlock"
FARM_PAUSED = "FarmPaused"


def unit_key(name: str) -> sx.SCVal:
    """The key of a unit variant of the contract's ``Storage`` enum: ``Vec[Symbol(name)]``."""
    return scval.to_vec([scval.to_symbol(name)])


def _unit_key_name(key: sx.SCVal) -> str | None:
    """``name`` for a ``Vec[Symbol(name)]`` key, else ``None``."""
    if key.type != T.SCV_VEC or key.vec is None or len(key.vec.sc_vec) != 1:
        return None
    head = key.vec.sc_vec[0]
    if head.type != T.SCV_SYMBOL or head.sym is None:
        return None
    return head.sym.sc_symbol.decode()


@dataclass(frozen=True, slots=True)
class FarmInstance:
    """The farm's instance storage.

    ``farm_index`` 0 stands for an absent ``FarmIndex`` and ``paused`` False for an
    absent ``FarmPaused`` (the contract reads both that way); encoding omits them
    then, and omits ``Homesteader``, ``HomesteadAsset`` and ``FarmBlock`` when None.
    """

    homesteader: str | None = None
    asset: str | None = None
    farm_index: int = 0
    farm_block: Block | None = None
    paused: bool = False

    def __post_init__(self) -> None:
        if self.homesteader is not None:
            check_address(self.homesteader, "instance.homesteader")
        if self.asset is not None:
            check_address(self.asset, "instance.asset")
        check_u32(self.farm_index, "instance.farm_index")
        if self.farm_block is not None and not isinstance(self.farm_block, Block):
            raise InvalidInput("instance.farm_block", "expected a Block")
        if not isinstance(self.paused, bool):
            raise InvalidInput("instance.paused", f"expected a bool, got {type(self.paused).__name__}")

    @classmethod
    def from_storage_map(cls, entries: Sequence[sx.SCMapEntry] | None) -> Self:
        """Decode the instance's storage map entries; unknown keys (e.g. the dead
        ``FarmEntropy``) are ignored, absent ones take the contract's defaults."""
        decoders: dict[str, tuple[str, Callable[[sx.SCVal, str], object]]] = {
            HOMESTEADER: ("homesteader", _dec_address),
            HOMESTEAD_ASSET: ("asset", _dec_address),
            FARM_INDEX: ("farm_index", _dec_u32),
            FARM_BLOCK: ("farm_block", lambda sc, _field: Block.from_scval(sc)),
            FARM_PAUSED: ("paused", _dec_bool),
        }
        values: dict[str, Any] = {}
        for entry in entries or ():
            name = _unit_key_name(entry.key)
            if name is None or name not in decoders:
                continue
            attr, decode = decoders[name]
            values[attr] = decode(entry.val, f"instance.{name}")
        return cls(**values)

    @classmethod
    def from_instance_scval(cls, sc: sx.SCVal) -> Self:
        """Decode an ``SCV_CONTRACT_INSTANCE`` value (the instance ledger entry's ``val``)."""
        _expect(sc, T.SCV_CONTRACT_INSTANCE, "instance")
        assert sc.instance is not None
        storage = sc.instance.storage
        return cls.from_storage_map(storage.sc_map if storage is not None else None)

    def to_scval_storage(self) -> list[sx.SCMapEntry]:
        """The storage map entries, sorted by key as the host keeps them.

        Every key is a one-element ``Vec[Symbol]``, so the host's order (element-wise,
        symbols by bytes) is the order of the names' bytes.
        """
        values: dict[str, sx.SCVal] = {}
        if self.homesteader is not None:
            values[HOMESTEADER] = scval.to_address(self.homesteader)
        if self.asset is not None:
            values[HOMESTEAD_ASSET] = scval.to_address(self.asset)
        if self.farm_index != 0:
            values[FARM_INDEX] = scval.to_uint32(self.farm_index)
        if self.farm_block is not None:
            values[FARM_BLOCK] = self.farm_block.to_scval()
        if self.paused:
            values[FARM_PAUSED] = scval.to_bool(True)
        return [
            sx.SCMapEntry(key=unit_key(name), val=values[name])
            for name in sorted(values, key=lambda n: n.encode())
        ]

    def to_instance_scval(self, executable: sx.ContractExecutable) -> sx.SCVal:
        """An ``SCV_CONTRACT_INSTANCE`` value holding this storage and ``executable``."""
        return sx.SCVal(
            T.SCV_CONTRACT_INSTANCE,
            instance=sx.SCContractInstance(
                executable=executable, storage=sx.SCMap(sc_map=self.to_scval_storage())
            ),
        )


def address_scval(address: str) -> sx.SCVal:
    """``ScVal::Address`` of a validated G... or C... address."""
    return scval.to_address(Address(check_address(address, "address")))
