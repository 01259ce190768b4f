"""Applying a ledger's transactions: fees, sequence numbers, operations, refunds.

stellar-core's order for one ledger (protocol 23), which :meth:`Devnet.close_ledger`
follows with these functions:

1. :func:`charge_fee` for every transaction of the set, in order: the declared resource
   fee plus the inclusion fee at the ledger's base fee, whatever happens next (the
   ledger's ``feeProcessing``, a ``fee`` event each);
2. :func:`apply_transaction` for each: the sequence-number bump (``txChangesBefore``),
   then the operations, all or nothing; a contract call also pays, out of the
   refundable part of its resource fee, the rent of the entries it created or extended
   and the size of its events and return value (:func:`consumption`);
3. :func:`refund_fee` for each Soroban transaction, after all of them: the refundable
   fee it did not use (all of it when it failed) goes back to the fee source
   (``postTxApplyFeeProcessing``, a negative ``fee`` event).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stellar_sdk import scval
from stellar_sdk import xdr as sx

from kalepool.devnet.auth import AuthManager
from kalepool.devnet.classic import apply_classic_op
from kalepool.devnet.codec import (
    TEMPORARY,
    Account,
    ContractCode,
    ContractData,
    Entry,
    KeyBytes,
    account_key,
    address_str,
    b64,
    ledger_entry_size,
    sha256,
)
from kalepool.devnet.events import classic_events, fee_event, transaction_event
from kalepool.devnet.fees import RentChange, TxResources, rent_fee, resource_fee
from kalepool.devnet.host import DiagnosticRecord, Footprint, Host, HostError, HostEvent, contract_event
from kalepool.devnet.ledger import AFTER_ALL_TXS, EventRecord, Lazy, Overlay, TxRecord, soroban_size
from kalepool.devnet.meta import changes_bytes, meta_bytes
from kalepool.devnet.transactions import OT, TRC, OpOutcome, ParsedTx, transaction_result

if TYPE_CHECKING:
    from kalepool.devnet.engine import Devnet

#: ``(key, before, after)`` of every entry a step changed (``None``: absent).
Changes = list[tuple[Any, Entry | None, Entry | None]]

IHF = sx.InvokeHostFunctionResultCode
STAGE = sx.TransactionEventStage


@dataclass(slots=True)
class Applied:
    """Everything applying one transaction produced, its refund included (plain values:
    a record keeps it for its meta, not the decoded envelope)."""

    hash: str
    payer: str
    soroban: bool
    order: int  # 1-based application order in the ledger
    charged: int  # taken before the ledger's transactions were applied
    fee_changes: Changes
    ok: bool = False
    outcomes: list[OpOutcome] = field(default_factory=list)
    before: Changes = field(default_factory=list)
    op_changes: list[Changes] = field(default_factory=list)
    op_events: list[list[HostEvent]] = field(default_factory=list)
    return_value: sx.SCVal | None = None
    diagnostics: list[DiagnosticRecord] = field(default_factory=list)
    non_refundable: int = 0
    consumed: int = 0  # refundable fee used: events and rent
    rent: int = 0
    refund: int = 0
    refund_changes: Changes = field(default_factory=list)

    @property
    def fee_charged(self) -> int:
        return self.charged - self.refund


def _credit(entries: dict[KeyBytes, Entry], account: str, amount: int, seq: int) -> Changes:
    """Add ``amount`` (negative: take it) to an account's balance; ``[]`` if it is gone."""
    key, lk = account_key(account)
    old = entries.get(key)
    if old is None or not isinstance(old.data, Account):
        return []
    a = old.data
    new = Entry(Account(a.account_id, a.balance + amount, a.seq_num, a.num_subentries, a.flags), seq)
    entries[key] = new
    return [(lk, old, new)]


def charge_fee(devnet: Devnet, tx: ParsedTx, seq: int) -> tuple[int, Changes]:
    """Take the transaction's fee from its fee source (validated: it can pay)."""
    fee = tx.fee_charged()
    changes = _credit(devnet.state.entries, tx.payer, -fee, seq)
    devnet.state.fee_pool += fee
    return fee, changes


