"""RpcSubmitter against a scripted RPC: TRY_AGAIN_LATER, lost sends, expiry, rejection.

The stand-in plays a one-transaction chain: what it was sent, and what getTransaction
answers. The devnet tests cover the same paths end to end.
"""

from __future__ import annotations

from typing import Any

import pytest
from stellar_sdk import Account, Asset, Keypair, TransactionBuilder, scval

from kalepool.kale.networks import DEVNET
from kalepool.stellar.errors import TxExpired, TxInDoubt, TxRejected, TxThrottled
from kalepool.stellar.rpc import RpcClient
from kalepool.stellar.submit import RpcSubmitter, SignedTx

from . import xdrs
from .standin import Reply, StandInRpc

SOURCE = Keypair.random()
CLOSE_TIME = 1_700_000_000


def signed_tx(sequence: int = 41, max_time: int = CLOSE_TIME + 60) -> SignedTx:
    envelope = (
        TransactionBuilder(Account(SOURCE.public_key, sequence - 1), DEVNET.passphrase, base_fee=100)
        .append_payment_op(Keypair.random().public_key, Asset.native(), "1")
        .add_time_bounds(0, max_time)
        .build()
    )
    envelope.sign(SOURCE)
    return SignedTx.from_envelope(envelope)


def tx_status(status: str, tx_hash: str, *, close_time: int = CLOSE_TIME, **extra: Any) -> dict[str, Any]:
    body = {
        "status": status,
        "txHash": tx_hash,
        "latestLedger": 100,
        "latestLedgerCloseTime": str(close_time),
        "oldestLedger": 1,
        "oldestLedgerCloseTime": str(CLOSE_TIME - 10_000),
    }
    body.update(extra)
    return body


def applied(tx: SignedTx, *, success: bool = True) -> dict[str, Any]:
    result = (
        xdrs.tx_result(fee=150)
        if success
        else xdrs.tx_result(150, "txFAILED", "INVOKE_HOST_FUNCTION_TRAPPED")
    )
    return tx_status(
        "SUCCESS" if success else "FAILED",
        tx.tx_hash,
        ledger=101,
        createdAt=str(CLOSE_TIME + 5),
        applicationOrder=1,
        feeBump=False,
        envelopeXdr=tx.envelope_xdr,
        resultXdr=result,
        resultMetaXdr=xdrs.meta_v4(scval.to_uint32(3)),
    )


def send_reply(tx: SignedTx, status: str, **extra: Any) -> dict[str, Any]:
    body = {
        "status": status,
        "hash": tx.tx_hash,
        "latestLedger": 100,
        "latestLedgerCloseTime": str(CLOSE_TIME),
    }
    body.update(extra)
    return body


def submitter(standin: StandInRpc, **kw: Any) -> tuple[RpcClient, RpcSubmitter]:
    rpc = RpcClient([standin.url], timeout=kw.pop("timeout", 1.0), backoff=0.01, max_backoff=0.02)
    kw.setdefault("poll_interval", 0.01)
    kw.setdefault("try_again_backoff", 0.01)
    return rpc, RpcSubmitter(rpc, **kw)


async def test_pending_then_success(standin: StandInRpc) -> None:
    tx = signed_tx()
    polls = iter([tx_status("NOT_FOUND", tx.tx_hash)] * 2 + [applied(tx)])
    standin.on("sendTransaction", send_reply(tx, "PENDING"))
    standin.on("getTransaction", lambda _p: next(polls))
    rpc, sub = submitter(standin)
    async with rpc:
        result = await sub.submit(tx)
    assert result.success and result.ledger == 101 and result.fee_charged == 150
    assert result.return_value is not None and scval.from_uint32(result.return_value) == 3
    assert standin.count("sendTransaction") == 1
    assert standin.count("getTransaction") == 3


async def test_try_again_later_backs_off_and_resends_the_same_envelope(standin: StandInRpc) -> None:
    tx = signed_tx()
    sends = iter(["TRY_AGAIN_LATER", "TRY_AGAIN_LATER", "PENDING"])
    standin.on("sendTransaction", lambda _p: send_reply(tx, next(sends)))
    standin.on("getTransaction", applied(tx))
    rpc, sub = submitter(standin)
    async with rpc:
        assert (await sub.submit(tx)).success
    envelopes = [p["transaction"] for m, p in standin.calls if m == "sendTransaction"]
    assert envelopes == [tx.envelope_xdr] * 3


async def test_try_again_later_is_bounded(standin: StandInRpc) -> None:
    tx = signed_tx()
    standin.on("sendTransaction", send_reply(tx, "TRY_AGAIN_LATER"))
    rpc, sub = submitter(standin, try_again_attempts=4)
    async with rpc:
        with pytest.raises(TxThrottled) as info:
            await sub.submit(tx)
    assert info.value.tx_hash == tx.tx_hash
    assert standin.count("sendTransaction") == 4
    assert standin.count("getTransaction") == 0


async def test_error_is_rejected_with_its_result_code(standin: StandInRpc) -> None:
    tx = signed_tx()
    standin.on(
        "sendTransaction",
        send_reply(tx, "ERROR", errorResultXdr="AAAAAAAAAGT////7AAAAAA==", diagnosticEventsXdr=[]),
    )
    rpc, sub = submitter(standin)
    async with rpc:
        with pytest.raises(TxRejected) as info:
            await sub.submit(tx)
    assert info.value.result_code == "txBAD_SEQ"
    assert info.value.tx is not None and info.value.tx.envelope_xdr == tx.envelope_xdr


