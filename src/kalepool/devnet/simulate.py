"""``simulateTransaction``: one contract call against the latest ledger, in recording mode.

The call runs as the next ledger would apply it (sequence + 1, the latest close time)
on a throwaway view. Its footprint is the keys it read (read-only) and wrote
(read-write); its resources and fee are measured as stellar-rpc's simulation measures
them, with the same safety margins:

- instructions: the devnet's cost model, padded ×1.04 or +50,000 (or the caller's
  ``instructionLeeway``);
- disk reads: the classic entries (accounts, trustlines) of the footprint, their
  ``LedgerEntry`` bytes; live contract state is in memory and free to read;
- writes: the ``LedgerEntry`` bytes of every entry written;
- transaction size: the largest envelope this operation could travel in (20
  signatures, every precondition, a memo), padded ×1.1 or +500 bytes;
- refundable: rent of the entries created or extended, plus the events and return
  value, padded ×1.15.

``minResourceFee`` is the non-refundable fee of those resources plus the padded
refundable part; ``transactionData`` declares exactly them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from stellar_sdk import xdr as sx

from kalepool.devnet.apply import consumption, events_fee, rent_fee_of, run_call
from kalepool.devnet.auth import AuthManager
from kalepool.devnet.codec import ledger_entry_size
from kalepool.devnet.fees import INSTRUCTIONS_MARGIN, REFUNDABLE_MARGIN, TX_SIZE_MARGIN, TxResources, adjust
from kalepool.devnet.fees import resource_fee as fee_of
from kalepool.devnet.host import Footprint, HostError
from kalepool.devnet.ledger import Overlay
from kalepool.devnet.meta import error_text, state_changes
from kalepool.devnet.transactions import OT, SOROBAN_KEYS, parse_envelope

if TYPE_CHECKING:
    from kalepool.devnet.engine import Devnet

AUTH_MODES = (None, "enforce", "record", "record_allow_nonroot")


@dataclass(slots=True)
class SimulationResult:
    latest_ledger: int
    error: str | None = None
    result_xdr: str | None = None
    auth: list[str] = field(default_factory=list)
    transaction_data: str | None = None
    min_resource_fee: int | None = None
    events: list[str] = field(default_factory=list)
    state_changes: list[dict[str, Any]] = field(default_factory=list)
    cost: tuple[int, int] = (0, 0)


def simulate(
    devnet: Devnet,
    envelope_b64: str,
    auth_mode: str | None = None,
    instruction_leeway: int = 0,
    upgraded_auth: bool = False,
) -> SimulationResult:
    """Errors are the result's ``error``, as stellar-rpc answers them."""
    try:
        tx = parse_envelope(envelope_b64, devnet.network_id)
    except ValueError:
        return SimulationResult(0, error="Could not unmarshal transaction")
    with devnet.lock:
        state = devnet.state
        latest = state.latest
        result = SimulationResult(latest.sequence)
        if len(tx.ops) != 1:
            return SimulationResult(0, error="Transaction contains more than one operation")
        if tx.tx.memo.type != sx.MemoType.MEMO_NONE:
            return SimulationResult(
                0, error="Transaction contains a memo. Soroban transactions do not support memos."
            )
        op = tx.ops[0]
        if auth_mode not in AUTH_MODES:
            modes = "enforce,record,record_allow_nonroot"
            return SimulationResult(0, error=f"optional 'authMode' must be one of {modes} when included")
        if op.body.type != OT.INVOKE_HOST_FUNCTION:
            return SimulationResult(
                0, error=f"Transaction contains unsupported operation type: {_go_name(op.body.type)}"
            )
        assert op.body.invoke_host_function_op is not None
        ihf = op.body.invoke_host_function_op
        if auth_mode is None:
            auth_mode = "enforce" if ihf.auth else "record"
        if auth_mode != "enforce" and ihf.auth:
            return SimulationResult(0, error=f"cannot set authMode to '{auth_mode}' with an auth footprint")
        ic = ihf.host_function.invoke_contract
        if ic is None:
            result.error = "the devnet simulates only InvokeContract host functions"
            return result
        recording = auth_mode != "enforce"
        seq = latest.sequence + 1
        view = Overlay(state.entries)
        auth = AuthManager(
            recording,
            ihf.auth,
            tx.op_source(op),
            allow_non_root=auth_mode == "record_allow_nonroot",
            rng=devnet.rng,
        )
        host = devnet.host(view, seq, latest.close_time, Footprint(True), auth)
        try:
            value = run_call(host, ic)
        except HostError as err:
            result.error = error_text(err, host.diagnostic_events[: host.error_log_size])
            result.events = [d.to_xdr() for d in host.diagnostic_events]
            return result
        entries = auth.recorded_entries(upgraded_auth) if recording else list(ihf.auth)
        footprint = host.footprint.to_xdr()
        disk_entries = disk_bytes = write_bytes = 0
        for key in [*host.footprint.read_only, *host.footprint.read_write]:
            lk = host.footprint.read_only.get(key) or host.footprint.read_write[key]
            if lk.type in SOROBAN_KEYS:
                continue
            disk_entries += 1
            entry = state.entries.get(key)
            if entry is not None:
                disk_bytes += ledger_entry_size(entry)
        for key in host.footprint.read_write:
            entry = view.get(key)
            if entry is not None:
                write_bytes += ledger_entry_size(entry)
        body = sx.OperationBody(
            OT.INVOKE_HOST_FUNCTION,
            invoke_host_function_op=sx.InvokeHostFunctionOp(ihf.host_function, entries),
        )
        leeway = max(INSTRUCTIONS_MARGIN[1], instruction_leeway)
        resources = TxResources(
            instructions=adjust(host.instructions, INSTRUCTIONS_MARGIN[0], leeway),
            disk_read_entries=disk_entries,
            write_entries=len(host.footprint.read_write),
            disk_read_bytes=disk_bytes,
            write_bytes=write_bytes,
            transaction_size_bytes=adjust(max_tx_size(body, footprint), *TX_SIZE_MARGIN),
        )
        events_size, rent_changes = consumption(view, host.events, value, seq)
        non_refundable = fee_of(resources, devnet.config.fees)[0]
        refundable = events_fee(devnet, events_size) + rent_fee_of(devnet, rent_changes, seq)
        fee = non_refundable + adjust(refundable, *REFUNDABLE_MARGIN)
        data = sx.SorobanTransactionData(
            ext=sx.SorobanTransactionDataExt(0),
            resources=sx.SorobanResources(
                footprint=footprint,
                instructions=sx.Uint32(resources.instructions),
                disk_read_bytes=sx.Uint32(disk_bytes),
                write_bytes=sx.Uint32(write_bytes),
            ),
            resource_fee=sx.Int64(fee),
        )
        result.result_xdr = value.to_xdr()
        result.auth = [e.to_xdr() for e in entries]
        result.transaction_data = data.to_xdr()
        result.min_resource_fee = fee
        result.events = [d.to_xdr() for d in host.diagnostic_events]
        result.state_changes = state_changes(view, state.entries)
        result.cost = (host.instructions, 0)
        return result