def refund_fee(devnet: Devnet, applied: Applied, seq: int) -> None:
    """Give back the unused refundable fee (nothing when the fee source was merged)."""
    if applied.refund <= 0:
        return
    changes = _credit(devnet.state.entries, applied.payer, applied.refund, seq)
    if not changes:
        applied.refund = 0
        return
    applied.refund_changes = changes
    devnet.state.fee_pool -= applied.refund


def apply_transaction(
    devnet: Devnet, tx: ParsedTx, seq: int, close_time: int, order: int, charged: int, fee_changes: Changes
) -> Applied:
    """Bump the sequence number, apply the operations atomically, settle the refund."""
    state = devnet.state
    entries = state.entries
    applied = Applied(tx.hash_hex, tx.payer, tx.is_soroban, order, charged, fee_changes)
    src_key, src_lk = account_key(tx.source)
    src_entry = entries[src_key]
    src = src_entry.data
    assert isinstance(src, Account)
    src_new = Entry(Account(src.account_id, src.balance, tx.seq, src.num_subentries, src.flags), seq)
    entries[src_key] = src_new
    applied.before = [(src_lk, src_entry, src_new)]
    max_refundable = 0
    if tx.soroban is not None:
        applied.non_refundable = resource_fee(tx.declared_resources(), devnet.config.fees)[0]
        max_refundable = tx.resource_fee - applied.non_refundable

    tx_view = Overlay(entries)
    ok = True
    for op in tx.ops:
        op_view = Overlay(tx_view)
        events: list[HostEvent] = []
        if op.body.type == OT.INVOKE_HOST_FUNCTION:
            outcome = _invoke(devnet, tx, applied, op_view, op, seq, close_time, max_refundable)
            events = applied.op_events.pop() if outcome.success else []
        else:
            outcome = apply_classic_op(op_view, tx, op, seq)
            events = classic_events(tx, op, outcome, devnet.config.passphrase)
        applied.outcomes.append(outcome)
        if not outcome.success:
            ok = False  # later operations still run (for their results), then all is undone
            continue
        applied.op_changes.append([(k, tx_view.get(k), e) for k, e in op_view.changes.items()])
        applied.op_events.append(events)
        op_view.commit()
    applied.ok = ok
    if ok:
        for key, new in tx_view.changes.items():
            state.soroban_bytes += soroban_size(new) - soroban_size(entries.get(key))
        tx_view.commit()
    else:  # nothing an operation did stays, and nothing refundable was consumed
        applied.op_changes = []
        applied.op_events = []
        applied.return_value = None
        applied.consumed = applied.rent = 0
    applied.refund = max_refundable - applied.consumed
    return applied


def _invoke(
    devnet: Devnet,
    tx: ParsedTx,
    applied: Applied,
    view: Overlay,
    op: sx.Operation,
    seq: int,
    close_time: int,
    max_refundable: int,
) -> OpOutcome:
    """Run the contract call against the declared footprint; charge what it consumed."""
    assert op.body.invoke_host_function_op is not None and tx.soroban is not None
    ihf = op.body.invoke_host_function_op
    ic = ihf.host_function.invoke_contract
    assert ic is not None
    host = devnet.host(
        view,
        seq,
        close_time,
        Footprint(False, *tx.footprint()),
        AuthManager(False, ihf.auth, tx.op_source(op)),
        diagnostics=devnet.config.diagnostic_events,
    )
    try:
        value = run_call(host, ic)
    except HostError:
        view.changes.clear()
        applied.diagnostics.extend(host.diagnostic_events)
        return OpOutcome(OT.INVOKE_HOST_FUNCTION, "inner", IHF.INVOKE_HOST_FUNCTION_TRAPPED.value)
    events_size, changes = consumption(view, host.events, value, seq)
    rent = rent_fee_of(devnet, changes, seq)
    consumed = rent + events_fee(devnet, events_size)
    if consumed > max_refundable:
        view.changes.clear()
        message = (
            "refundable resource fee was not sufficient to cover the ledger storage rent"
            if rent > max_refundable
            else "refundable resource fee was not sufficient to cover the events fee after paying for "
            "ledger storage rent"
        )
        if host.diagnostics:
            applied.diagnostics.append(_budget_error(message, consumed, max_refundable))
        return OpOutcome(
            OT.INVOKE_HOST_FUNCTION, "inner", IHF.INVOKE_HOST_FUNCTION_INSUFFICIENT_REFUNDABLE_FEE.value
        )
    applied.consumed, applied.rent = consumed, rent
    applied.return_value = value
    applied.diagnostics.extend(host.diagnostic_events)
    events = host.events
    applied.op_events.append(events)

    def success_hash() -> bytes:
        preimage = sx.InvokeHostFunctionSuccessPreImage(
            value, [contract_event(e.contract, e.topics, e.data) for e in events]
        )
        return sha256(preimage.to_xdr_bytes())

    return OpOutcome(OT.INVOKE_HOST_FUNCTION, "inner", 0, extra=success_hash)


