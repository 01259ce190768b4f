"""Pure decoding of real-shaped RPC payloads: results, metas v3/v4, diagnostic events."""

from __future__ import annotations

import pytest
from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.kale.errors import ContractError, FarmError, FarmErrorCode, TokenError, TokenErrorCode
from kalepool.kale.networks import DEVNET
from kalepool.kale.storage import block_key, pail_key
from kalepool.kale.types import Pail
from kalepool.stellar import decode
from kalepool.stellar.decode import EventError

from . import xdrs
from .xdrs import FARM, FARMER, OTHER_CONTRACT, SAC

# --------------------------------------------------------------- results


def test_success_result() -> None:
    info = decode.decode_result(xdrs.tx_result(fee=54_321))
    assert info.success
    assert info.fee_charged == 54_321
    assert info.code == "txSUCCESS"
    assert info.op_codes == ("INVOKE_HOST_FUNCTION_SUCCESS",)


def test_trapped_result() -> None:
    info = decode.decode_result(
        xdrs.tx_result(fee=700, code="txFAILED", op_code="INVOKE_HOST_FUNCTION_TRAPPED")
    )
    assert not info.success
    assert (info.code, info.op_codes, info.fee_charged) == (
        "txFAILED",
        ("INVOKE_HOST_FUNCTION_TRAPPED",),
        700,
    )


def test_error_result_xdr_from_the_rpc_docs_is_bad_seq() -> None:
    # sendTransaction's example errorResultXdr in the RPC reference
    info = decode.decode_result("AAAAAAAAAGT////7AAAAAA==")
    assert info.code == "txBAD_SEQ"
    assert info.fee_charged == 100
    assert info.op_codes == ()


@pytest.mark.parametrize("code", ["txINSUFFICIENT_FEE", "txBAD_AUTH", "txTOO_LATE", "txMALFORMED"])
def test_rejection_codes(code: str) -> None:
    assert decode.decode_result(xdrs.tx_result(fee=0, code=code, op_code=None)).code == code


def test_fee_bump_reports_the_inner_transaction() -> None:
    info = decode.decode_result(xdrs.fee_bump_result(999, "txFAILED", "INVOKE_HOST_FUNCTION_TRAPPED"))
    assert info.code == "txFAILED"
    assert info.op_codes == ("INVOKE_HOST_FUNCTION_TRAPPED",)
    assert info.fee_charged == 999
    ok = decode.decode_result(xdrs.fee_bump_result(999, "txSUCCESS", "INVOKE_HOST_FUNCTION_SUCCESS"))
    assert ok.success


def test_payment_op_codes() -> None:
    info = decode.decode_result(
        xdrs.payment_result(300, ["PAYMENT_SUCCESS", "PAYMENT_NO_TRUST", "PAYMENT_SUCCESS"])
    )
    assert info.code == "txFAILED"
    assert info.op_codes == ("PAYMENT_SUCCESS", "PAYMENT_NO_TRUST", "PAYMENT_SUCCESS")


# ------------------------------------------------------------------ meta

PAIL = Pail(sequence=1001, gap=None, stake=10_000_000, zeros=None)


@pytest.mark.parametrize("build", [xdrs.meta_v3, xdrs.meta_v4], ids=["v3", "v4"])
def test_meta_return_value_events_and_changes(build) -> None:  # type: ignore[no-untyped-def]
    events = xdrs.farm_error_events(8)
    meta = decode.decode_meta(build(scval.to_uint32(17), events, [xdrs.pail_created(FARMER, 37, PAIL)]))
    assert meta.version == (3 if build is xdrs.meta_v3 else 4)
    assert meta.return_value is not None and scval.from_uint32(meta.return_value) == 17
    assert [e.to_xdr() for e in meta.diagnostic_events] == xdrs.b64(events)
    writes = decode.contract_data_changes(meta.changes, FARM)
    assert len(writes) == 1
    (write,) = writes
    assert write.kind == "created" and write.temporary
    assert decode.pail_index_in_key(write.key, FARMER) == 37
    assert write.value is not None and Pail.from_scval(write.value) == PAIL
    # the account's STATE snapshot is not a write
    assert decode.contract_data_changes(meta.changes) == writes


def test_meta_v4_without_return_value() -> None:
    meta = decode.decode_meta(xdrs.meta_v4(None))
    assert meta.return_value is None
    assert meta.diagnostic_events == ()


def test_harvest_return_value_is_i128() -> None:
    reward = 25_050_000_000 * 3
    meta = decode.decode_meta(xdrs.meta_v4(scval.to_int128(reward)))
    assert meta.return_value is not None and scval.from_int128(meta.return_value) == reward


