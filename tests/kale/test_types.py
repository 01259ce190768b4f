"""Block, Pail and FarmInstance: validation, the §2.2 value samples and round trips."""

from __future__ import annotations

import base64
import functools

import pytest
from hypothesis import given
from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.errors import InvalidInput
from kalepool.kale import constants as c
from kalepool.kale.types import Block, FarmInstance, Pail
from tests.kale.strategies import blocks, instances, pails

G_KALE = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
G_NULL = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"
C_FARM = "CDL74RF5BLYR2YBLCCI7F5FB6TPSCLKEJUBSD2RSVWZ4YHF3VMFAIGWA"
C_SAC = "CB23WRDQWGSP6YPMY4UV5C4OW5CBTXKYN3XEATG7KJEZCXMJBYEHOUOV"

PAIL_PLANTED = (
    "AAAAEQAAAAEAAAAEAAAADwAAAANnYXAAAAAAAQAAAA8AAAAIc2VxdWVuY2UAAAADAAAD6QAAAA8AAAAFc3Rha2UAAAAA"
    "AAAKAAAAAAAAAAAAAAAAAJiWgAAAAA8AAAAFemVyb3MAAAAAAAAB"
)
PAIL_WORKED = (
    "AAAAEQAAAAEAAAAEAAAADwAAAANnYXAAAAAAAwAAAAMAAAAPAAAACHNlcXVlbmNlAAAAAwAAA+kAAAAPAAAABXN0YWtl"
    "AAAAAAAACgAAAAAAAAAAAAAAAACYloAAAAAPAAAABXplcm9zAAAAAAAAAwAAAAM="
)

BLOCK_KEYS = [
    "entropy", "max_gap", "max_stake", "max_zeros", "min_gap", "min_stake", "min_zeros",
    "normalized_total", "staked_total", "timestamp",
]


def host_sorted(entries: list[sx.SCMapEntry]) -> bool:
    order = functools.cmp_to_key(lambda a, b: scval._compare_sc_val(a.key, b.key))
    return [e.key.to_xdr() for e in sorted(entries, key=order)] == [e.key.to_xdr() for e in entries]


def sample_block() -> Block:
    return Block(
        timestamp=1_700_000_000,
        min_gap=3,
        min_stake=0,
        min_zeros=3,
        max_gap=13,
        max_stake=10_000_000,
        max_zeros=4,
        entropy=bytes(range(32)),
        staked_total=5,
        normalized_total=6,
    )


# ---------------------------------------------------------------------- samples


def test_pail_samples_of_section_2_2() -> None:
    planted = Pail(sequence=1001, gap=None, stake=10_000_000, zeros=None)
    worked = Pail(sequence=1001, gap=3, stake=10_000_000, zeros=3)
    assert planted.to_scval().to_xdr() == PAIL_PLANTED
    assert worked.to_scval().to_xdr() == PAIL_WORKED
    assert Pail.from_scval(sx.SCVal.from_xdr(PAIL_PLANTED)) == planted
    assert Pail.from_scval(sx.SCVal.from_xdr(PAIL_WORKED)) == worked
    assert not planted.worked
    assert worked.worked
    assert worked.to_native() == {"gap": 3, "sequence": 1001, "stake": 10_000_000, "zeros": 3}
    assert scval.to_native(sx.SCVal.from_xdr(PAIL_PLANTED)) == planted.to_native()


def test_block_key_order_and_native() -> None:
    sc = sample_block().to_scval()
    assert sc.map is not None
    assert [scval.from_symbol(e.key) for e in sc.map.sc_map] == BLOCK_KEYS
    assert scval.to_native(sc) == sample_block().to_native()
    assert Block.from_native(scval.to_native(sc)) == sample_block()


