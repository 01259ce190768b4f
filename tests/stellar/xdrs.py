"""Builders of real-shaped Soroban XDR for the gateway's unit tests.

They build the same structures stellar-core and stellar-rpc put on the wire
(``TransactionResult``, ``TransactionMeta`` v3/v4, ``DiagnosticEvent``), with the SDK's
own XDR classes, so the decoders are tested on bytes, not on mocks.
"""

from __future__ import annotations

from collections.abc import Sequence

from stellar_sdk import Address, Asset, Keypair, StrKey, scval
from stellar_sdk import xdr as sx

from kalepool.kale.networks import DEVNET
from kalepool.kale.storage import pail_key
from kalepool.kale.types import Pail

FARM = DEVNET.farm_contract_id
SAC = DEVNET.kale_sac_id
FARMER = "GBQHTQ7NTSKHVTSVM6EHUO3TU4P4BK2TAAII25V2TT2Q6OWXUJWEKALE"
OTHER_CONTRACT = StrKey.encode_contract(bytes(range(32)))

EXT = sx.ExtensionPoint(0)


def tx_result(
    fee: int = 12_345,
    code: str = "txSUCCESS",
    op_code: str | None = "INVOKE_HOST_FUNCTION_SUCCESS",
) -> str:
    """A base64 ``TransactionResult`` with one InvokeHostFunction result (or none)."""
    tcode = sx.TransactionResultCode[code]
    results = None
    if op_code is not None and tcode in (
        sx.TransactionResultCode.txSUCCESS,
        sx.TransactionResultCode.txFAILED,
    ):
        ihf_code = sx.InvokeHostFunctionResultCode[op_code]
        ihf = sx.InvokeHostFunctionResult(
            ihf_code,
            success=sx.Hash(bytes(32))
            if ihf_code == sx.InvokeHostFunctionResultCode.INVOKE_HOST_FUNCTION_SUCCESS
            else None,
        )
        results = [
            sx.OperationResult(
                sx.OperationResultCode.opINNER,
                tr=sx.OperationResultTr(
                    sx.OperationType.INVOKE_HOST_FUNCTION, invoke_host_function_result=ihf
                ),
            )
        ]
    body = sx.TransactionResultResult(tcode, results=results)
    return sx.TransactionResult(sx.Int64(fee), body, sx.TransactionResultExt(0)).to_xdr()


def payment_result(fee: int, codes: list[str]) -> str:
    """A ``txFAILED`` / ``txSUCCESS`` result of payments with the given op codes."""
    ops = [
        sx.OperationResult(
            sx.OperationResultCode.opINNER,
            tr=sx.OperationResultTr(
                sx.OperationType.PAYMENT, payment_result=sx.PaymentResult(sx.PaymentResultCode[c])
            ),
        )
        for c in codes
    ]
    ok = all(c == "PAYMENT_SUCCESS" for c in codes)
    code = sx.TransactionResultCode.txSUCCESS if ok else sx.TransactionResultCode.txFAILED
    return sx.TransactionResult(
        sx.Int64(fee), sx.TransactionResultResult(code, results=ops), sx.TransactionResultExt(0)
    ).to_xdr()


def fee_bump_result(outer_fee: int, inner_code: str, op_code: str) -> str:
    inner_ops = sx.TransactionResult.from_xdr(tx_result(0, inner_code, op_code)).result.results
    inner = sx.InnerTransactionResult(
        sx.Int64(100),
        sx.InnerTransactionResultResult(sx.TransactionResultCode[inner_code], results=inner_ops),
        sx.InnerTransactionResultExt(0),
    )
    ok = inner_code == "txSUCCESS"
    outer_code = (
        sx.TransactionResultCode.txFEE_BUMP_INNER_SUCCESS
        if ok
        else sx.TransactionResultCode.txFEE_BUMP_INNER_FAILED
    )
    body = sx.TransactionResultResult(
        outer_code, inner_result_pair=sx.InnerTransactionResultPair(sx.Hash(bytes(32)), inner)
    )
    return sx.TransactionResult(sx.Int64(outer_fee), body, sx.TransactionResultExt(0)).to_xdr()


# ------------------------------------------------------------------- events


def _contract_id(contract: str | None) -> sx.ContractID | None:
    if contract is None:
        return None
    return sx.ContractID(sx.Hash(StrKey.decode_contract(contract)))