async def test_lost_send_answer_is_recovered_by_hash(standin: StandInRpc) -> None:
    """The first send reaches the chain but its answer times out: the transaction is
    found by hash; the same envelope is re-sent once (DUPLICATE), nothing new is signed."""
    tx = signed_tx()
    chain: dict[str, Any] = {"queued": False, "polls": 0}

    def send(params: dict[str, Any]) -> Reply:
        assert params["transaction"] == tx.envelope_xdr
        if not chain["queued"]:
            chain["queued"] = True
            return Reply(result=send_reply(tx, "PENDING"), delay=0.5)  # the answer is lost
        return Reply(result=send_reply(tx, "DUPLICATE"))

    def get(_params: dict[str, Any]) -> dict[str, Any]:
        chain["polls"] += 1
        return applied(tx) if chain["polls"] >= 3 else tx_status("NOT_FOUND", tx.tx_hash)

    standin.on("sendTransaction", send)
    standin.on("getTransaction", get)
    rpc, sub = submitter(standin, timeout=0.1)
    async with rpc:
        result = await sub.submit(tx)
    assert result.success
    sent = [p["transaction"] for m, p in standin.calls if m == "sendTransaction"]
    assert set(sent) == {tx.envelope_xdr}
    assert len(sent) == 2


async def test_past_max_time_and_unused_sequence_is_expired(standin: StandInRpc) -> None:
    tx = signed_tx(sequence=41, max_time=CLOSE_TIME + 30)
    standin.on("sendTransaction", send_reply(tx, "PENDING"))
    standin.on("getTransaction", tx_status("NOT_FOUND", tx.tx_hash, close_time=CLOSE_TIME + 31))
    standin.on(
        "getLedgerEntries",
        {
            "entries": [
                {
                    "key": "k",
                    "xdr": xdrs.account_entry_xdr(SOURCE.public_key, 10**8, 40),
                    "lastModifiedLedgerSeq": 90,
                }
            ],
            "latestLedger": 100,
        },
    )
    rpc, sub = submitter(standin)
    async with rpc:
        with pytest.raises(TxExpired):
            await sub.submit(tx)


async def test_past_max_time_with_consumed_sequence_stays_in_doubt(standin: StandInRpc) -> None:
    tx = signed_tx(sequence=41, max_time=CLOSE_TIME + 30)
    standin.on("sendTransaction", send_reply(tx, "PENDING"))
    standin.on("getTransaction", tx_status("NOT_FOUND", tx.tx_hash, close_time=CLOSE_TIME + 31))
    standin.on(
        "getLedgerEntries",
        {
            "entries": [
                {
                    "key": "k",
                    "xdr": xdrs.account_entry_xdr(SOURCE.public_key, 10**8, 41),
                    "lastModifiedLedgerSeq": 90,
                }
            ],
            "latestLedger": 100,
        },
    )
    rpc, sub = submitter(standin)
    async with rpc:
        with pytest.raises(TxInDoubt) as info:
            await sub.submit(tx)
    assert info.value.expired


async def test_unreachable_rpc_leaves_the_transaction_in_doubt(standin: StandInRpc) -> None:
    tx = signed_tx()
    standin.on("sendTransaction", send_reply(tx, "PENDING"))
    standin.on("getTransaction", Reply(status=503, body="down"))
    rpc, sub = submitter(standin, max_wait=0.2)
    async with rpc:
        with pytest.raises(TxInDoubt) as info:
            await sub.submit(tx)
    assert not info.value.expired
    assert info.value.tx is not None and info.value.tx.tx_hash == tx.tx_hash


async def test_resend_after_doubt_tolerates_bad_seq(standin: StandInRpc) -> None:
    """An earlier copy was applied between two polls: the re-send says txBAD_SEQ, which
    must not be taken for a rejection."""
    tx = signed_tx()
    polls = iter([tx_status("NOT_FOUND", tx.tx_hash), applied(tx)])
    standin.on(
        "sendTransaction",
        send_reply(tx, "ERROR", errorResultXdr="AAAAAAAAAGT////7AAAAAA=="),
    )
    standin.on("getTransaction", lambda _p: next(polls))
    rpc, sub = submitter(standin)
    async with rpc:
        assert (await sub.resume(tx)).success


async def test_failed_transaction_is_returned_for_classification(standin: StandInRpc) -> None:
    tx = signed_tx()
    standin.on("sendTransaction", send_reply(tx, "PENDING"))
    standin.on("getTransaction", applied(tx, success=False))
    rpc, sub = submitter(standin)
    async with rpc:
        result = await sub.submit(tx)
    assert not result.success
    assert result.result.op_codes == ("INVOKE_HOST_FUNCTION_TRAPPED",)


def test_signed_tx_parse_checks_the_hash() -> None:
    tx = signed_tx()
    assert SignedTx.parse(tx.envelope_xdr, DEVNET.passphrase, tx.tx_hash) == tx
    from kalepool.errors import InvalidInput

    with pytest.raises(InvalidInput, match="tx_hash"):
        SignedTx.parse(tx.envelope_xdr, DEVNET.passphrase, "00" * 32)
    with pytest.raises(InvalidInput, match="tx_hash"):
        SignedTx.parse(tx.envelope_xdr, "another network", tx.tx_hash)
    with pytest.raises(InvalidInput, match="envelope_xdr"):
        SignedTx.parse("garbage", DEVNET.passphrase)