def run_call(host: Host, ic: sx.InvokeContractArgs) -> sx.SCVal:
    """Run an ``InvokeContract`` host function; a host error propagates once its error
    event is recorded."""
    try:
        contract, fn, args = call_target(ic)
        return host.call(contract, fn, args)
    except HostError as err:
        host.error_event(err)  # unless the contract that raised it already did
        raise


def call_target(ic: sx.InvokeContractArgs) -> tuple[str, str, list[sx.SCVal]]:
    """``(contract, function, args)`` of an ``InvokeContract`` host function."""
    try:
        contract = address_str(ic.contract_address)
    except ValueError as exc:
        raise HostError("Value", "UnexpectedType", str(exc)) from exc
    if not contract.startswith("C"):
        raise HostError("Value", "UnexpectedType", "the invoked address is not a contract")
    return contract, ic.function_name.sc_symbol.decode(errors="replace"), list(ic.args)


# -------------------------------------------------------- refundable resources


def consumption(
    view: Overlay, events: Sequence[HostEvent], value: sx.SCVal, seq: int
) -> tuple[int, list[RentChange]]:
    """What a contract call consumed of the refundable resources: the XDR size of its
    contract events plus its return value, and the rent-relevant changes of the
    entries with a TTL it created, grew or extended (over the view's base)."""
    events_size = sum(len(contract_event(e.contract, e.topics, e.data).to_xdr_bytes()) for e in events)
    events_size += len(value.to_xdr_bytes())
    return events_size, rent_changes(view, seq)


def rent_changes(view: Overlay, seq: int) -> list[RentChange]:
    out: list[RentChange] = []
    for key, new in view.changes.items():
        if new is None or not isinstance(new.data, ContractData | ContractCode):
            continue
        old = view.base.get(key)
        if old is not None and not old.alive(seq):
            old = None  # an expired temporary entry is gone: this one is new
        old_size = ledger_entry_size(old) if old is not None else 0
        old_live = (old.live_until or 0) if old is not None else 0
        new_size = ledger_entry_size(new)
        new_live = new.live_until or 0
        if new_live <= old_live and new_size <= old_size:
            continue
        persistent = not (isinstance(new.data, ContractData) and new.data.durability == TEMPORARY)
        out.append(
            RentChange(persistent, isinstance(new.data, ContractCode), old_size, new_size, old_live, new_live)
        )
    return out


def rent_fee_of(devnet: Devnet, changes: list[RentChange], seq: int) -> int:
    """The rent of ``changes`` in ledger ``seq``, at the price the state size sets."""
    fees = devnet.config.fees
    return rent_fee(changes, fees, fees.rent_fee_per_1kb(devnet.state.soroban_bytes), seq)


def events_fee(devnet: Devnet, size: int) -> int:
    return resource_fee(TxResources(contract_events_size_bytes=size), devnet.config.fees)[1]


