"""Plant-requests: asking the backend to plant the pooler's farmers in a block.

:class:`PlantRequests` sends one ``plant-request``, journals that it is in flight (a
restart asks again: the backend answers idempotently), and turns the answer into the
farmers to mine, by the block their plant landed in, with
:func:`kalepool.pooler.decide.after_plant`: a retry of the whole request later (the
backend was away, nobody planted for a transient reason, a ``future_block``), a replant of
the farmers that failed for the chain's or the backend's reason (:attr:`replant`, which
:func:`~kalepool.pooler.decide.decide` schedules while the block can still be worked), or
giving the block up.

A block that is not open yet (the next one, asked once the farm is ripe) and that nobody
could be planted in is not given up: no plant opened it, so it stays the next block, and
is asked for again after :data:`UNOPENED_RETRY` of an interval. Forgetting it would leave
a lone pooler, whose farmers were not ready at that moment, waiting for a block only its
own plant-request can open.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import structlog

from kalepool.pooler.client import BackendClient, BackendRejected, BackendUnavailable
from kalepool.pooler.decide import Replant, after_plant
from kalepool.pooler.state import StateJournal
from kalepool.settings import PoolerSettings
from kalepool.wire import ErrorCode
from kalepool.wire import pooler as w

__all__ = ["PLANT_ATTEMPTS", "REPLANT_ATTEMPTS", "UNOPENED_RETRY", "PlantRequests"]

log = structlog.get_logger("kalepool.pooler")

#: Plant-requests for one block that planted nobody for a retryable reason.
PLANT_ATTEMPTS = 3
#: Plant-requests for one block in all (first ask and replants of failed farmers).
REPLANT_ATTEMPTS = 8
#: A block nobody opened is asked for again after this fraction of the block interval.
UNOPENED_RETRY = 0.1


class PlantRequests:
    """The pooler's plant-requests and what their answers leave to do."""

    def __init__(
        self,
        client: BackendClient,
        journal: StateJournal,
        settings: PoolerSettings,
        *,
        interval: int,
        farm_index: Callable[[], int | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.journal = journal
        self.settings = settings
        self.interval = interval
        self.farm_index = farm_index  # the farm's current block, as last read
        self.clock = clock
        self.attempts: dict[int, int] = {}
        self.retry_at = 0.0  # local clock: the next request of a new block
        self.early_asks = 0  # future_block answers in a row
        self.replant: Replant | None = None  # failed farmers of a block being worked

    async def ask(self, target: int, *, retry: bool = False) -> dict[int, list[w.PlantedFarmer]]:
        """One plant-request for block ``target`` (``retry``: for its failed farmers);
        returns the farmers planted, by the block their plant landed in."""
        self.journal.record("ask", b=target)
        attempts = self.attempts[target] = self.attempts.get(target, 0) + 1
        log.info("pooler.plant_request", block_index=target, retry=retry, attempt=attempts)
        try:
            answer = await self.client.plant_request(target, max_farmers=self.settings.max_farmers)
        except BackendUnavailable as exc:
            log.warning("pooler.plant_request_failed", block_index=target, error=str(exc))
            self._again(retry, self.settings.poll_interval)
            return {}
        except BackendRejected as exc:
            log.warning(
                "pooler.plant_request_rejected", block_index=target, status=exc.status, error=str(exc)
            )
            self.journal.record("ask", b=None)
            if exc.status in (409, 425) and attempts < PLANT_ATTEMPTS:
                self._again(retry, 2 * self.settings.poll_interval)
            elif not retry:
                self._give_up(target)
            else:
                self.replant = None
            return {}
        self.journal.record("ask", b=None)
        return self._answered(target, answer, attempts=attempts, retry=retry)

    def _answered(
        self, target: int, answer: w.PlantResponse, *, attempts: int, retry: bool
    ) -> dict[int, list[w.PlantedFarmer]]:
        for failed in answer.failed_plants:
            log.info(
                "pooler.plant_failed",
                farmer_id=str(failed.farmer_id),
                error=str(failed.error),
                attributed_to=str(failed.attributed_to),
                retryable=failed.retryable,
            )
        follow = after_plant(
            answer,
            asked=target,
            attempts=attempts,
            max_attempts=REPLANT_ATTEMPTS if answer.planted_farmers else PLANT_ATTEMPTS,
            poll_interval=self.settings.poll_interval,
            interval=self.interval,
            early_asks=self.early_asks,
            max_farmers=self.settings.max_farmers,
        )
        if not follow.mine:
            log.info(
                "pooler.nothing_planted",
                block_index=target,
                failed=len(answer.failed_plants),
                errors=follow.errors,
            )
            self.early_asks = self.early_asks + 1 if ErrorCode.FUTURE_BLOCK in follow.errors else 0
            if follow.retry_in is not None:
                self._again(retry, follow.retry_in)
            elif retry:
                self.replant = None
            else:
                self._give_up(target)
            return {}
        self.early_asks = 0
        if follow.retry_in is not None:
            self.replant = Replant(target, follow.replant, self.clock() + follow.retry_in)
        else:
            self.replant = None
        if target not in follow.mine:
            self._give_up(target)  # the plant landed in a later block than asked
        return follow.mine

    def _again(self, retry: bool, delay: float) -> None:
        if retry and self.replant is not None:
            self.replant = dataclasses.replace(self.replant, retry_at=self.clock() + delay)
        else:
            self.retry_at = self.clock() + delay

    def _give_up(self, target: int) -> None:
        block = self.journal.state.blocks.get(target)
        if block is not None and block.planted:
            return
        current = self.farm_index()
        if current is not None and target > current:
            # nobody planted, so the block did not open: it is still the next one
            delay = max(self.settings.poll_interval, UNOPENED_RETRY * self.interval)
            log.info("pooler.block_not_opened", block_index=target, retry_in=round(delay, 1))
            self.attempts.pop(target, None)
            self.retry_at = self.clock() + delay
            return
        self.journal.record("completed", b=target)  # nobody to mine for in this block
