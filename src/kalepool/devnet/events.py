"""Unified events (CAP-67) outside contracts: fee events, and the SAC events of classic
operations.

stellar-core emits them itself, as contract events of the asset's Stellar Asset
Contract (the native asset's for fees), whether or not that contract is deployed:

- ``fee``: ``[Symbol("fee"), Address(fee source)]`` with ``I128`` data, the fee charged
  before any transaction of the ledger is applied (stage ``BEFORE_ALL_TXS``) and, for a
  Soroban transaction, minus the refund after all of them (``AFTER_ALL_TXS``; a zero
  refund emits nothing).
- classic movements of an asset (:func:`classic_events`: payments, account creations and
  merges): ``transfer``
  ``[from, to, "CODE:ISSUER"]``, or ``mint`` ``[to, asset]`` when the issuer pays,
  ``burn`` ``[from, asset]`` when the issuer is paid; the data is the ``I128`` amount, or
  ``{amount, to_muxed_id}`` when the destination is muxed or the transaction has a memo.
"""

from __future__ import annotations

from functools import lru_cache

from stellar_sdk import Asset, scval
from stellar_sdk import xdr as sx

from kalepool.devnet.codec import (
    AssetKey,
    account_id_str,
    address_scval,
    asset_key_from_xdr,
    asset_name,
    muxed_to_g,
)
from kalepool.devnet.host import HostEvent, contract_event
from kalepool.devnet.transactions import OT, OpOutcome, ParsedTx

STAGE = sx.TransactionEventStage


@lru_cache(maxsize=64)
def asset_contract(asset: AssetKey | None, passphrase: str) -> str:
    """The C... address of an asset's Stellar Asset Contract (native: ``None``)."""
    sdk_asset = Asset.native() if asset is None else Asset(asset[0], asset[1])
    return sdk_asset.contract_id(passphrase)


@lru_cache(maxsize=16)
def _symbol(name: str) -> sx.SCVal:
    return scval.to_symbol(name)


def fee_event(native_contract: str, account: str, amount: int) -> HostEvent:
    """``fee`` charged to (positive) or refunded to (negative) ``account``."""
    return HostEvent(native_contract, [_symbol("fee"), address_scval(account)], scval.to_int128(amount))


def transaction_event(stage: sx.TransactionEventStage, event: HostEvent) -> sx.TransactionEvent:
    return sx.TransactionEvent(stage, contract_event(event.contract, event.topics, event.data))


def transfer_events(
    asset: AssetKey | None,
    passphrase: str,
    source: str,
    destination: str,
    amount: int,
    muxed_id: sx.SCVal | None = None,
) -> list[HostEvent]:
    """The event of ``amount`` of ``asset`` moving from ``source`` to ``destination``
    (G... addresses), as a classic payment, account creation or merge emits it."""
    contract = asset_contract(asset, passphrase)
    name = scval.to_string(asset_name(asset))
    data = scval.to_int128(amount)
    if muxed_id is not None:
        data = scval.to_map({_symbol("amount"): data, _symbol("to_muxed_id"): muxed_id})
    issuer = asset[1] if asset is not None else None
    if issuer is not None and source == issuer and destination != issuer:
        return [HostEvent(contract, [_symbol("mint"), address_scval(destination), name], data)]
    if issuer is not None and destination == issuer and source != issuer:
        return [HostEvent(contract, [_symbol("burn"), address_scval(source), name], scval.to_int128(amount))]
    topics = [_symbol("transfer"), address_scval(source), address_scval(destination), name]
    return [HostEvent(contract, topics, data)]


def classic_events(tx: ParsedTx, op: sx.Operation, outcome: OpOutcome, passphrase: str) -> list[HostEvent]:
    """The SAC events of a successful classic operation that moves an asset."""
    if not outcome.success:
        return []
    source = tx.op_source(op)
    body = op.body
    memo = tx.tx.memo
    if body.type == OT.CREATE_ACCOUNT and body.create_account_op is not None:
        create = body.create_account_op
        dest = account_id_str(create.destination)
        amount = create.starting_balance.int64
        return transfer_events(None, passphrase, source, dest, amount, _to_muxed_id(None, memo))
    if body.type == OT.PAYMENT and body.payment_op is not None:
        pay = body.payment_op
        asset = asset_key_from_xdr(pay.asset)
        dest = muxed_to_g(pay.destination)
        muxed = _to_muxed_id(pay.destination, memo)
        return transfer_events(asset, passphrase, source, dest, pay.amount.int64, muxed)
    if body.type == OT.ACCOUNT_MERGE and body.destination is not None:
        dest = muxed_to_g(body.destination)
        return transfer_events(
            None, passphrase, source, dest, outcome.extra, _to_muxed_id(body.destination, memo)
        )
    return []


def _to_muxed_id(destination: sx.MuxedAccount | None, memo: sx.Memo) -> sx.SCVal | None:
    """What a payment's event data names beside the amount: the muxed destination's id,
    else the transaction's memo, else nothing."""
    if destination is not None and destination.med25519 is not None:
        return scval.to_uint64(destination.med25519.id.uint64)
    t = memo.type
    if t == sx.MemoType.MEMO_TEXT and memo.text is not None:
        return scval.to_string(memo.text)
    if t == sx.MemoType.MEMO_ID and memo.id is not None:
        return scval.to_uint64(memo.id.uint64)
    if t == sx.MemoType.MEMO_HASH and memo.hash is not None:
        return scval.to_bytes(memo.hash.hash)
    if t == sx.MemoType.MEMO_RETURN and memo.ret_hash is not None:
        return scval.to_bytes(memo.ret_hash.hash)
    return None