def _budget_error(message: str, used: int, limit: int) -> DiagnosticRecord:
    error = sx.SCVal(
        sx.SCValType.SCV_ERROR,
        error=sx.SCError(sx.SCErrorType.SCE_BUDGET, code=sx.SCErrorCode.SCEC_EXCEEDED_LIMIT),
    )
    data = scval.to_vec([scval.to_string(message), scval.to_uint64(used), scval.to_uint64(limit)])
    return DiagnosticRecord(None, [scval.to_symbol("error"), error], data, ok=False)


# ------------------------------------------------------------------- records


def staged_fee_events(applied: Applied, native: str) -> list[tuple[sx.TransactionEventStage, HostEvent]]:
    """The transaction's ``fee`` events: the charge, and the refund when there was one."""
    out = []
    if applied.charged:
        out.append(
            (STAGE.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS, fee_event(native, applied.payer, applied.charged))
        )
    if applied.refund:
        out.append(
            (STAGE.TRANSACTION_EVENT_STAGE_AFTER_ALL_TXS, fee_event(native, applied.payer, -applied.refund))
        )
    return out


def to_record(tx: ParsedTx, applied: Applied, seq: int, close_time: int, native: str) -> TxRecord:
    """What ``getTransaction`` serves of an applied transaction (XDR built on first read)."""
    staged = staged_fee_events(applied, native)
    code = TRC.txSUCCESS if applied.ok else TRC.txFAILED
    fee, outcomes = applied.fee_charged, applied.outcomes
    fee_bump, inner_hash = tx.fee_bump, tx.tx_hash

    def tx_events() -> list[sx.TransactionEvent]:
        return [transaction_event(stage, event) for stage, event in staged]

    op_events = applied.op_events
    diagnostics = applied.diagnostics
    return TxRecord(
        applied.hash,
        seq,
        close_time,
        applied.order,
        fee_bump,
        tx.envelope_b64,
        applied.ok,
        fee,
        Lazy(lambda: transaction_result(code, fee, outcomes, fee_bump, inner_hash).to_xdr()),
        Lazy(lambda: b64(meta_bytes(applied, tx_events()))),
        Lazy(
            lambda: [
                [contract_event(e.contract, e.topics, e.data).to_xdr() for e in evs] for evs in op_events
            ]
        ),
        Lazy(lambda: [d.to_xdr() for d in diagnostics]),
        applied.return_value,
        tx.inclusion_fee // tx.fee_ops,
        tx.is_soroban,
        Lazy(lambda: [e.to_xdr() for e in tx_events()]),
        Lazy(lambda: b64(changes_bytes(applied.fee_changes))),
        Lazy(lambda: b64(changes_bytes(applied.refund_changes))),
    )


def event_records(
    applied: Applied, seq: int, close_time: int, native: str, counters: list[int]
) -> tuple[list[EventRecord], list[EventRecord], list[EventRecord]]:
    """``getEvents`` records of a transaction: its fee charge, its operations' events,
    its refund. ``counters`` numbers the charges and refunds across the ledger."""
    before: list[EventRecord] = []
    after: list[EventRecord] = []
    for stage, event in staged_fee_events(applied, native):
        at_start = stage == STAGE.TRANSACTION_EVENT_STAGE_BEFORE_ALL_TXS
        tx_index, slot = (0, 0) if at_start else (AFTER_ALL_TXS, 1)
        record = EventRecord(
            seq,
            close_time,
            tx_index,
            0,
            counters[slot],
            event.contract,
            event.topics,
            event.data,
            applied.hash,
            applied.ok,
        )
        counters[slot] += 1
        (before if at_start else after).append(record)
    ops = [
        EventRecord(
            seq,
            close_time,
            applied.order,
            op_index,
            i,
            e.contract,
            e.topics,
            e.data,
            applied.hash,
            applied.ok,
        )
        for op_index, events in enumerate(applied.op_events)
        for i, e in enumerate(events)
    ]
    return before, ops, after
