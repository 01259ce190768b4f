"""What the chain-facing services share: their dependencies, claims, failure records."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from kalepool.backend.chain import Chain, ChainError
from kalepool.backend.custody import CustodyError, Signer
from kalepool.backend.db import pails as q
from kalepool.backend.db.session import Database
from kalepool.backend.enums import Attribution
from kalepool.backend.logs import get_logger, redact
from kalepool.backend.metrics import Metrics
from kalepool.settings import BackendSettings

__all__ = ["ChainOps", "Failure", "bounded", "claimant_id", "failure_of", "holding_claims"]

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ChainOps:
    """The dependencies of a chain-facing use case (one per process, shared by requests)."""

    db: Database
    chain: Chain
    signer: Signer
    settings: BackendSettings
    metrics: Metrics = field(default_factory=Metrics)

    def __post_init__(self) -> None:
        # every process signing for custodial accounts takes the same per-account lock
        share = getattr(self.chain, "use_account_lock", None)
        if share is not None:
            share(self.db.account_locks.hold)


def claimant_id(kind: str) -> str:
    """A unique name for one request or worker run: ``kind@host:pid:random``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def holding_claims(db: Database, claimant: str, seconds: float) -> AsyncIterator[None]:
    """Renew ``claimant``'s claims every ``seconds / 3`` while the block runs.

    Claims are leases: a process that dies stops renewing, and its pails can be taken
    again ``seconds`` later instead of staying reserved for as long as the slowest
    request might take. A failed renewal is logged and tried again next time.
    """

    async def renew() -> None:
        while True:
            await asyncio.sleep(seconds / 3)
            try:
                async with db.transaction() as session:
                    await q.renew_claims(session, claimant, seconds)
            except Exception as exc:  # the database away for a moment: the next try may do
                log.warning("claims not renewed", claimant=claimant, error=type(exc).__name__)

    task = asyncio.create_task(renew(), name=f"renew {claimant}")
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this task is being cancelled too: do not swallow that


@dataclass(frozen=True)
class Failure:
    """Why one farmer's action failed, and who is to blame."""

    code: str
    message: str
    attributed_to: Attribution
    tx_hash: str | None = None
    fee_charged: int = 0


def failure_of(exc: BaseException) -> Failure:
    """The :class:`Failure` for an exception met while acting for one farmer."""
    if isinstance(exc, ChainError):
        # an RPC URL in the message (and any key in its path or query) is not the pooler's
        return Failure(exc.code, redact(exc.message), exc.attributed_to, exc.tx_hash, exc.fee_charged or 0)
    if isinstance(exc, CustodyError):
        return Failure("custody_error", "the custodial key could not be opened", Attribution.BACKEND)
    log.exception("unexpected error in a chain action", exc_info=exc)
    return Failure("internal_error", f"internal error ({type(exc).__name__})", Attribution.BACKEND)


async def bounded(limit: int, items: Iterable[T], action: Callable[[T], Awaitable[R]]) -> list[R]:
    """``action`` over every item, at most ``limit`` at a time, results in item order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with semaphore:
            return await action(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def wait_released(
    db: Database, pail_ids: list[int], *, timeout: float, busy: Callable[[str], bool]
) -> None:
    """Poll until none of these pails is held in a ``busy`` state by a live claim."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = list(pail_ids)
    while pending and loop.time() < deadline:
        await asyncio.sleep(0.2)
        async with db.transaction() as session:
            now = await q.db_now(session)
            rows = await q.pails_by_ids(session, pending)
        pending = [
            p.id for p in rows if busy(p.state) and p.claimed_until is not None and p.claimed_until > now
        ]
