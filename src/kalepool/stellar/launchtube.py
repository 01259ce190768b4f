"""Launchtube: submit contract calls through a fee-sponsoring relay (stellar-python.md §3).

``POST <url>`` with the form field ``xdr`` (the signed, assembled envelope; urlencoded,
not JSON) and ``Authorization: Bearer <token>``. Launchtube simulates again (unless the
envelope carries source-account auth, which it must then leave as it is: its fee may
exceed the resource fee by at most 201 stroops and its ``maxTime`` be at most 30 s
ahead), wraps it in a fee bump, sends it and polls it, and answers with the final
transaction:

- 200 ``{status: "SUCCESS", hash, feeCharged, resultXdr, resultMetaXdr, returnValue,
  ledger, ...}``;
- an error status with ``{type: "simulate", error}`` (a failed simulation),
  ``{type: "send", status: "ERROR" | "FAILED", ...}`` (rejected or failed), or a plain
  string ("No credits left", "Not activated", a validation error).

Because Launchtube may rebuild the transaction with its own source account, the signed
envelope's sequence number may stay unused (``keeps_envelope`` is False: the pipeline
re-reads it). A submission whose answer is lost is followed by the envelope's hash over
RPC, never re-sent.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import structlog
from stellar_sdk import xdr as sx

from kalepool.stellar.decode import MetaInfo, ResultInfo, decode_result
from kalepool.stellar.errors import NetworkError, SimulationFailed, TxInDoubt, TxRejected
from kalepool.stellar.rpc import RpcClient
from kalepool.stellar.submit import RpcSubmitter, SignedTx, TxResult

__all__ = ["LaunchtubeError", "LaunchtubeSubmitter"]

log = structlog.get_logger(__name__)

#: Launchtube accepts at most resource fee + 201 stroops for an envelope it keeps as is.
LAUNCHTUBE_FEE_CAP = 201
#: ... and a ``maxTime`` at most 30 s ahead.
LAUNCHTUBE_TIMEOUT_CAP = 30


class LaunchtubeError(NetworkError):
    """Launchtube refused the submission before sending it (token, credits, validation).

    ``status`` is the HTTP status and ``body`` its (truncated) text.
    """

    code = "launchtube_error"

    def __init__(self, status: int, body: str, *, url: str | None = None) -> None:
        super().__init__(f"launchtube refused the transaction (HTTP {status}): {body}", url=url)
        self.status = status
        self.body = body


class LaunchtubeSubmitter:
    """A :class:`~kalepool.stellar.submit.Submitter` that posts envelopes to Launchtube.

    :param rpc: used only to follow a submission whose answer was lost (by hash).
    :param timeout: seconds one POST may take (Launchtube polls for up to ~30 s itself).
    """

    inclusion_fee_cap: int | None = LAUNCHTUBE_FEE_CAP
    timeout_cap: int | None = LAUNCHTUBE_TIMEOUT_CAP
    keeps_envelope = False

    def __init__(
        self,
        url: str,
        token: str,
        *,
        rpc: RpcClient,
        timeout: float = 45.0,
        poll_interval: float = 1.0,
        max_wait: float = 90.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self._token = token
        self.timeout = timeout
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._own_client = client is None
        self._follower = RpcSubmitter(rpc, poll_interval=poll_interval, max_wait=max_wait, resend=False)

    def __repr__(self) -> str:  # never show the token
        return f"<LaunchtubeSubmitter {self.url}>"

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def submit(self, tx: SignedTx) -> TxResult:
        try:
            response = await self._client.post(
                self.url,
                data={"xdr": tx.envelope_xdr},
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout,
            )
        except httpx.ConnectError as exc:  # never reached Launchtube: nothing was sent
            raise NetworkError(f"cannot reach launchtube at {self.url}: {exc}", url=self.url) from exc
        except httpx.HTTPError as exc:
            raise TxInDoubt(
                f"launchtube: no answer for {tx.tx_hash} ({type(exc).__name__})", tx=tx.attempt()
            ) from exc
        return self._interpret(tx, response)

    async def resume(self, tx: SignedTx) -> TxResult:
        return await self._follower.resume(tx)

    def _interpret(self, tx: SignedTx, response: httpx.Response) -> TxResult:
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text
        if response.status_code == 200 and isinstance(body, dict):
            return _success(tx, body)
        if isinstance(body, dict):
            kind = body.get("type")
            if kind == "simulate":
                error = body.get("error")
                text = error if isinstance(error, str) else json.dumps(error)
                events = body.get("diagnosticEventsXdr") or body.get("events") or ()
                raise SimulationFailed(text, events=tuple(e for e in events if isinstance(e, str)))
            if kind == "send":
                return _send_failure(tx, body)
        text = body if isinstance(body, str) else json.dumps(body)
        if response.status_code >= 500:
            raise TxInDoubt(
                f"launchtube failed (HTTP {response.status_code}) for {tx.tx_hash}: {text[:300]}",
                tx=tx.attempt(),
            )
        raise LaunchtubeError(response.status_code, text[:300], url=self.url)


def _success(tx: SignedTx, body: dict[str, Any]) -> TxResult:
    tx_hash = str(body.get("hash") or tx.tx_hash)
    ledger = int(body.get("ledger") or 0)
    result_xdr = body.get("resultXdr")
    meta_xdr = body.get("resultMetaXdr")
    events = body.get("diagnosticEventsXdr") or None
    if isinstance(result_xdr, str):
        return TxResult.from_parts(tx_hash, ledger, result_xdr, meta_xdr, events, success=True)
    # a minimal answer: the fee and the return value only
    ret = body.get("returnValue")
    meta = MetaInfo(0, sx.SCVal.from_xdr(ret), (), ()) if isinstance(ret, str) else None
    info = ResultInfo(int(body.get("feeCharged") or 0), "txSUCCESS", ())
    return TxResult(tx_hash, True, ledger, info, meta)


def _send_failure(tx: SignedTx, body: dict[str, Any]) -> TxResult:
    status = body.get("status")
    if status == "FAILED" and isinstance(body.get("resultXdr"), str):
        return TxResult.from_parts(
            str(body.get("hash") or tx.tx_hash),
            int(body.get("ledger") or 0),
            body["resultXdr"],
            body.get("resultMetaXdr"),
            body.get("diagnosticEventsXdr") or None,
            success=False,
        )
    raw = body.get("errorResultXdr") or body.get("errorResult")
    if isinstance(raw, str):
        try:
            info = decode_result(raw)
        except Exception:
            info = None
        if info is not None:
            raise TxRejected(info.code, op_codes=info.op_codes, tx=tx.attempt())
    raise TxRejected(str(status or "ERROR"), tx=tx.attempt())
