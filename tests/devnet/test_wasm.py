"""The farm's code entry: a WebAssembly module with KALE-sc's interface, read back by
stellar-sdk's contract-info reader over the devnet's getLedgerEntries."""

from __future__ import annotations

import hashlib

from stellar_sdk import xdr as sx

from kalepool.devnet.testing import DevnetHandle
from kalepool.kale.errors import FarmErrorCode
from kalepool.kale.storage import instance_ledger_key

T = sx.SCSpecType


def test_the_farms_code_is_a_module_whose_hash_is_its_key(devnet: DevnetHandle) -> None:
    server = devnet.soroban_server()
    wasm = server.get_contract_wasm(devnet.farm_contract_id)  # instance -> executable -> code
    assert wasm[:8] == b"\0asm\x01\0\0\0"
    found = server.get_ledger_entries([instance_ledger_key(devnet.farm_contract_id)])
    instance = sx.LedgerEntryData.from_xdr(found.entries[0].xdr).contract_data.val.instance  # type: ignore[index,union-attr]
    assert instance.executable.wasm_hash.hash == hashlib.sha256(wasm).digest()  # type: ignore[union-attr]


def test_the_spec_is_kale_scs_interface(devnet: DevnetHandle) -> None:
    info = devnet.soroban_server().get_contract_info(devnet.farm_contract_id)
    functions = {f.name.sc_symbol.decode(): f for f in info.spec.functions}
    assert set(functions) == {
        "__constructor",
        "plant",
        "work",
        "harvest",
        "pause",
        "unpause",
        "remove_block",
        "upgrade",
    }

    def signature(name: str) -> tuple[list[tuple[str, sx.SCSpecType]], list[sx.SCSpecType]]:
        f = functions[name]
        return [(i.name.decode(), i.type.type) for i in f.inputs], [o.type for o in f.outputs]

    assert signature("plant") == ([("farmer", T.SC_SPEC_TYPE_ADDRESS), ("amount", T.SC_SPEC_TYPE_I128)], [])
    assert signature("work") == (
        [("farmer", T.SC_SPEC_TYPE_ADDRESS), ("hash", T.SC_SPEC_TYPE_BYTES_N), ("nonce", T.SC_SPEC_TYPE_U64)],
        [T.SC_SPEC_TYPE_U32],
    )
    assert functions["work"].inputs[1].type.bytes_n.n.uint32 == 32  # type: ignore[union-attr]
    assert signature("harvest") == (
        [("farmer", T.SC_SPEC_TYPE_ADDRESS), ("index", T.SC_SPEC_TYPE_U32)],
        [T.SC_SPEC_TYPE_I128],
    )
    [errors] = info.spec.error_enums
    assert errors.name == b"Errors"
    assert [(c.name.decode(), c.value.uint32) for c in errors.cases] == [
        (code.contract_name, int(code)) for code in FarmErrorCode
    ]
    structs = {s.name.decode(): [f.name.decode() for f in s.fields] for s in info.spec.structs}
    assert structs["Pail"] == ["gap", "sequence", "stake", "zeros"]  # sorted, as the host keeps them
    assert len(structs["Block"]) == 10
    [storage] = info.spec.unions
    assert [c.void_case.name if c.void_case else c.tuple_case.name for c in storage.cases][-2:] == [
        b"Block",
        b"Pail",
    ]  # type: ignore[union-attr]
    assert info.env_meta[0].interface_version.protocol.uint32 == 23  # type: ignore[union-attr]
    assert dict(info.meta.items())["source"] == "kalepail/KALE-sc"
