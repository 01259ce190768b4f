"""Soroban RPC access with failover, timeouts and bounded retries.

:class:`RpcClient` holds one ``stellar_sdk.SorobanServerAsync`` per configured URL and
sends every request to the current one; a transient failure (timeout, connection
error, HTTP 5xx or 429, a malformed body, JSON-RPC -32603/-32001/-32003) moves it on to
the next URL and the request is retried there, with jittered exponential backoff
(tenacity), a bounded number of times.

This module is the boundary for stellar-sdk's exceptions: the SDK's ``ConnectionError``,
asyncio's ``TimeoutError``, ``SorobanRpcErrorResponse`` and the HTTP errors all leave it
as :class:`~kalepool.stellar.errors.NetworkError` (``RpcTimeout``, ``RpcError``).

``sendTransaction`` is never retried here: whether a send whose answer was lost reached
the network is for the submit pipeline to find out (by hash), not for a blind resend.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from pydantic import BaseModel
from stellar_sdk import TransactionEnvelope
from stellar_sdk import exceptions as sdk_errors
from stellar_sdk import soroban_rpc as wire
from stellar_sdk import xdr as sx
from stellar_sdk.client.aiohttp_client import AiohttpClient
from stellar_sdk.soroban_server_async import SorobanServerAsync
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from kalepool.stellar.decode import base_reserve_from_header
from kalepool.stellar.errors import NetworkError, RpcError, RpcTimeout
from kalepool.stellar.fees import FeeDistribution, FeeStats

__all__ = ["MAX_KEYS_PER_REQUEST", "EntryResult", "LatestLedger", "RpcClient"]

log = structlog.get_logger(__name__)

T = TypeVar("T")

#: getLedgerEntries accepts at most this many keys per request.
MAX_KEYS_PER_REQUEST = 200
#: JSON-RPC codes worth retrying elsewhere: internal error, over the request limit,
#: internal issue.
TRANSIENT_RPC_CODES = frozenset({-32603, -32001, -32003})


@dataclass(frozen=True, slots=True)
class LatestLedger:
    """The newest closed ledger: sequence, close time (Unix s) and, when the RPC sent
    a header, the base reserve (stroops)."""

    sequence: int
    close_time: int
    protocol_version: int
    base_reserve: int | None = None


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One ledger entry: ``xdr`` is the base64 ``LedgerEntryData``."""

    key: str
    xdr: str
    last_modified_ledger: int
    live_until_ledger: int | None


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass on another try or on another RPC."""
    if isinstance(exc, RpcError):
        return exc.rpc_code in TRANSIENT_RPC_CODES
    return isinstance(exc, NetworkError)


class RpcClient:
    """Failover over several Soroban RPC URLs.

    :param urls: RPC URLs, tried in order; the first that answers stays current.
    :param timeout: seconds a single request may take.
    :param rounds: how many times each URL may be tried for one request.
    :param backoff: first wait between tries, seconds (doubles, jittered, up to ``max_backoff``).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        timeout: float = 10.0,
        rounds: int = 2,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        pool_size: int | None = None,
    ) -> None:
        if not urls:
            raise ValueError("urls: at least one RPC URL is needed")
        self.urls = tuple(urls)
        self.timeout = timeout
        self._attempts = max(1, rounds) * len(self.urls)
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._servers = [
            SorobanServerAsync(
                url,
                client=AiohttpClient(
                    pool_size=pool_size, request_timeout=timeout + 1, post_timeout=timeout + 1
                ),
            )
            for url in self.urls
        ]
        self._current = 0

    @property
    def current_url(self) -> str:
        return self.urls[self._current]

    async def close(self) -> None:
        for server in self._servers:
            await server.close()

    async def __aenter__(self) -> RpcClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------- plumbing

    async def _once(self, method: str, call: Callable[[SorobanServerAsync], Awaitable[T]]) -> T:
        index = self._current
        url = self.urls[index]
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # races the call's completion (CPython gh-86296), which hangs a shutdown
            async with asyncio.timeout(self.timeout):
                return await call(self._servers[index])
        except Exception as exc:
            err = _translate(method, url, exc, self.timeout)
            if err is None:
                raise
            if is_transient(err) and self._current == index and len(self.urls) > 1:
                self._current = (index + 1) % len(self.urls)
                log.warning("rpc.failover", method=method, failed=url, next=self.current_url, error=str(err))
            raise err from exc

    async def _call(
        self,
        method: str,
        call: Callable[[SorobanServerAsync], Awaitable[T]],
        *,
        retry: bool = True,
    ) -> T:
        if not retry:
            return await self._once(method, call)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential_jitter(
                multiplier=self._backoff, max=self._max_backoff, jitter=self._backoff
            ),
            retry=retry_if_exception(is_transient),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await self._once(method, call)
        return result

    # -------------------------------------------------------------- methods

    async def health(self) -> str:
        response = await self._call("getHealth", lambda s: s.get_health())
        return response.status

    async def network_passphrase(self) -> str:
        response = await self._call("getNetwork", lambda s: s.get_network())
        return response.passphrase

    async def friendbot_url(self) -> str | None:
        """The network's friendbot (``getNetwork``; test networks only)."""
        response = await self._call("getNetwork", lambda s: s.get_network())
        return response.friendbot_url

    async def devnet_info(self) -> DevnetInfo | None:
        """What a kalepool devnet reports of itself (``devnet_info``); ``None`` from a
        network that does not know the method (every real one)."""
        request = wire.Request[None](id=_next_id(), method="devnet_info", params=None)
        try:
            # the SDK sends any JSON-RPC request through its (private) _post
            return await self._call("devnet_info", lambda s: s._post(request, DevnetInfo))
        except RpcError as exc:
            if exc.rpc_code == _METHOD_NOT_FOUND:
                return None
            raise

    async def latest_ledger(self) -> LatestLedger:
        r = await self._call("getLatestLedger", lambda s: s.get_latest_ledger())
        return LatestLedger(
            sequence=r.sequence,
            close_time=r.close_time,
            protocol_version=r.protocol_version,
            base_reserve=base_reserve_from_header(r.header_xdr),
        )

    async def ledger_entries(
        self, keys: Sequence[sx.LedgerKey], *, concurrency: int = 8
    ) -> tuple[int, dict[str, EntryResult]]:
        """The entries for ``keys`` (missing ones are absent), by base64 key, and the
        latest ledger; more than 200 keys are split into concurrent batches."""
        encoded = list(dict.fromkeys(k.to_xdr() for k in keys))
        if not encoded:
            return (await self.latest_ledger()).sequence, {}
        batches = [
            encoded[i : i + MAX_KEYS_PER_REQUEST] for i in range(0, len(encoded), MAX_KEYS_PER_REQUEST)
        ]
        gate = asyncio.Semaphore(concurrency)

        async def one(batch: list[str]) -> wire.GetLedgerEntriesResponse:
            xdr_keys = [sx.LedgerKey.from_xdr(k) for k in batch]
            async with gate:
                return await self._call("getLedgerEntries", lambda s: s.get_ledger_entries(xdr_keys))

        responses = await asyncio.gather(*(one(b) for b in batches))
        latest = max(r.latest_ledger for r in responses)
        entries: dict[str, EntryResult] = {}
        for response in responses:
            for e in response.entries or ():
                entries[e.key] = EntryResult(
                    key=e.key,
                    xdr=e.xdr,
                    last_modified_ledger=e.last_modified_ledger,
                    live_until_ledger=e.live_until_ledger,
                )
        return latest, entries

    async def fee_stats(self) -> FeeStats:
        r = await self._call("getFeeStats", lambda s: s.get_fee_stats())
        return FeeStats(
            soroban=FeeDistribution.from_rpc(r.soroban_inclusion_fee),
            classic=FeeDistribution.from_rpc(r.inclusion_fee),
            latest_ledger=r.latest_ledger,
        )

    async def simulate(self, envelope: TransactionEnvelope) -> wire.SimulateTransactionResponse:
        return await self._call("simulateTransaction", lambda s: s.simulate_transaction(envelope))

    async def send(self, envelope_xdr: str) -> wire.SendTransactionResponse:
        """One ``sendTransaction`` on the current RPC, not retried (see the module doc)."""
        return await self._call("sendTransaction", lambda s: s.send_transaction(envelope_xdr), retry=False)

    async def transaction(self, tx_hash: str) -> wire.GetTransactionResponse:
        return await self._call("getTransaction", lambda s: s.get_transaction(tx_hash))