def test_pail_index_in_key() -> None:
    assert decode.pail_index_in_key(pail_key(FARMER, 5), FARMER) == 5
    other = "GBIIUZH63Z262QXGKJIP3ZU5DS7L4L2TBTYGPXRIGQXZAF25A72YNULL"
    assert decode.pail_index_in_key(pail_key(other, 5), FARMER) is None
    assert decode.pail_index_in_key(block_key(5), FARMER) is None
    assert decode.pail_index_in_key(scval.to_symbol("Pail"), FARMER) is None


# ---------------------------------------------------------------- events


def test_farm_error_is_attributed_to_the_farm() -> None:
    errors = decode.event_errors(xdrs.farm_error_events(8))
    assert errors[0] == EventError("Contract", FARM, contract_code=8)
    assert str(errors[0]) == "Error(Contract, #8)"
    err = decode.contract_error(errors, farm_id=FARM, token_id=SAC)
    assert isinstance(err, FarmError)
    assert err.code is FarmErrorCode.PAIL_EXISTS
    assert err.contract_id == FARM


def test_token_error_inside_plant_is_a_token_error_not_work_missing() -> None:
    # #10 is WorkMissing for the farm and BalanceError for the SAC: the SAC raised it.
    errors = decode.event_errors(xdrs.sac_error_in_plant_events(10))
    assert [e.contract_id for e in errors] == [SAC, FARM, None]
    err = decode.contract_error(errors, farm_id=FARM, token_id=SAC)
    assert isinstance(err, TokenError)
    assert err.code is TokenErrorCode.BALANCE_ERROR
    assert not isinstance(err, FarmError)


@pytest.mark.parametrize("code", range(1, 16))
def test_every_farm_code(code: int) -> None:
    err = decode.contract_error(decode.event_errors(xdrs.farm_error_events(code)), farm_id=FARM, token_id=SAC)
    assert isinstance(err, FarmError) and err.code == code


@pytest.mark.parametrize("code", range(1, 14))
def test_every_token_code(code: int) -> None:
    errors = decode.event_errors(xdrs.sac_error_in_plant_events(code))
    err = decode.contract_error(errors, farm_id=FARM, token_id=SAC)
    assert isinstance(err, TokenError) and err.code == code


def test_unknown_contract_and_unknown_code() -> None:
    other = [xdrs.error_event(OTHER_CONTRACT, xdrs.contract_error_val(3))]
    err = decode.contract_error(decode.event_errors(other), farm_id=FARM, token_id=SAC)
    assert type(err) is ContractError and err.contract_id == OTHER_CONTRACT
    farm_99 = [xdrs.error_event(FARM, xdrs.contract_error_val(99))]
    err = decode.contract_error(decode.event_errors(farm_99), farm_id=FARM, token_id=SAC)
    assert type(err) is ContractError and err.code == 99


def test_no_contract_error() -> None:
    errors = decode.event_errors(xdrs.footprint_error_events())
    assert decode.contract_error(errors, farm_id=FARM, token_id=SAC) is None
    first = decode.host_error(errors)
    assert first is not None and str(first) == "Error(Storage, ExceededLimit)"


def test_non_error_events_are_ignored() -> None:
    events = [
        xdrs.fn_call(None, FARM, "work"),
        xdrs.diag(FARM, [scval.to_symbol("fn_return")], scval.to_uint32(3)),
    ]
    assert decode.event_errors(events) == []


def test_decode_events_round_trip() -> None:
    events = xdrs.sac_error_in_plant_events(13)
    assert [e.to_xdr() for e in decode.decode_events(xdrs.b64(events))] == xdrs.b64(events)
    assert decode.decode_events(None) == []


# ----------------------------------------------------------- error text


SIM_ERROR_TEXT = f"""HostError: Error(Contract, #10)

Event log (newest first):
   0: [Diagnostic Event] topics:[error, Error(Contract, #10)], data:"contract call failed"
   1: [Diagnostic Event] contract:{FARM}, topics:[error, Error(Contract, #10)], data:"escalating error"
   2: [Diagnostic Event] contract:{SAC}, topics:[error, Error(Contract, #10)], data:"balance too low"
   3: [Diagnostic Event] contract:{FARM}, topics:[fn_call, Bytes({SAC}), burn], data:[{FARMER}, 5]
"""


def test_parse_error_text_orders_the_log_oldest_first() -> None:
    errors = decode.parse_error_text(SIM_ERROR_TEXT)
    assert [e.contract_id for e in errors] == [SAC, FARM, None, None]
    err = decode.contract_error(errors, farm_id=FARM, token_id=SAC)
    assert isinstance(err, TokenError) and err.code is TokenErrorCode.BALANCE_ERROR


def test_parse_bare_error_text() -> None:
    errors = decode.parse_error_text("HostError: Error(Contract, #8)")
    assert errors == [EventError("Contract", None, contract_code=8)]
    # unattributed: only a plain ContractError, never a guess by number
    err = decode.contract_error(errors, farm_id=FARM, token_id=SAC)
    assert type(err) is ContractError
    storage = decode.parse_error_text("HostError: Error(Storage, ExceededLimit)")
    assert storage == [EventError("Storage", None, code="ExceededLimit")]


