"""Helpers for the devnet tests: farm reads through getLedgerEntries, mining, calls."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stellar_sdk import Keypair, TransactionBuilder, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.testing import DevnetHandle, InvokeResult
from kalepool.kale.pow import keccak256, leading_zeros, preimage_prefix, work_hash
from kalepool.kale.storage import (
    account_ledger_key,
    block_ledger_key,
    instance_ledger_key,
    pail_ledger_key,
    trustline_ledger_key,
)
from kalepool.kale.types import Block, FarmInstance, Pail

KALE = 10_000_000


def kale_balance(devnet: DevnetHandle, address: str) -> int | None:
    """The KALE trustline balance of ``address`` (None without a trustline), via getLedgerEntries."""
    key = trustline_ledger_key(address, "KALE", devnet.kale_issuer.public_key)
    found = devnet.soroban_server().get_ledger_entries([key])
    if not found.entries:
        return None
    data = sx.LedgerEntryData.from_xdr(found.entries[0].xdr)
    assert data.trust_line is not None
    return data.trust_line.balance.int64


def account_exists(devnet: DevnetHandle, address: str) -> bool:
    return bool(devnet.soroban_server().get_ledger_entries([account_ledger_key(address)]).entries)


def farm_instance(devnet: DevnetHandle) -> FarmInstance:
    server = devnet.soroban_server()
    found = server.get_ledger_entries([instance_ledger_key(devnet.farm_contract_id)])
    assert found.entries is not None and len(found.entries) == 1
    data = sx.LedgerEntryData.from_xdr(found.entries[0].xdr)
    assert data.contract_data is not None
    return FarmInstance.from_instance_scval(data.contract_data.val)


def block(devnet: DevnetHandle, index: int) -> Block | None:
    found = devnet.soroban_server().get_ledger_entries([block_ledger_key(devnet.farm_contract_id, index)])
    if not found.entries:
        return None
    data = sx.LedgerEntryData.from_xdr(found.entries[0].xdr)
    assert data.contract_data is not None
    return Block.from_scval(data.contract_data.val)


def pail(devnet: DevnetHandle, farmer: str, index: int) -> Pail | None:
    key = pail_ledger_key(devnet.farm_contract_id, farmer, index)
    found = devnet.soroban_server().get_ledger_entries([key])
    if not found.entries:
        return None
    data = sx.LedgerEntryData.from_xdr(found.entries[0].xdr)
    assert data.contract_data is not None
    return Pail.from_scval(data.contract_data.val)


def mine(index: int, entropy: bytes, farmer: str, zeros: int, start: int = 0) -> tuple[int, bytes]:
    """The first nonce from ``start`` whose hash has at least ``zeros`` leading zeros."""
    return _search(index, entropy, farmer, start, lambda z: z >= zeros)


def mine_exact(index: int, entropy: bytes, farmer: str, zeros: int, start: int = 0) -> tuple[int, bytes]:
    """The first nonce from ``start`` whose hash has exactly ``zeros`` leading zeros."""
    return _search(index, entropy, farmer, start, lambda z: z == zeros)


def _search(
    index: int, entropy: bytes, farmer: str, start: int, ok: Callable[[int], bool]
) -> tuple[int, bytes]:
    head, tail = preimage_prefix(index, entropy, farmer)
    nonce = start
    while True:
        h = keccak256(head + nonce.to_bytes(8, "big") + tail)
        if ok(leading_zeros(h)):
            assert h == work_hash(index, nonce, entropy, farmer)
            return nonce, h
        nonce += 1


def plant(devnet: DevnetHandle, farmer: Keypair, amount: int, **kw: object) -> InvokeResult:
    return devnet.invoke(
        farmer, "plant", [scval.to_address(farmer.public_key), scval.to_int128(amount)], **kw
    )  # type: ignore[arg-type]


def work(
    devnet: DevnetHandle, farmer: Keypair, zeros: int, source: Keypair | None = None, start: int = 0
) -> tuple[InvokeResult, int, bytes]:
    """Mine a hash with exactly ``zeros`` zeros for the current block and submit it."""
    index = farm_instance(devnet).farm_index
    current = block(devnet, index)
    assert current is not None
    nonce, h = mine_exact(index, current.entropy, farmer.public_key, zeros, start)
    args = [scval.to_address(farmer.public_key), scval.to_bytes(h), scval.to_uint64(nonce)]
    return devnet.invoke(source or farmer, "work", args), nonce, h


def harvest(devnet: DevnetHandle, farmer: Keypair, index: int, source: Keypair | None = None) -> InvokeResult:
    args = [scval.to_address(farmer.public_key), scval.to_uint32(index)]
    return devnet.invoke(source or farmer, "harvest", args)


def simulate_error(
    devnet: DevnetHandle, source: Keypair, function: str, args: list[sx.SCVal], contract: str | None = None
) -> str | None:
    """The simulation's ``error`` (None when it succeeds)."""
    server = devnet.soroban_server()
    tx = (
        TransactionBuilder(server.load_account(source.public_key), devnet.passphrase, base_fee=100)
        .append_invoke_contract_function_op(contract or devnet.farm_contract_id, function, args)
        .set_timeout(300)
        .build()
    )
    return server.simulate_transaction(tx).error


def contract_error(text: str | None) -> int | None:
    """N of the first ``Error(Contract, #N)`` in a host error string."""
    if text is None:
        return None
    m = re.search(r"HostError: Error\(Contract, #(\d+)\)", text)
    return int(m.group(1)) if m else None


def error_contract(result: InvokeResult) -> tuple[str | None, str]:
    """(contract id, error text) of the failing transaction's error diagnostic event."""
    assert result.result is not None and result.result.diagnostic_events_xdr
    from stellar_sdk import StrKey

    for raw in result.result.diagnostic_events_xdr:
        ev = sx.DiagnosticEvent.from_xdr(raw)
        body = ev.event.body.v0
        assert body is not None
        if (
            body.topics
            and body.topics[0].type == sx.SCValType.SCV_SYMBOL
            and scval.from_symbol(body.topics[0]) == "error"
        ):
            err = body.topics[1].error
            assert err is not None
            cid = ev.event.contract_id
            who = StrKey.encode_contract(cid.contract_id.hash) if cid is not None else None
            if err.type == sx.SCErrorType.SCE_CONTRACT:
                assert err.contract_code is not None
                return who, f"Error(Contract, #{err.contract_code.uint32})"
            assert err.code is not None
            return who, f"Error({err.type.name}, {err.code.name})"
    raise AssertionError("no error diagnostic event")


def return_int(result: InvokeResult) -> int:
    value = result.return_value
    assert value is not None
    native = scval.to_native(value)
    assert isinstance(native, int)
    return native


def engine_plant(devnet: Any, amount: int = 0, xlm: int = 100 * 10_000_000) -> tuple[Keypair, Any]:
    """A funded farmer and its unsigned ``plant`` transaction, built against an engine
    (:class:`kalepool.devnet.engine.Devnet`) directly, without HTTP."""
    from stellar_sdk import Account

    from kalepool.kale.networks import DEVNET

    farmer = Keypair.random()
    devnet.fund(farmer.public_key, xlm)
    account = devnet.account(farmer.public_key)
    assert account is not None
    tx = (
        TransactionBuilder(Account(farmer.public_key, account.seq_num), DEVNET.passphrase, 100)
        .append_invoke_contract_function_op(
            DEVNET.farm_contract_id, "plant", [scval.to_address(farmer.public_key), scval.to_int128(amount)]
        )
        .set_timeout(60)
        .build()
    )
    return farmer, tx
