"""Sending works: each farmer's best from a free channel, recorded before it is sent.

:class:`WorkSubmitter` sends one ``work`` per farmer that has something better than what
is applied or in flight, each from a channel it borrows (one pending transaction per
account). Every envelope is journaled (``signed``) and committed to disk before it goes
out; its fate (``outcome``) is journaled when known. A transaction whose fate is unknown
is followed by hash (:meth:`WorkSubmitter.settle`), never signed again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict

import structlog
from stellar_sdk import Keypair

from kalepool.errors import KalePoolError
from kalepool.kale.errors import FarmError, FarmErrorCode
from kalepool.pooler.channels import ChannelPool
from kalepool.pooler.state import BestFound, BlockState, StateJournal, Submission
from kalepool.stellar import (
    FarmGateway,
    GatewayError,
    RaceLost,
    TxExpired,
    TxFailed,
    TxInDoubt,
    TxRejected,
    WorkOutcome,
    attempt_of,
)

__all__ = ["WorkSubmitter"]

log = structlog.get_logger("kalepool.pooler")

#: A work the farm answers GapCountTooLow (planted this very ledger) is tried this often.
GAP_RETRIES = 5
#: Other failures of one work are tried this often.
RETRIES = 3


class WorkSubmitter:
    """Sends a block's works over the channels and follows them.

    :param farm_index: the farm's index as last read (a work for an older block is late)
    :param ledger_seconds: the measured ledger time (pauses between retries)
    """

    def __init__(
        self,
        gateway: FarmGateway,
        channels: ChannelPool,
        journal: StateJournal,
        *,
        farm_index: Callable[[], int | None],
        ledger_seconds: Callable[[], float],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.gateway = gateway
        self.channels = channels
        self.journal = journal
        self.farm_index = farm_index
        self.ledger_seconds = ledger_seconds
        self.clock = clock

    async def submit_all(self, block: BlockState, closed: asyncio.Event, *, early: bool) -> int:
        """Submit each farmer's work that beats what is applied or in flight. An early
        work sends the *runner-up* (fewer zeros than the best): the final work then always
        has strictly more zeros, replaces it, and the farmer keeps the final, larger gap.
        Returns how many works were sent."""
        chosen = block.runner_up if early else block.best
        todo = [
            (farmer_id, best)
            for farmer_id, best in chosen.items()
            if farmer_id in block.planted and best.zeros > block.committed_zeros(farmer_id)
        ]
        if not todo:
            return 0
        log.info("pooler.submitting", block_index=block.block_index, works=len(todo), early=early)
        await asyncio.gather(*(self._submit(block, closed, f, best, early=early) for f, best in todo))
        return len(todo)

    async def _submit(
        self, block: BlockState, closed: asyncio.Event, farmer_id: str, best: BestFound, *, early: bool
    ) -> None:
        planted = block.planted[farmer_id]
        async with self.channels.lend() as channel:
            attempt = 0
            while True:
                attempt += 1
                if closed.is_set() or (self.farm_index() or 0) > block.block_index:
                    log.info("pooler.work_too_late", block_index=block.block_index, farmer_id=farmer_id)
                    return
                if best.zeros <= block.committed_zeros(farmer_id):
                    return  # something at least as good landed or is in flight

                signed_now: list[str] = []

                async def record(
                    tx_hash: str,
                    envelope_xdr: str,
                    *,
                    _channel: Keypair = channel,
                    _now: list[str] = signed_now,
                ) -> None:
                    for earlier in _now:  # refused (txBAD_SEQ) and replaced by this rebuilt envelope
                        self._outcome(block, earlier, "failed", error="bad_sequence")
                    _now.append(tx_hash)
                    submission = Submission(
                        tx_hash=tx_hash,
                        farmer_id=farmer_id,
                        farmer=planted.custodial_wallet,
                        nonce=best.nonce,
                        hash=best.hash,
                        zeros=best.zeros,
                        source=_channel.public_key,
                        envelope_xdr=envelope_xdr,
                        early=early,
                    )
                    self.journal.record("signed", b=block.block_index, sub=asdict(submission))
                    await self.journal.commit()

                try:
                    outcome = await self.gateway.work(
                        channel,
                        planted.custodial_wallet,
                        best.nonce,
                        bytes.fromhex(best.hash),
                        index=block.block_index,
                        on_signed=record,
                    )
                except RaceLost as exc:
                    self._mark(block, exc, "missed")
                    log.warning("pooler.work_missed", block_index=block.block_index, farmer_id=farmer_id)
                    closed.set()
                    return
                except FarmError as exc:
                    if exc.code == FarmErrorCode.GAP_COUNT_TOO_LOW and attempt < GAP_RETRIES:
                        self._mark(block, exc, "failed")
                        await asyncio.sleep(self.ledger_seconds())
                        continue
                    status = "missed" if exc.code == FarmErrorCode.PAIL_MISSING else "failed"
                    self._mark(block, exc, status)
                    log.warning(
                        "pooler.work_failed",
                        block_index=block.block_index,
                        farmer_id=farmer_id,
                        error=exc.name,
                    )
                    return
                except TxInDoubt as exc:
                    log.warning("pooler.work_in_doubt", block_index=block.block_index, tx_hash=exc.tx_hash)
                    return  # followed by hash later; never signed again meanwhile
                except TxExpired as exc:
                    self._mark(block, exc, "expired")
                except (TxFailed, TxRejected) as exc:
                    self._mark(block, exc, "failed")
                    log.warning("pooler.work_error", block_index=block.block_index, error=str(exc))
                    if attempt >= RETRIES:
                        return
                except (GatewayError, KalePoolError) as exc:
                    self._mark(block, exc, "failed")
                    log.warning("pooler.work_error", block_index=block.block_index, error=str(exc))
                    if attempt >= RETRIES:
                        return
                else:
                    self.applied(block, outcome)
                    return
                await asyncio.sleep(min(2.0, self.ledger_seconds()))

    def _outcome(self, block: BlockState, tx_hash: str, status: str, **fields: object) -> None:
        self.journal.record("outcome", b=block.block_index, tx=tx_hash, status=status, **fields)

    def _mark(self, block: BlockState, exc: BaseException, status: str) -> None:
        tx = attempt_of(exc)
        if tx is None or tx.tx_hash not in block.submissions:
            return
        error = exc.name if isinstance(exc, FarmError) else getattr(exc, "code", type(exc).__name__)
        self._outcome(block, tx.tx_hash, status, error=str(error), ledger=tx.ledger, fee=tx.fee_charged)

    def applied(self, block: BlockState, outcome: WorkOutcome) -> None:
        if outcome.tx_hash not in block.submissions:  # pragma: no cover - on_signed records first
            return
        self._outcome(
            block,
            outcome.tx_hash,
            "applied",
            gap=outcome.gap,
            ledger=outcome.ledger,
            fee=outcome.fee_charged,
            zeros=outcome.zeros,
        )
        sub = block.submissions[outcome.tx_hash]
        log.info(
            "pooler.work_applied",
            block_index=block.block_index,
            farmer_id=sub.farmer_id,
            zeros=sub.zeros,
            gap=sub.gap,
            ledger=sub.ledger,
            early=sub.early,
            tx_hash=sub.tx_hash,
        )

    async def settle(self, block: BlockState, *, patience: float) -> None:
        """Learn the fate of every work still ``signed`` (sent before a crash, or in
        doubt), following it by hash; give up after ``patience`` seconds."""
        deadline = self.clock() + patience
        while True:
            for sub in block.in_doubt():
                try:
                    outcome = await self.gateway.resume(sub.tx_hash, sub.envelope_xdr)
                except TxExpired:
                    self._outcome(block, sub.tx_hash, "expired")
                except RaceLost as exc:
                    self._outcome(block, sub.tx_hash, "missed", error=exc.code)
                except FarmError as exc:
                    self._outcome(block, sub.tx_hash, "failed", error=exc.name)
                except (TxFailed, TxRejected) as exc:
                    self._outcome(block, sub.tx_hash, "failed", error=exc.code)
                except GatewayError as exc:
                    log.info("pooler.settle_pending", tx_hash=sub.tx_hash, error=str(exc))
                    continue
                else:
                    if isinstance(outcome, WorkOutcome):
                        self.applied(block, outcome)
                    else:  # pragma: no cover - a work envelope resumes to a WorkOutcome
                        self._outcome(block, sub.tx_hash, "failed", error="not_a_work")
            if not block.in_doubt() or self.clock() >= deadline:
                return
            await asyncio.sleep(2.0)