def test_fresh_accumulator_and_from_accumulator() -> None:
    acc = Block.fresh_accumulator(42)
    assert (acc.min_gap, acc.min_zeros, acc.min_stake) == (c.U32_MAX, c.U32_MAX, c.I128_MAX)
    assert (acc.max_gap, acc.max_zeros, acc.max_stake) == (0, 0, c.I128_MIN)
    assert acc.entropy == bytes(32)
    assert (acc.timestamp, acc.staked_total, acc.normalized_total) == (42, 0, 0)

    fresh = Block.from_accumulator(acc, 99)
    assert fresh == Block(99, 0, 0, 0, 0, 0, 0, bytes(32), 0, 0)

    # plants but no works: stake range set, gap and zeros still sentinels
    planted = Block.from_accumulator(
        Block(1, c.U32_MAX, 0, c.U32_MAX, 0, 10_000_000, 0, bytes(32), 0, 0), 7
    )
    assert planted == Block(7, 0, 0, 0, 0, 10_000_000, 0, bytes(32), 0, 0)

    used = Block(1, 3, 0, 3, 13, 10_000_000, 4, b"\x07" * 32, 11, 12)
    assert Block.from_accumulator(used, 5) == Block(5, 3, 0, 3, 13, 10_000_000, 4, b"\x07" * 32, 0, 0)


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", -1),
        ("timestamp", 2**64),
        ("min_gap", 2**32),
        ("max_zeros", -1),
        ("min_stake", c.I128_MAX + 1),
        ("staked_total", c.I128_MIN - 1),
        ("entropy", bytes(31)),
        ("entropy", "00" * 32),
        ("normalized_total", True),
        ("max_gap", 1.0),
    ],
)
def test_block_validation_names_field(field: str, value: object) -> None:
    data = sample_block().to_native()
    data[field] = value  # type: ignore[assignment]
    with pytest.raises(ValueError, match=rf"block\.{field}") as info:
        Block.from_native(data)
    assert isinstance(info.value, InvalidInput)


@pytest.mark.parametrize(
    ("field", "value"),
    [("sequence", -1), ("gap", 2**32), ("stake", 2**127), ("zeros", -1), ("sequence", None)],
)
def test_pail_validation_names_field(field: str, value: object) -> None:
    data: dict[str, object] = {"sequence": 1, "gap": None, "stake": 0, "zeros": None, field: value}
    with pytest.raises(ValueError, match=rf"pail\.{field}"):
        Pail.from_native(data)


def test_decoding_requires_every_field_and_exact_types() -> None:
    good = Pail(1, 2, 3, 4).to_scval()
    assert good.map is not None
    missing = sx.SCVal(sx.SCValType.SCV_MAP, map=sx.SCMap(sc_map=good.map.sc_map[:-1]))
    with pytest.raises(ValueError, match=r"pail\.zeros"):
        Pail.from_scval(missing)
    extra = sx.SCMapEntry(key=scval.to_symbol("extra"), val=scval.to_uint32(1))
    with pytest.raises(ValueError, match=r"pail\.extra"):
        Pail.from_scval(sx.SCVal(sx.SCValType.SCV_MAP, map=sx.SCMap(sc_map=[*good.map.sc_map, extra])))
    # order is ignored
    shuffled = sx.SCVal(sx.SCValType.SCV_MAP, map=sx.SCMap(sc_map=list(reversed(good.map.sc_map))))
    assert Pail.from_scval(shuffled) == Pail(1, 2, 3, 4)
    # a U64 where a U32 belongs is rejected
    wrong = [
        sx.SCMapEntry(key=e.key, val=scval.to_uint64(1))
        if scval.from_symbol(e.key) == "sequence" else e
        for e in good.map.sc_map
    ]
    with pytest.raises(ValueError, match=r"pail\.sequence"):
        Pail.from_scval(sx.SCVal(sx.SCValType.SCV_MAP, map=sx.SCMap(sc_map=wrong)))
    with pytest.raises(ValueError, match="block"):
        Block.from_scval(scval.to_uint32(1))
    with pytest.raises(ValueError, match=r"block\.entropy"):
        data = sample_block().to_native()
        sc = Block.from_native(data).to_scval()
        assert sc.map is not None
        short = [
            sx.SCMapEntry(key=e.key, val=scval.to_bytes(bytes(31)))
            if scval.from_symbol(e.key) == "entropy" else e
            for e in sc.map.sc_map
        ]
        Block.from_scval(sx.SCVal(sx.SCValType.SCV_MAP, map=sx.SCMap(sc_map=short)))


def test_instance_validation() -> None:
    with pytest.raises(ValueError, match=r"instance\.homesteader"):
        FarmInstance(homesteader="GABC")
    with pytest.raises(ValueError, match=r"instance\.farm_index"):
        FarmInstance(farm_index=-1)
    with pytest.raises(ValueError, match=r"instance\.paused"):
        FarmInstance(paused=1)  # type: ignore[arg-type]