def diag(
    contract: str | None, topics: list[sx.SCVal], data: sx.SCVal, ok: bool = False
) -> sx.DiagnosticEvent:
    return sx.DiagnosticEvent(
        in_successful_contract_call=ok,
        event=sx.ContractEvent(
            ext=EXT,
            contract_id=_contract_id(contract),
            type=sx.ContractEventType.DIAGNOSTIC,
            body=sx.ContractEventBody(0, v0=sx.ContractEventV0(topics=topics, data=data)),
        ),
    )


def contract_error_val(code: int) -> sx.SCVal:
    return sx.SCVal(
        sx.SCValType.SCV_ERROR, error=sx.SCError(sx.SCErrorType.SCE_CONTRACT, contract_code=sx.Uint32(code))
    )


def host_error_val(kind: sx.SCErrorType, code: sx.SCErrorCode) -> sx.SCVal:
    return sx.SCVal(sx.SCValType.SCV_ERROR, error=sx.SCError(kind, code=code))


def fn_call(caller: str | None, callee: str, fn: str) -> sx.DiagnosticEvent:
    topics = [scval.to_symbol("fn_call"), scval.to_bytes(StrKey.decode_contract(callee)), scval.to_symbol(fn)]
    return diag(caller, topics, scval.to_vec([]), ok=True)


def error_event(contract: str | None, err: sx.SCVal, message: str = "") -> sx.DiagnosticEvent:
    return diag(contract, [scval.to_symbol("error"), err], scval.to_string(message))


def farm_error_events(code: int) -> list[sx.DiagnosticEvent]:
    """What the host logs when the farm panics with ``Error(Contract, #code)``."""
    return [
        fn_call(None, FARM, "plant"),
        error_event(FARM, contract_error_val(code), "contract panicked"),
        error_event(None, contract_error_val(code), "contract call failed"),
    ]


def sac_error_in_plant_events(code: int) -> list[sx.DiagnosticEvent]:
    """The SAC's ``burn`` fails inside ``plant``; the farm and the host re-raise the
    same number afterwards, so only the contract of the first error tells them apart."""
    return [
        fn_call(None, FARM, "plant"),
        fn_call(FARM, SAC, "burn"),
        error_event(SAC, contract_error_val(code), "balance is not sufficient to spend"),
        error_event(
            FARM, contract_error_val(code), "escalating error to VM trap from failed host function call: call"
        ),
        error_event(None, contract_error_val(code), "contract call failed"),
    ]


def footprint_error_events() -> list[sx.DiagnosticEvent]:
    return [
        fn_call(None, FARM, "plant"),
        error_event(
            FARM,
            host_error_val(sx.SCErrorType.SCE_STORAGE, sx.SCErrorCode.SCEC_EXCEEDED_LIMIT),
            "trying to access contract storage key outside of the correct footprint",
        ),
    ]


def b64(events: list[sx.DiagnosticEvent]) -> list[str]:
    return [e.to_xdr() for e in events]


# --------------------------------------------------------------------- meta


def pail_created(farmer: str, index: int, pail: Pail, ledger: int = 100) -> sx.LedgerEntryChange:
    entry = sx.LedgerEntry(
        last_modified_ledger_seq=sx.Uint32(ledger),
        data=sx.LedgerEntryData(
            sx.LedgerEntryType.CONTRACT_DATA,
            contract_data=sx.ContractDataEntry(
                ext=EXT,
                contract=Address(FARM).to_xdr_sc_address(),
                key=pail_key(farmer, index),
                durability=sx.ContractDataDurability.TEMPORARY,
                val=pail.to_scval(),
            ),
        ),
        ext=sx.LedgerEntryExt(0),
    )
    return sx.LedgerEntryChange(sx.LedgerEntryChangeType.LEDGER_ENTRY_CREATED, created=entry)


def account_state_change(account: str, balance: int, seq: int) -> sx.LedgerEntryChange:
    entry = sx.LedgerEntry(
        last_modified_ledger_seq=sx.Uint32(90),
        data=sx.LedgerEntryData(sx.LedgerEntryType.ACCOUNT, account=account_entry(account, balance, seq)),
        ext=sx.LedgerEntryExt(0),
    )
    return sx.LedgerEntryChange(sx.LedgerEntryChangeType.LEDGER_ENTRY_STATE, state=entry)