_METHOD_NOT_FOUND = -32601
_ids = itertools.count(1)


def _next_id() -> int:
    return next(_ids)


class DevnetInfo(BaseModel):
    """The part of ``devnet_info`` the pool reads."""

    network_passphrase: str
    farm_contract_id: str
    kale_sac_id: str
    block_interval: int
    ledger_seconds: float


def _translate(method: str, url: str, exc: Exception, timeout: float) -> NetworkError | None:
    """The gateway error for an exception raised by the SDK client; None if not ours."""
    if isinstance(exc, TimeoutError):
        return RpcTimeout(f"{method}: no answer from {url} within {timeout:g} s", url=url)
    if isinstance(exc, sdk_errors.SorobanRpcErrorResponse):
        return RpcError(exc.code, exc.message or "", data=exc.data, url=url)
    if isinstance(exc, sdk_errors.BaseHorizonError):
        return NetworkError(f"{method}: HTTP {exc.status} from {url}", url=url)
    if isinstance(exc, sdk_errors.ConnectionError):
        return NetworkError(f"{method}: cannot reach {url}: {exc}", url=url)
    if isinstance(exc, sdk_errors.SdkError):
        return NetworkError(f"{method}: {url}: {exc}", url=url)
    if isinstance(exc, ValueError | AssertionError):
        # a body that is not JSON-RPC (JSONDecodeError, pydantic), or a null result
        return NetworkError(f"{method}: malformed answer from {url}: {exc!r}", url=url)
    if isinstance(exc, OSError):
        return NetworkError(f"{method}: {url}: {exc}", url=url)
    return None
