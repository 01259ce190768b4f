"""One lock per Stellar account, shared by every process on one database.

A custodial account signs plants, harvests, payouts and trustlines, from the API process
and from ``kalepool backend workers`` (and from every backend on the same database). A
sequence number one process cached is stale once another has used the account, so each
transaction of an account is built, sent and followed under a PostgreSQL session-level
advisory lock on that account (``pg_try_advisory_lock(namespace, key)``), held by one
dedicated connection per process. The gateway takes it after its in-process lock and
reads the sequence anew under it (:mod:`kalepool.stellar.sequences`).

A process that dies loses its connection and PostgreSQL releases its locks; the next
holder may then meet a ``txBAD_SEQ``, which the gateway answers with one rebuilt
transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import structlog

from kalepool.backend.chain import ChainError
from kalepool.backend.enums import Attribution

__all__ = ["NAMESPACE", "AccountLocks", "lock_key"]

log = structlog.get_logger(__name__)

#: The first key of every account lock (``hashtext('kalepool.account')`` would do as well;
#: a constant keeps it independent of the server's hash function).
NAMESPACE = 0x4B414C45  # "KALE"


def lock_key(account: str) -> int:
    """The second key of ``account``'s lock: 32 bits of its SHA-256, signed (int4)."""
    return int.from_bytes(hashlib.sha256(account.encode()).digest()[:4], "big", signed=True)


class AccountLocks:
    """Advisory locks per account over one lazily opened autocommit connection.

    :param url: the database (SQLAlchemy or libpq form)
    :param wait: seconds to wait for a lock another process holds before an
        ``account_busy`` :class:`~kalepool.backend.chain.ChainError` (a transaction in
        flight there ends within the gateway's own wait)
    """

    def __init__(self, url: str, *, wait: float = 180.0, poll: float = 0.02, max_poll: float = 0.5) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.wait = wait
        self.poll = poll
        self.max_poll = max_poll
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._connecting = asyncio.Lock()

    async def _connection(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        async with self._connecting:
            if self._conn is None or self._conn.closed:
                self._conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
            return self._conn

    async def _try(self, key: int) -> bool:
        conn = await self._connection()
        try:
            cursor = await conn.execute("select pg_try_advisory_lock(%s, %s)", (NAMESPACE, key))
            row = await cursor.fetchone()
        except psycopg.OperationalError:
            await conn.close()  # every lock it held is gone with it; reconnect next time
            raise
        return bool(row and row[0])

    async def _release(self, key: int) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            return  # the connection died: the server released the lock already
        try:
            await conn.execute("select pg_advisory_unlock(%s, %s)", (NAMESPACE, key))
        except psycopg.Error as exc:
            log.warning("account lock: release failed", error=type(exc).__name__)
            await conn.close()

    @asynccontextmanager
    async def hold(self, account: str) -> AsyncIterator[None]:
        """Hold ``account``'s lock for the block (waiting while another process has it)."""
        key = lock_key(account)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        delay = self.poll
        while True:
            try:
                if await self._try(key):
                    break
            except psycopg.OperationalError as exc:
                if loop.time() >= deadline:
                    raise _busy(f"{account}: the account lock database is unreachable") from exc
            if loop.time() >= deadline:
                raise _busy(f"{account}: another process held its lock for {self.wait:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.max_poll)
        try:
            yield
        finally:
            await self._release(key)

    async def aclose(self) -> None:
        if self._conn is not None and not self._conn.closed:
            await self._conn.close()
        self._conn = None


def _busy(message: str) -> ChainError:
    return ChainError(message, code="account_busy", attributed_to=Attribution.BACKEND)