# ---------------------------------------------------------------- FarmInstance


def test_instance_storage_encoding() -> None:
    inst = FarmInstance(
        homesteader=G_KALE, asset=C_SAC, farm_index=31337, farm_block=sample_block(), paused=True
    )
    entries = inst.to_scval_storage()
    names = [scval.to_native(e.key)[0] for e in entries]
    assert names == ["FarmBlock", "FarmIndex", "FarmPaused", "HomesteadAsset", "Homesteader"]
    assert host_sorted(entries)
    assert FarmInstance.from_storage_map(entries) == inst
    native = {scval.to_native(e.key)[0]: scval.to_native(e.val) for e in entries}
    assert native["FarmIndex"] == 31337
    assert native["HomesteadAsset"].address == C_SAC


def test_instance_defaults_for_absent_keys() -> None:
    empty = FarmInstance.from_storage_map(None)
    assert empty == FarmInstance(None, None, 0, None, False)
    assert empty.to_scval_storage() == []
    # index 0 and not-paused are not written, as the contract leaves them absent
    fresh = FarmInstance(G_KALE, C_SAC, 0, Block.fresh_accumulator(5), False)
    names = [scval.to_native(e.key)[0] for e in fresh.to_scval_storage()]
    assert names == ["FarmBlock", "HomesteadAsset", "Homesteader"]
    # an explicit FarmPaused=false decodes as not paused
    entries = [*fresh.to_scval_storage(), sx.SCMapEntry(
        key=scval.to_vec([scval.to_symbol("FarmPaused")]), val=scval.to_bool(False))]
    assert FarmInstance.from_storage_map(entries) == fresh


def test_instance_ignores_unknown_keys() -> None:
    legacy = sx.SCMapEntry(key=scval.to_vec([scval.to_symbol("FarmEntropy")]), val=scval.to_bytes(bytes(32)))
    inst = FarmInstance(G_NULL, C_SAC, 3, None, False)
    assert FarmInstance.from_storage_map([legacy, *inst.to_scval_storage()]) == inst


def test_instance_scval_and_wrong_value_type() -> None:
    inst = FarmInstance(G_NULL, C_SAC, 3, sample_block(), False)
    executable = sx.ContractExecutable(
        sx.ContractExecutableType.CONTRACT_EXECUTABLE_WASM, wasm_hash=sx.Hash(bytes(32))
    )
    sc = inst.to_instance_scval(executable)
    assert FarmInstance.from_instance_scval(sx.SCVal.from_xdr(sc.to_xdr())) == inst
    with pytest.raises(ValueError, match="instance"):
        FarmInstance.from_instance_scval(scval.to_uint32(1))
    bad = [sx.SCMapEntry(key=scval.to_vec([scval.to_symbol("FarmIndex")]), val=scval.to_uint64(1))]
    with pytest.raises(ValueError, match=r"instance\.FarmIndex"):
        FarmInstance.from_storage_map(bad)


# ------------------------------------------------------------------ round trips


@given(blocks)
def test_block_round_trip(block: Block) -> None:
    sc = block.to_scval()
    assert sc.map is not None
    assert host_sorted(sc.map.sc_map)
    assert Block.from_scval(sx.SCVal.from_xdr(sc.to_xdr())) == block
    assert Block.from_native(block.to_native()) == block
    assert scval.to_native(sc) == block.to_native()


@given(pails)
def test_pail_round_trip(pail: Pail) -> None:
    sc = pail.to_scval()
    assert Pail.from_scval(sx.SCVal.from_xdr(sc.to_xdr())) == pail
    assert Pail.from_native(pail.to_native()) == pail
    assert scval.to_native(sc) == pail.to_native()


@given(instances)
def test_instance_round_trip(inst: FarmInstance) -> None:
    entries = inst.to_scval_storage()
    assert host_sorted(entries)
    raw = sx.SCMap(sc_map=entries).to_xdr()
    assert FarmInstance.from_storage_map(sx.SCMap.from_xdr(raw).sc_map) == inst
    assert base64.b64decode(raw)  # valid XDR
