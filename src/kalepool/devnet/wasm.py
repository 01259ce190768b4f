"""The farm's code entry: a valid WebAssembly module carrying KALE-sc's interface.

The devnet runs the farm's rules in Python (:mod:`kalepool.devnet.farm`), so its code
entry holds no real contract. It is still what a real one looks like from the outside,
for the clients that read contracts' code to learn their interface (stellar-sdk's
``contract.Client.from``, generated bindings):

- one exported function per contract function (Soroban passes every value as an
  ``i64``), whose body traps (``unreachable``): nothing here ever runs;
- ``contractspecv0``: the interface as ``SCSpecEntry`` XDR: the functions with their
  argument names and types and their results, the ``Block`` and ``Pail`` structs, the
  ``Storage`` keys and the ``Errors`` enum (#1..#15);
- ``contractenvmetav0``: the protocol it was built for; ``contractmetav0``: who made it.

Its hash (the code entry's key, the instance's executable) is the hash of these bytes.
"""

from __future__ import annotations

from functools import lru_cache

from stellar_sdk import xdr as sx

from kalepool.devnet.codec import sha256
from kalepool.devnet.ledger import PROTOCOL_VERSION
from kalepool.kale.errors import FarmErrorCode

T = sx.SCSpecType
K = sx.SCSpecEntryKind
I64 = 0x7E


def _t(kind: sx.SCSpecType) -> sx.SCSpecTypeDef:
    return sx.SCSpecTypeDef(kind)


def _bytes_n(n: int) -> sx.SCSpecTypeDef:
    return sx.SCSpecTypeDef(T.SC_SPEC_TYPE_BYTES_N, bytes_n=sx.SCSpecTypeBytesN(sx.Uint32(n)))


def _option(inner: sx.SCSpecTypeDef) -> sx.SCSpecTypeDef:
    return sx.SCSpecTypeDef(T.SC_SPEC_TYPE_OPTION, option=sx.SCSpecTypeOption(inner))


ADDRESS, I128, U32, U64 = (
    _t(k) for k in (T.SC_SPEC_TYPE_ADDRESS, T.SC_SPEC_TYPE_I128, T.SC_SPEC_TYPE_U32, T.SC_SPEC_TYPE_U64)
)
HASH = _bytes_n(32)

#: ``(name, doc, [(argument, type)], result or None)``, in the contract's order.
FUNCTIONS: list[tuple[str, str, list[tuple[str, sx.SCSpecTypeDef]], sx.SCSpecTypeDef | None]] = [
    (
        "__constructor",
        "Sets the homesteader (admin) and the asset (the KALE SAC).",
        [("farmer", ADDRESS), ("asset", ADDRESS)],
        None,
    ),
    (
        "plant",
        "Stakes `amount` (burned) for the current block; one plant per farmer per block.",
        [("farmer", ADDRESS), ("amount", I128)],
        None,
    ),
    (
        "work",
        "Submits a proof of work for the farmer's pail; returns the gap in ledgers.",
        [("farmer", ADDRESS), ("hash", HASH), ("nonce", U64)],
        U32,
    ),
    (
        "harvest",
        "Mints the stake and the reward of a finished block; returns the reward.",
        [("farmer", ADDRESS), ("index", U32)],
        I128,
    ),
    ("pause", "Stops plants (homesteader only).", [], None),
    ("unpause", "Allows plants again (homesteader only).", [], None),
    ("remove_block", "Deletes a block (homesteader only).", [("index", U32)], None),
    ("upgrade", "Replaces the contract's code (homesteader only).", [("hash", HASH)], None),
]

BLOCK_FIELDS = [
    ("entropy", HASH), ("max_gap", U32), ("max_stake", I128), ("max_zeros", U32), ("min_gap", U32),
    ("min_stake", I128), ("min_zeros", U32), ("normalized_total", I128), ("staked_total", I128),
    ("timestamp", U64),
]  # fmt: skip
PAIL_FIELDS = [("gap", _option(U32)), ("sequence", U32), ("stake", I128), ("zeros", _option(U32))]
STORAGE_KEYS: list[tuple[str, list[sx.SCSpecTypeDef]]] = [
    ("Homesteader", []), ("HomesteadAsset", []), ("FarmIndex", []), ("FarmBlock", []), ("FarmPaused", []),
    ("Block", [U32]), ("Pail", [ADDRESS, U32]),
]  # fmt: skip