def _go_name(kind: sx.OperationType) -> str:
    """``PAYMENT`` as stellar-rpc (Go) spells it: ``OperationTypePayment``."""
    return "OperationType" + "".join(part.title() for part in kind.name.split("_"))


def max_tx_size(body: sx.OperationBody, footprint: sx.LedgerFootprint) -> int:
    """The size of the largest envelope an operation with ``body`` and ``footprint``
    could travel in, as stellar-rpc estimates it: the template's bytes plus theirs."""
    return _template_size() + len(body.to_xdr_bytes()) + len(footprint.to_xdr_bytes())


@lru_cache(maxsize=1)
def _template_size() -> int:
    """Bytes of the estimate envelope around an operation body and a footprint."""
    zero32 = sx.Uint256(bytes(32))
    muxed = sx.MuxedAccount(
        sx.CryptoKeyType.KEY_TYPE_MUXED_ED25519, med25519=sx.MuxedAccountMed25519(sx.Uint64(0), zero32)
    )
    signer = sx.SignerKey(
        sx.SignerKeyType.SIGNER_KEY_TYPE_ED25519_SIGNED_PAYLOAD,
        ed25519_signed_payload=sx.SignerKeyEd25519SignedPayload(zero32, bytes(64)),
    )
    body = sx.OperationBody(sx.OperationType.INFLATION)  # no arm: 4 bytes, taken off below
    footprint = sx.LedgerFootprint([], [])
    envelope = sx.TransactionV1Envelope(
        tx=sx.Transaction(
            source_account=muxed,
            fee=sx.Uint32(0),
            seq_num=sx.SequenceNumber(sx.Int64(0)),
            cond=sx.Preconditions(
                sx.PreconditionType.PRECOND_V2,
                v2=sx.PreconditionsV2(
                    time_bounds=sx.TimeBounds(sx.TimePoint(sx.Uint64(0)), sx.TimePoint(sx.Uint64(0))),
                    ledger_bounds=sx.LedgerBounds(sx.Uint32(0), sx.Uint32(0)),
                    min_seq_num=sx.SequenceNumber(sx.Int64(0)),
                    min_seq_age=sx.Duration(sx.Uint64(0)),
                    min_seq_ledger_gap=sx.Uint32(0),
                    extra_signers=[signer, signer],
                ),
            ),
            memo=sx.Memo(sx.MemoType.MEMO_HASH, hash=sx.Hash(bytes(32))),
            operations=[sx.Operation(source_account=muxed, body=body)],
            ext=sx.TransactionExt(
                1,
                soroban_data=sx.SorobanTransactionData(
                    ext=sx.SorobanTransactionDataExt(1, resource_ext=sx.SorobanResourcesExtV0([])),
                    resources=sx.SorobanResources(footprint, sx.Uint32(0), sx.Uint32(0), sx.Uint32(0)),
                    resource_fee=sx.Int64(0),
                ),
            ),
        ),
        signatures=[sx.DecoratedSignature(sx.SignatureHint(bytes(4)), sx.Signature(bytes(64)))] * 20,
    )
    return len(envelope.to_xdr_bytes()) - len(body.to_xdr_bytes()) - len(footprint.to_xdr_bytes())
