"""What the pooler tells the backend after a block: ``work-complete``, then ``harvest-request``.

:class:`Reports` sends a block's applied works (the outcomes read from the transactions)
and journals the answer (the block's details are forgotten, its worked farmers kept for
the harvest); later, once the farm has moved past the block, it asks for their harvests
and journals what is left to ask. Rewards and compensation are totalled for the status.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from kalepool.pooler.client import BackendCallError, BackendClient, BackendRejected, BackendUnavailable
from kalepool.pooler.state import BlockState, HarvestPending, StateJournal
from kalepool.settings import PoolerSettings
from kalepool.wire import pooler as w

__all__ = ["Reports"]

log = structlog.get_logger("kalepool.pooler")


class Reports:
    """The pooler's reports to the backend, and their effect on its journal."""

    def __init__(
        self,
        client: BackendClient,
        journal: StateJournal,
        settings: PoolerSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.journal = journal
        self.settings = settings
        self.clock = clock
        self.rewards = 0
        self.compensation = 0
        self.harvest_retry_at = 0.0

    async def report(self, block: BlockState) -> dict[str, Any] | None:
        """``work-complete`` for ``block``; its answer (or the refusal), journaled. None:
        the backend could not be reached (the block stays unreported, asked again later)."""
        results = [
            w.WorkResult(
                farmer_id=uuid.UUID(farmer_id),
                nonce=sub.nonce,
                hash=sub.hash,
                zeros=sub.zeros,
                gap=sub.gap,
                tx_hash=sub.tx_hash,
            )
            for farmer_id in block.planted
            if (sub := block.applied(farmer_id)) is not None and sub.gap is not None
        ]
        report: dict[str, Any]
        try:
            answer = await self.client.work_complete(block.block_index, results)
        except BackendUnavailable as exc:
            log.warning("pooler.report_failed", block_index=block.block_index, error=str(exc))
            return None
        except BackendRejected as exc:
            log.error(
                "pooler.report_rejected", block_index=block.block_index, status=exc.status, error=str(exc)
            )
            report = {"error": exc.error_code, "status": exc.status}
        else:
            report = {
                "work_recorded": answer.work_recorded,
                "rejected": len(answer.rejected),
                "compensation": answer.compensation_amount,
            }
            self.compensation += answer.compensation_amount
            for rejected in answer.rejected:
                log.warning(
                    "pooler.work_rejected",
                    block_index=block.block_index,
                    farmer_id=str(rejected.farmer_id),
                    reason=str(rejected.reason),
                )
        worked = block.worked_farmers()
        zeros = [s.zeros for f in worked if (s := block.applied(f)) is not None]
        self.journal.record("reported", b=block.block_index, report=report, harvest=worked)
        self.journal.maybe_compact(force=True)
        log.info(
            "pooler.reported",
            block_index=block.block_index,
            planted=len(block.planted),
            worked=len(worked),
            zeros_min=min(zeros, default=None),
            zeros_max=max(zeros, default=None),
            compensation=report.get("compensation"),
            blocks_worked=self.journal.state.blocks_worked,
        )
        return report

    async def harvest(self, ready: dict[int, HarvestPending]) -> w.HarvestResponse | None:
        """``harvest-request`` for the worked pails of these reported blocks; what is left
        is asked again later (``harvest_attempts`` times, then left to the backend)."""
        blocks = {i: h.farmer_ids for i, h in ready.items()}
        log.info("pooler.harvest_request", blocks=sorted(blocks))
        try:
            answer = await self.client.harvest_request(blocks)
        except BackendCallError as exc:
            log.warning("pooler.harvest_request_failed", error=str(exc))
            self._attempted(ready, set())
            self.harvest_retry_at = self.clock() + 3 * self.settings.poll_interval
            return None
        done = {(str(h.farmer_id), h.block_index) for h in answer.harvest_results}
        self.rewards += answer.total_rewards
        for failed in answer.failed_harvests:
            log.info(
                "pooler.harvest_failed",
                farmer_id=str(failed.farmer_id),
                block_index=failed.block_index,
                error=str(failed.error),
            )
        self._attempted(ready, done)
        if answer.failed_harvests:
            self.harvest_retry_at = self.clock() + 3 * self.settings.poll_interval
        log.info(
            "pooler.harvested",
            blocks=sorted({h.block_index for h in answer.harvest_results} or blocks),
            harvested=len(answer.harvest_results),
            failed=len(answer.failed_harvests),
            total_rewards=answer.total_rewards,
        )
        return answer

    def _attempted(self, ready: dict[int, HarvestPending], done: set[tuple[str, int]]) -> None:
        for index in ready:
            current = self.journal.state.harvests.get(index)
            if current is None:
                continue
            left = [f for f in current.farmer_ids if (f, index) not in done]
            attempts = current.attempts + 1
            if not left or attempts >= self.settings.harvest_attempts:
                if left:
                    log.warning("pooler.harvest_left_to_backend", block_index=index, farmers=len(left))
                self.journal.record("harvest", b=index, left=None)
            else:
                self.journal.record("harvest", b=index, left=left, attempts=attempts)
