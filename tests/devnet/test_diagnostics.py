"""Diagnostic events in the shapes the real host records them (soroban-env-host 23)."""

from __future__ import annotations

from typing import Any

from stellar_sdk import StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.engine import Devnet, DevnetConfig
from kalepool.devnet.testing import DevnetHandle, InvokeResult
from tests.devnet.helpers import KALE, engine_plant, plant, simulate_error
from tests.devnet.test_fees import _prepared_plant


def shown(val: sx.SCVal) -> Any:
    if val.type == sx.SCValType.SCV_ERROR and val.error is not None:
        e = val.error
        return f"Error({e.type.name}, {e.contract_code.uint32 if e.contract_code else e.code.name})"  # type: ignore[union-attr]
    native = scval.to_native(val)
    if hasattr(native, "address"):
        return native.address
    if isinstance(native, list):
        return [shown(v) for v in val.vec.sc_vec]  # type: ignore[union-attr]
    if val.type == sx.SCValType.SCV_BYTES and val.bytes is not None and len(val.bytes.sc_bytes) == 32:
        return StrKey.encode_contract(val.bytes.sc_bytes)
    return native


def events(devnet: DevnetHandle, result: InvokeResult) -> list[tuple[bool, str, str | None, list[Any], Any]]:
    got = devnet.rpc("getTransaction", hash=result.send.hash)
    out = []
    for raw in got.get("diagnosticEventsXdr", []):
        ev = sx.DiagnosticEvent.from_xdr(raw)
        body = ev.event.body.v0
        assert body is not None
        cid = ev.event.contract_id
        who = StrKey.encode_contract(cid.contract_id.hash) if cid is not None else None
        out.append(
            (
                ev.in_successful_contract_call,
                ev.event.type.name,
                who,
                [shown(t) for t in body.topics],
                shown(body.data),
            )
        )
    meta = sx.TransactionMeta.from_xdr(got["resultMetaXdr"]).v4
    assert meta is not None and [d.to_xdr() for d in meta.diagnostic_events] == got.get(
        "diagnosticEventsXdr", []
    )
    return out


def test_a_successful_call_logs_calls_returns_and_its_events(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    result = plant(devnet, farmer, KALE)
    assert result.status == "SUCCESS"
    farm, sac, f = devnet.farm_contract_id, devnet.kale_sac_id, farmer.public_key
    asset = f"KALE:{devnet.kale_issuer.public_key}"
    assert events(devnet, result) == [
        (True, "DIAGNOSTIC", None, ["fn_call", farm, "plant"], [f, KALE]),  # called from no contract
        (True, "DIAGNOSTIC", farm, ["fn_call", sac, "burn"], [f, KALE]),  # the caller logs the call
        (True, "CONTRACT", sac, ["burn", f, asset], KALE),
        (True, "DIAGNOSTIC", sac, ["fn_return", "burn"], None),  # the callee logs its return
        (True, "DIAGNOSTIC", farm, ["fn_return", "plant"], None),
    ]


def test_a_contract_error_is_failed_with_and_escalated_to_a_vm_trap(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=10 * KALE)
    assert plant(devnet, farmer, KALE).status == "SUCCESS"
    failed = devnet.submit(_prepared_plant(devnet, farmer, KALE))  # PailExists (#8) at apply
    assert failed.status == "FAILED"
    farm, f = devnet.farm_contract_id, farmer.public_key
    assert events(devnet, failed) == [
        (False, "DIAGNOSTIC", None, ["fn_call", farm, "plant"], [f, KALE]),
        (False, "DIAGNOSTIC", farm, ["error", "Error(SCE_CONTRACT, 8)"], ["failing with contract error", 8]),
        (
            False, "DIAGNOSTIC", farm, ["error", "Error(SCE_CONTRACT, 8)"],
            "escalating error to VM trap from failed host function call: fail_with_error",
        ),
        (
            False, "DIAGNOSTIC", farm, ["log"],
            ["VM call trapped with HostError", "plant", "Error(SCE_CONTRACT, 8)"],
        ),
    ]  # fmt: skip


def test_a_token_error_is_the_tokens_then_the_farms_failed_call(devnet: DevnetHandle) -> None:
    poor = devnet.new_account(kale=1)
    text = simulate_error(devnet, poor, "plant", [scval.to_address(poor.public_key), scval.to_int128(KALE)])
    farm, sac, p = devnet.farm_contract_id, devnet.kale_sac_id, poor.public_key
    err = "topics:[error, Error(Contract, #10)]"
    assert text == "\n".join(
        [
            "HostError: Error(Contract, #10)",
            "",
            "Event log (newest first):",
            f"   0: [Diagnostic Event] contract:{farm}, {err}, data:"
            '"escalating error to VM trap from failed host function call: call"',
            f"   1: [Diagnostic Event] contract:{farm}, {err}, "
            f'data:["contract call failed", burn, [{p}, {KALE}]]',
            f"   2: [Diagnostic Event] contract:{sac}, {err}, data:"
            f'["resulting balance is not within the allowed range", 0, {1 - KALE}, {2**63 - 1}]',
            f"   3: [Diagnostic Event] contract:{farm}, topics:[fn_call, {sac}, burn], data:[{p}, {KALE}]",
            f"   4: [Diagnostic Event] topics:[fn_call, {farm}, plant], data:[{p}, {KALE}]",
        ]
    )


def test_one_argument_is_the_data_itself(devnet: DevnetHandle) -> None:
    farmer = devnet.new_account(kale=KALE)
    balance = devnet.invoke(
        farmer, "balance", [scval.to_address(farmer.public_key)], contract=devnet.kale_sac_id
    )
    first = events(devnet, balance)[0]
    assert first[3] == ["fn_call", devnet.kale_sac_id, "balance"] and first[4] == farmer.public_key


def test_diagnostics_can_be_turned_off_like_cores_setting() -> None:
    quiet = Devnet(DevnetConfig(clock="virtual", seed=1, diagnostic_events=False))
    farmer, tx = engine_plant(quiet)
    sim = quiet.simulate(tx.to_xdr())
    assert sim.events  # simulation always has them, as stellar-rpc's
    assert sim.transaction_data is not None and sim.min_resource_fee is not None
    tx.transaction.soroban_data = sx.SorobanTransactionData.from_xdr(sim.transaction_data)
    tx.transaction.fee += sim.min_resource_fee
    tx.transaction.operations[0].auth = [sx.SorobanAuthorizationEntry.from_xdr(a) for a in sim.auth]  # type: ignore[attr-defined]
    tx.sign(farmer)
    assert quiet.send(tx.to_xdr()).status == "PENDING"
    quiet.close_ledger()
    record = quiet.get_transaction(tx.hash_hex())
    assert record is not None and record.successful and record.diagnostic_events.get() == []
