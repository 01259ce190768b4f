"""Sequence numbers per source account: one lock, one cached number, one doubt.

Many accounts may have transactions in flight at once; one account has at most one:
:meth:`SequenceManager.account` holds that account's lock for the whole
build → sign → send → poll of a transaction, so concurrent actions of one account run
one after the other, each with the next sequence number.

The cache is trusted only while the gateway saw every transaction of the account to
its end. The pipeline settles the slot with one of:

- :meth:`AccountSlot.applied`: the transaction is in a ledger (success or failure), its
  sequence is consumed;
- :meth:`AccountSlot.unused`: it definitely never entered a ledger (rejected, expired);
- :meth:`AccountSlot.stale`: something disagrees (txBAD_SEQ): re-read it from chain;
- :meth:`AccountSlot.in_doubt`: it may have been sent and its fate is unknown. The next
  action of the account first resolves that transaction (by hash) and signs nothing new
  until it has: a replacement signed with a fresh sequence could land as well.

A slot left unsettled (an exception escaped) drops the cached number.

Other processes may sign for the same accounts (a backend's API and its workers, two
backends on one database). Give the manager an ``external`` lock (e.g. a PostgreSQL
advisory lock per account, :mod:`kalepool.backend.db.account_locks`): it is held, after
the in-process lock, for the same build → poll span, and since another holder may have
used the account meanwhile, the cached number is not trusted across two holds of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Generic, TypeVar

__all__ = ["AccountLock", "AccountSlot", "SequenceManager"]

P = TypeVar("P")

#: ``lock(account)``: an async context manager held while ``account`` signs and sends.
AccountLock = Callable[[str], AbstractAsyncContextManager[object]]


class SequenceManager(Generic[P]):
    """Per-account locks and cached sequence numbers.

    :param load: reads an account's current sequence number from chain (raises
        :class:`~kalepool.stellar.errors.AccountNotFound` when there is no account).
    """

    def __init__(self, load: Callable[[str], Awaitable[int]], *, external: AccountLock | None = None) -> None:
        self._load = load
        self.external = external
        self._locks: dict[str, asyncio.Lock] = {}
        self._cached: dict[str, int] = {}
        self._doubt: dict[str, P] = {}

    def cached(self, account: str) -> int | None:
        return self._cached.get(account)

    def doubt(self, account: str) -> P | None:
        """The transaction of ``account`` whose fate is unknown, if any."""
        return self._doubt.get(account)

    def forget(self, account: str) -> None:
        """Drop the cached sequence (it is read from chain next time)."""
        self._cached.pop(account, None)

    def locked(self, account: str) -> bool:
        lock = self._locks.get(account)
        return lock is not None and lock.locked()

    @asynccontextmanager
    async def account(self, account: str) -> AsyncIterator[AccountSlot[P]]:
        """Hold ``account``'s lock; yields the slot to read and settle its sequence."""
        lock = self._locks.get(account)
        if lock is None:
            lock = self._locks[account] = asyncio.Lock()
        async with lock:
            if self.external is None:
                async with self._slot(account) as slot:
                    yield slot
                return
            async with self.external(account):
                self.forget(account)  # another process may have used it since our last hold
                async with self._slot(account) as slot:
                    yield slot

    @asynccontextmanager
    async def _slot(self, account: str) -> AsyncIterator[AccountSlot[P]]:
        slot = AccountSlot(self, account)
        try:
            yield slot
        finally:
            slot._close()


class AccountSlot(Generic[P]):
    """One locked use of an account's sequence number (see the module doc)."""

    def __init__(self, manager: SequenceManager[P], account: str) -> None:
        self._m = manager
        self.account = account
        self._current: int | None = None
        self._settled = False

    @property
    def doubt(self) -> P | None:
        return self._m._doubt.get(self.account)

    def resolved(self) -> None:
        """The doubtful transaction's fate is known now (and settled separately)."""
        self._m._doubt.pop(self.account, None)

    async def current(self) -> int:
        """The account's current sequence number; the next transaction uses ``current + 1``."""
        if self._current is None:
            cached = self._m._cached.get(self.account)
            self._current = cached if cached is not None else await self._m._load(self.account)
        self._settled = False
        return self._current

    def applied(self, sequence: int) -> None:
        """The transaction with ``sequence`` entered a ledger."""
        self._m._cached[self.account] = sequence
        self._current = sequence
        self._settled = True

    def unused(self) -> None:
        """The transaction never entered a ledger; the cached number stays right."""
        if self._current is not None:
            self._m._cached[self.account] = self._current
        self._settled = True

    def stale(self) -> None:
        self._m.forget(self.account)
        self._current = None
        self._settled = True

    def in_doubt(self, pending: P) -> None:
        self._m._doubt[self.account] = pending
        self.stale()

    def _close(self) -> None:
        if not self._settled:
            self._m.forget(self.account)