# ----------------------------------------------------------------- races


def test_race_classification() -> None:
    trapped = decode.decode_result(xdrs.tx_result(code="txFAILED", op_code="INVOKE_HOST_FUNCTION_TRAPPED"))
    footprint = decode.event_errors(xdrs.footprint_error_events())
    assert decode.is_race_failure(trapped, footprint)
    assert not decode.is_race_failure(trapped, decode.event_errors(xdrs.farm_error_events(9)))
    assert not decode.is_race_failure(trapped, [])
    limit = decode.decode_result(
        xdrs.tx_result(code="txFAILED", op_code="INVOKE_HOST_FUNCTION_RESOURCE_LIMIT_EXCEEDED")
    )
    assert decode.is_race_failure(limit, [])
    archived = decode.decode_result(
        xdrs.tx_result(code="txFAILED", op_code="INVOKE_HOST_FUNCTION_ENTRY_ARCHIVED")
    )
    assert not decode.is_race_failure(archived, [])


def test_footprint_of_transaction_data() -> None:
    from stellar_sdk import SorobanDataBuilder

    from kalepool.kale.storage import instance_ledger_key, pail_ledger_key

    data = (
        SorobanDataBuilder()
        .set_read_only([instance_ledger_key(FARM)])
        .set_read_write([pail_ledger_key(FARM, FARMER, 4)])
        .build()
    )
    ro, rw = decode.footprint(data.to_xdr())
    assert [k.to_xdr() for k in ro] == [instance_ledger_key(FARM).to_xdr()]
    assert rw[0].contract_data is not None
    assert decode.pail_index_in_key(rw[0].contract_data.key, FARMER) == 4


# -------------------------------------------------------------- accounts


def test_account_state_and_spendable() -> None:
    plain = decode.account_state(xdrs.account_entry_xdr(FARMER, 100_000_000, 77))
    assert (plain.balance, plain.sequence) == (100_000_000, 77)
    assert plain.minimum_balance(5_000_000) == 10_000_000
    assert plain.spendable(5_000_000) == 90_000_000
    busy = decode.account_state(
        xdrs.account_entry_xdr(
            FARMER, 100_000_000, 77, subentries=3, selling=1_000_000, sponsoring=1, sponsored=2
        )
    )
    assert busy.minimum_balance(5_000_000) == (2 + 3 + 1 - 2) * 5_000_000
    assert busy.spendable(5_000_000) == 100_000_000 - 20_000_000 - 1_000_000
    poor = decode.account_state(xdrs.account_entry_xdr(FARMER, 5_000_000, 1))
    assert poor.spendable(5_000_000) == 0


def test_trustline_state() -> None:
    line = decode.trustline_state(
        xdrs.trustline_entry_xdr(FARMER, "KALE", DEVNET.kale_issuer, 500, 1_000, selling=100)
    )
    assert (line.balance, line.limit, line.authorized, line.spendable, line.room) == (
        500,
        1_000,
        True,
        400,
        500,
    )
    frozen = decode.trustline_state(
        xdrs.trustline_entry_xdr(FARMER, "KALE", DEVNET.kale_issuer, 500, 1_000, authorized=False)
    )
    assert frozen.spendable == 0
    with pytest.raises(ValueError, match="not a trustline"):
        decode.trustline_state(xdrs.account_entry_xdr(FARMER, 1, 1))


def test_base_reserve_from_header() -> None:
    assert decode.base_reserve_from_header("") is None
    assert decode.base_reserve_from_header("not base64!") is None
    header = sx.LedgerHeader(
        ledger_version=sx.Uint32(23),
        previous_ledger_hash=sx.Hash(bytes(32)),
        scp_value=sx.StellarValue(
            sx.Hash(bytes(32)),
            sx.TimePoint(sx.Uint64(0)),
            [],
            sx.StellarValueExt(sx.StellarValueType.STELLAR_VALUE_BASIC),
        ),
        tx_set_result_hash=sx.Hash(bytes(32)),
        bucket_list_hash=sx.Hash(bytes(32)),
        ledger_seq=sx.Uint32(5),
        total_coins=sx.Int64(0),
        fee_pool=sx.Int64(0),
        inflation_seq=sx.Uint32(0),
        id_pool=sx.Uint64(0),
        base_fee=sx.Uint32(100),
        base_reserve=sx.Uint32(5_000_000),
        max_tx_set_size=sx.Uint32(100),
        skip_list=[sx.Hash(bytes(32))] * 4,
        ext=sx.LedgerHeaderExt(0),
    )
    assert decode.base_reserve_from_header(header.to_xdr()) == 5_000_000