def spec_entries() -> list[sx.SCSpecEntry]:
    """KALE-sc's interface as ``SCSpecEntry`` values."""
    entries = [
        sx.SCSpecEntry(
            K.SC_SPEC_ENTRY_FUNCTION_V0,
            function_v0=sx.SCSpecFunctionV0(
                doc.encode(),
                sx.SCSymbol(name.encode()),
                [sx.SCSpecFunctionInputV0(b"", arg.encode(), kind) for arg, kind in inputs],
                [output] if output is not None else [],
            ),
        )
        for name, doc, inputs, output in FUNCTIONS
    ]
    for name, fields in (("Block", BLOCK_FIELDS), ("Pail", PAIL_FIELDS)):
        struct = sx.SCSpecUDTStructV0(
            b"", b"", name.encode(), [sx.SCSpecUDTStructFieldV0(b"", f.encode(), kind) for f, kind in fields]
        )
        entries.append(sx.SCSpecEntry(K.SC_SPEC_ENTRY_UDT_STRUCT_V0, udt_struct_v0=struct))
    cases = [
        sx.SCSpecUDTUnionCaseV0(
            sx.SCSpecUDTUnionCaseV0Kind.SC_SPEC_UDT_UNION_CASE_VOID_V0,
            void_case=sx.SCSpecUDTUnionCaseVoidV0(b"", key.encode()),
        )
        if not types
        else sx.SCSpecUDTUnionCaseV0(
            sx.SCSpecUDTUnionCaseV0Kind.SC_SPEC_UDT_UNION_CASE_TUPLE_V0,
            tuple_case=sx.SCSpecUDTUnionCaseTupleV0(b"", key.encode(), types),
        )
        for key, types in STORAGE_KEYS
    ]
    union = sx.SCSpecUDTUnionV0(b"", b"", b"Storage", cases)
    entries.append(sx.SCSpecEntry(K.SC_SPEC_ENTRY_UDT_UNION_V0, udt_union_v0=union))
    errors = sx.SCSpecUDTErrorEnumV0(
        b"",
        b"",
        b"Errors",
        [
            sx.SCSpecUDTErrorEnumCaseV0(b"", c.contract_name.encode(), sx.Uint32(c.value))
            for c in FarmErrorCode
        ],
    )
    entries.append(sx.SCSpecEntry(K.SC_SPEC_ENTRY_UDT_ERROR_ENUM_V0, udt_error_enum_v0=errors))
    return entries


def _leb(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _vec(items: list[bytes]) -> bytes:
    return _leb(len(items)) + b"".join(items)


def _name(text: str) -> bytes:
    raw = text.encode()
    return _leb(len(raw)) + raw


def _section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + _leb(len(payload)) + payload


def _custom(name: str, payload: bytes) -> bytes:
    return _section(0, _name(name) + payload)


@lru_cache(maxsize=1)
def farm_wasm() -> bytes:
    """The module's bytes: types, functions, exports, trapping bodies, custom sections."""
    arities = sorted({len(inputs) for _, _, inputs, _ in FUNCTIONS})
    type_of = {n: i for i, n in enumerate(arities)}
    types = [bytes([0x60]) + _vec([bytes([I64])] * n) + _vec([bytes([I64])]) for n in arities]
    functions = [_leb(type_of[len(inputs)]) for _, _, inputs, _ in FUNCTIONS]
    exports = [_name(name) + b"\x00" + _leb(i) for i, (name, *_) in enumerate(FUNCTIONS)]
    body = b"\x00\x00\x0b"  # no locals; unreachable; end
    code = [_leb(len(body)) + body] * len(FUNCTIONS)
    env = sx.SCEnvMetaEntry(
        sx.SCEnvMetaKind.SC_ENV_META_KIND_INTERFACE_VERSION,
        interface_version=sx.SCEnvMetaEntryInterfaceVersion(sx.Uint32(PROTOCOL_VERSION), sx.Uint32(0)),
    )
    meta = [
        sx.SCMetaEntry(sx.SCMetaKind.SC_META_V0, v0=sx.SCMetaV0(key, val))
        for key, val in (
            (b"source", b"kalepail/KALE-sc"),
            (b"built_by", b"kalepool devnet: the interface only; the rules run in Python"),
        )
    ]
    return b"".join(
        [
            b"\0asm\x01\0\0\0",
            _section(1, _vec(types)),
            _section(3, _vec(functions)),
            _section(7, _vec(exports)),
            _section(10, _vec(code)),
            _custom("contractenvmetav0", env.to_xdr_bytes()),
            _custom("contractmetav0", b"".join(m.to_xdr_bytes() for m in meta)),
            _custom("contractspecv0", b"".join(e.to_xdr_bytes() for e in spec_entries())),
        ]
    )


def farm_wasm_hash() -> bytes:
    return sha256(farm_wasm())