def _soroban_ext() -> sx.SorobanTransactionMetaExt:
    return sx.SorobanTransactionMetaExt(
        1,
        v1=sx.SorobanTransactionMetaExtV1(EXT, sx.Int64(5000), sx.Int64(3000), sx.Int64(200)),
    )


def meta_v3(
    return_value: sx.SCVal,
    events: Sequence[sx.DiagnosticEvent] = (),
    changes: Sequence[sx.LedgerEntryChange] = (),
) -> str:
    v3 = sx.TransactionMetaV3(
        ext=EXT,
        tx_changes_before=sx.LedgerEntryChanges([account_state_change(FARMER, 10**9, 41)]),
        operations=[sx.OperationMeta(sx.LedgerEntryChanges(list(changes)))],
        tx_changes_after=sx.LedgerEntryChanges([]),
        soroban_meta=sx.SorobanTransactionMeta(
            ext=_soroban_ext(), events=[], return_value=return_value, diagnostic_events=list(events)
        ),
    )
    return sx.TransactionMeta(3, v3=v3).to_xdr()


def meta_v4(
    return_value: sx.SCVal | None,
    events: Sequence[sx.DiagnosticEvent] = (),
    changes: Sequence[sx.LedgerEntryChange] = (),
) -> str:
    v4 = sx.TransactionMetaV4(
        ext=EXT,
        tx_changes_before=sx.LedgerEntryChanges([account_state_change(FARMER, 10**9, 41)]),
        operations=[sx.OperationMetaV2(EXT, sx.LedgerEntryChanges(list(changes)), [])],
        tx_changes_after=sx.LedgerEntryChanges([]),
        soroban_meta=sx.SorobanTransactionMetaV2(ext=_soroban_ext(), return_value=return_value),
        events=[],
        diagnostic_events=list(events),
    )
    return sx.TransactionMeta(4, v4=v4).to_xdr()


# ----------------------------------------------------------------- accounts


def account_entry(
    account: str,
    balance: int,
    seq: int,
    *,
    subentries: int = 0,
    selling: int = 0,
    sponsoring: int = 0,
    sponsored: int = 0,
) -> sx.AccountEntry:
    ext = sx.AccountEntryExt(0)
    if selling or sponsoring or sponsored:
        v2 = sx.AccountEntryExtensionV2(
            sx.Uint32(sponsored), sx.Uint32(sponsoring), [], sx.AccountEntryExtensionV2Ext(0)
        )
        ext = sx.AccountEntryExt(
            1,
            v1=sx.AccountEntryExtensionV1(
                sx.Liabilities(sx.Int64(0), sx.Int64(selling)),
                sx.AccountEntryExtensionV1Ext(2, v2=v2),
            ),
        )
    return sx.AccountEntry(
        account_id=Keypair.from_public_key(account).xdr_account_id(),
        balance=sx.Int64(balance),
        seq_num=sx.SequenceNumber(sx.Int64(seq)),
        num_sub_entries=sx.Uint32(subentries),
        inflation_dest=None,
        flags=sx.Uint32(0),
        home_domain=sx.String32(b""),
        thresholds=sx.Thresholds(b"\x01\x00\x00\x00"),
        signers=[],
        ext=ext,
    )


def account_entry_xdr(account: str, balance: int, seq: int, **kw: int) -> str:
    data = sx.LedgerEntryData(sx.LedgerEntryType.ACCOUNT, account=account_entry(account, balance, seq, **kw))
    return data.to_xdr()


def trustline_entry_xdr(
    account: str,
    code: str,
    issuer: str,
    balance: int,
    limit: int,
    *,
    authorized: bool = True,
    selling: int = 0,
) -> str:
    ext = sx.TrustLineEntryExt(0)
    if selling:
        ext = sx.TrustLineEntryExt(
            1,
            v1=sx.TrustLineEntryV1(sx.Liabilities(sx.Int64(0), sx.Int64(selling)), sx.TrustLineEntryV1Ext(0)),
        )
    line = sx.TrustLineEntry(
        account_id=Keypair.from_public_key(account).xdr_account_id(),
        asset=Asset(code, issuer).to_trust_line_asset_xdr_object(),
        balance=sx.Int64(balance),
        limit=sx.Int64(limit),
        flags=sx.Uint32(1 if authorized else 0),
        ext=ext,
    )
    return sx.LedgerEntryData(sx.LedgerEntryType.TRUSTLINE, trust_line=line).to_xdr()
