"""The pooler's pure core: one row per rule of ``decide`` and ``after_plant``.

Block 10 started at ledger time 1,000; the interval is 120 s with 2 s ledgers, so a plan
for a handful of farmers submits its final works near 1,100 and the block is ripe at
1,120. Local time (retries) and chain time are separate inputs.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import pytest

from kalepool.pooler.decide import (
    ActiveBlock,
    AskPlant,
    CloseBlock,
    Decision,
    Done,
    Finish,
    Harvest,
    Phase,
    PlanParams,
    Replant,
    Rush,
    Situation,
    StartWork,
    after_plant,
    decide,
    expected_farmers,
)
from kalepool.wire import Attribution, ErrorCode
from kalepool.wire import pooler as w

PLAN = PlanParams(
    interval=120, ledger_seconds=2.0, channels=4, margin_ledgers=3, margin_seconds=2.0, early_fraction=0.5
)
BASE = Situation(
    now=50.0,
    chain_now=1_010.0,
    farm_index=10,
    block_start=1_000,
    ripe=False,
    plan=PLAN,
    min_mine_seconds=10.0,
    expected_farmers=8,
)


def mining(**changes: Any) -> ActiveBlock:
    fields: dict[str, Any] = dict(
        block_index=10, final_at=1_100.0, submitted=False, salvage=False, rushed=False
    )
    fields.update(changes)
    return ActiveBlock(**fields)


def at(**changes: Any) -> Situation:
    return dataclasses.replace(BASE, **changes)


CASES: list[tuple[str, Situation, Decision]] = [
    # --- planting a new block
    ("a fresh block with time to mine is planted", at(), Decision((AskPlant(10),), Phase.PLANTING)),
    ("a block known already is not asked again", at(known=frozenset({10})), Decision((), Phase.WAITING)),
    (
        "too little of the block left to mine: wait for the next one",
        at(chain_now=1_100.0),
        Decision((), Phase.WAITING),
    ),
    (
        "a thousand farmers on four channels leave no time to mine this block",
        at(expected_farmers=1_000),
        Decision((), Phase.WAITING),
    ),
    (
        "the same thousand on 200 channels do",
        at(expected_farmers=1_000, plan=dataclasses.replace(PLAN, channels=200)),
        Decision((AskPlant(10),), Phase.PLANTING),
    ),
    (
        "a ripe block: plant the next one",
        at(ripe=True, chain_now=1_121.0),
        Decision((AskPlant(11),), Phase.PLANTING),
    ),
    (
        "a ripe block whose successor is known: nothing",
        at(ripe=True, chain_now=1_121.0, known=frozenset({11})),
        Decision((), Phase.WAITING),
    ),
    (
        "an unanswered request (a restart) is asked again",
        at(plant_requested=10, known=frozenset({10})),
        Decision((AskPlant(10),), Phase.PLANTING),
    ),
    (
        "a stale unanswered request is not",
        at(plant_requested=9, known=frozenset({10})),
        Decision((), Phase.WAITING),
    ),
    ("a plant waits for its retry time", at(plant_retry_at=60.0), Decision((), Phase.WAITING)),
    ("one plant-request at a time", at(plant_in_flight=True), Decision(())),
    ("nothing new while stopping", at(stopping=True), Decision(())),
    (
        "the block without a start (no plant yet): nothing",
        at(block_start=None),
        Decision((), Phase.WAITING),
    ),
    # --- the block being worked
    (
        "our works for the current block come first: no plant for the next, even when ripe",
        at(active=mining(), unreported=(10,), ripe=True, chain_now=1_121.0),
        Decision((Rush(10),), Phase.MINING),
    ),
    (
        "mining goes on before the final time",
        at(active=mining(), unreported=(10,)),
        Decision((), Phase.MINING),
    ),
    (
        "the final time has come: rush",
        at(active=mining(), unreported=(10,), chain_now=1_100.5),
        Decision((Rush(10),), Phase.MINING),
    ),
    (
        "a rushed block is not rushed twice",
        at(active=mining(rushed=True), unreported=(10,), chain_now=1_101.0),
        Decision((), Phase.MINING),
    ),
    (
        "a salvage (late plant) runs its own short course",
        at(active=mining(salvage=True), unreported=(10,), chain_now=1_101.0),
        Decision((), Phase.MINING),
    ),
    (
        "the farm moved on: close it; its report keeps the next block's plant waiting not",
        at(
            active=mining(submitted=True),
            unreported=(10,),
            farm_index=11,
            block_start=1_122,
            chain_now=1_125.0,
        ),
        Decision((CloseBlock(10), AskPlant(11)), Phase.PLANTING),
    ),
    (
        "the farm moved on before our works went out: close it, it reports itself",
        at(active=mining(), unreported=(10,), farm_index=11, block_start=1_122, chain_now=1_125.0),
        Decision((CloseBlock(10), AskPlant(11)), Phase.PLANTING),
    ),
    (
        "after the final works, the next block may be planted once ripe",
        at(active=mining(submitted=True), unreported=(10,), ripe=True, chain_now=1_121.0),
        Decision((AskPlant(11),), Phase.PLANTING),
    ),
    # --- replanting farmers whose plant failed for the chain's reason
    (
        "failed farmers are asked for again while they can still be mined",
        at(active=mining(), unreported=(10,), replant=Replant(10, 3, retry_at=40.0)),
        Decision((AskPlant(10, retry=True),), Phase.PLANTING),
    ),
    (
        "not before the retry time",
        at(active=mining(), unreported=(10,), replant=Replant(10, 3, retry_at=60.0)),
        Decision((), Phase.MINING),
    ),
    (
        "not when too little is left to mine them",
        at(active=mining(), unreported=(10,), chain_now=1_095.0, replant=Replant(10, 3, retry_at=40.0)),
        Decision((), Phase.MINING),
    ),
    (
        "never once ripe (the plant would roll the block over)",
        at(
            active=mining(final_at=1_200.0),
            unreported=(10,),
            ripe=True,
            chain_now=1_121.0,
            replant=Replant(10, 3, 40.0),
        ),
        Decision((Rush(10),), Phase.MINING),
    ),
    # --- blocks owed a report (a restart)
    (
        "the current block is resumed",
        at(unreported=(10,), known=frozenset({10})),
        Decision((StartWork(10),), None),
    ),
    (
        "a block worked by this run is not worked again",
        at(unreported=(10,), known=frozenset({10}), finished=frozenset({10})),
        Decision((Finish(10),), Phase.WAITING),
    ),
    (
        "an older block is reported as it is, and the current one planted",
        at(unreported=(9,), known=frozenset({9})),
        Decision((Finish(9), AskPlant(10)), Phase.PLANTING),
    ),
    (
        "a report running aside is left alone",
        at(unreported=(9,), known=frozenset({9}), finishing=frozenset({9})),
        Decision((AskPlant(10),), Phase.PLANTING),
    ),
    (
        "a block planted ahead of the farm as we read it is worked",
        at(unreported=(11,), known=frozenset({11}), ripe=True, chain_now=1_121.0),
        Decision((StartWork(11),), None),
    ),
    (
        "while stopping, the current block is reported, not worked",
        at(unreported=(10,), stopping=True),
        Decision((Finish(10),)),
    ),
    # --- harvests
    (
        "harvests of blocks the farm moved past",
        at(harvests_pending=(8, 9, 10), known=frozenset({10})),
        Decision((Harvest((8, 9)),), Phase.WAITING),
    ),
    (
        "one harvest-request at a time",
        at(harvests_pending=(9,), harvest_in_flight=True, known=frozenset({10})),
        Decision((), Phase.WAITING),
    ),
    (
        "a failed harvest-request waits for its retry time",
        at(harvests_pending=(9,), harvest_retry_at=60.0, known=frozenset({10})),
        Decision((), Phase.WAITING),
    ),
    (
        "harvests wait while a plant-request runs (the new block's plants come first)",
        at(harvests_pending=(9,), plant_in_flight=True, known=frozenset({10})),
        Decision(()),
    ),
    # --- max_blocks
    (
        "enough blocks counting the one being worked: no plant for one more, even when ripe",
        at(
            max_blocks=2,
            blocks_worked=1,
            active=mining(submitted=True),
            unreported=(10,),
            ripe=True,
            chain_now=1_121.0,
        ),
        Decision(()),
    ),
    (
        "one block left to start: it is planted",
        at(max_blocks=2, blocks_worked=1),
        Decision((AskPlant(10),), Phase.PLANTING),
    ),
    # --- max_blocks
    (
        "enough blocks and nothing owed: done",
        at(max_blocks=2, blocks_worked=2),
        Decision((Done(),), Phase.DRAINING),
    ),
    (
        "enough blocks: harvests first",
        at(max_blocks=2, blocks_worked=2, harvests_pending=(9,)),
        Decision((Harvest((9,)),), Phase.DRAINING),
    ),
    (
        "enough blocks: a harvest the farm has not moved past waits for the rollover",
        at(max_blocks=2, blocks_worked=2, harvests_pending=(10,), draining_since=0.0, drain_timeout=120.0),
        Decision((), Phase.DRAINING),
    ),
    (
        "enough blocks: the wait for the rollover is bounded",
        at(max_blocks=2, blocks_worked=2, harvests_pending=(10,), draining_since=0.0, drain_timeout=30.0),
        Decision((Done(harvests_left=1),), Phase.DRAINING),
    ),
    (
        "enough blocks: a report still owed comes first",
        at(max_blocks=1, blocks_worked=1, unreported=(9,)),
        Decision((Finish(9),), Phase.DRAINING),
    ),
]


@pytest.mark.parametrize(("situation", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(situation: Situation, expected: Decision) -> None:
    assert decide(situation) == expected


# ---------------------------------------------------------------- plant answers

F = [uuid.UUID(int=i + 1) for i in range(4)]


def planted(farmer: uuid.UUID, index: int = 10) -> w.PlantedFarmer:
    return w.PlantedFarmer(
        farmer_id=farmer,
        custodial_wallet="G" * 56,
        stake_amount=1,
        plant_tx_hash="ab" * 32,
        block_index=index,
        entropy="cd" * 32,
        already_planted=False,
    )


def failed(farmer: uuid.UUID, error: ErrorCode, blame: Attribution) -> w.FailedPlant:
    return w.FailedPlant(farmer_id=farmer, error=error, message="m", attributed_to=blame)


def answer(planted_: list[w.PlantedFarmer], failed_: list[w.FailedPlant]) -> w.PlantResponse:
    summary = w.PlantSummary(
        requested_block_index=10,
        farm_index=10,
        eligible=4,
        planted=len(planted_),
        already_planted=0,
        failed=len(failed_),
        skipped_capacity=0,
        total_staked=0,
        xlm_fees=0,
        duration_ms=1,
    )
    return w.PlantResponse(planted_farmers=planted_, failed_plants=failed_, summary=summary)


def follow(a: w.PlantResponse, attempts: int = 1, **kw: Any) -> Any:
    options: dict[str, Any] = dict(
        asked=10, attempts=attempts, max_attempts=3, poll_interval=5.0, interval=120
    )
    options.update(kw)
    return after_plant(a, **options)


def test_everyone_planted() -> None:
    f = follow(answer([planted(x) for x in F], []))
    assert (sorted(f.mine), f.retry_in, f.give_up) == ([10], None, False)


def test_some_failed_for_the_chain_are_asked_for_again() -> None:
    a = answer(
        [planted(F[0]), planted(F[1])],
        [
            failed(F[2], ErrorCode.RPC_TIMEOUT, Attribution.CHAIN),
            failed(F[3], ErrorCode.NO_TRUSTLINE, Attribution.FARMER),
        ],
    )
    f = follow(a)
    assert len(f.mine[10]) == 2 and f.retry_in == 10.0 and f.replant == 1  # the farmer's own: never


def test_some_failed_for_the_farmer_only_are_not() -> None:
    a = answer([planted(F[0])], [failed(F[1], ErrorCode.INSUFFICIENT_XLM, Attribution.FARMER)])
    assert follow(a).retry_in is None


def test_replants_are_bounded() -> None:
    a = answer([planted(F[0])], [failed(F[1], ErrorCode.BAD_SEQUENCE, Attribution.CHAIN)])
    assert follow(a, attempts=3).retry_in is None


def test_nobody_planted_for_a_transient_reason_is_retried_then_given_up() -> None:
    a = answer([], [failed(x, ErrorCode.PLANT_IN_PROGRESS, Attribution.BACKEND) for x in F])
    assert follow(a).retry_in == 10.0 and not follow(a).give_up
    assert follow(a, attempts=3).give_up


def test_nobody_planted_for_the_farmers_reasons_is_given_up_at_once() -> None:
    a = answer([], [failed(x, ErrorCode.NO_TRUSTLINE, Attribution.FARMER) for x in F])
    assert follow(a).give_up


def test_a_future_block_backs_off_and_never_gives_up() -> None:
    a = answer([], [failed(x, ErrorCode.FUTURE_BLOCK, Attribution.POOLER) for x in F])
    delays = [follow(a, attempts=9, early_asks=n).retry_in for n in range(6)]
    assert delays == [10.0, 20.0, 30.0, 30.0, 30.0, 30.0]  # doubling, at most a quarter block


def test_a_plant_that_landed_in_a_later_block_is_mined_there_and_not_replanted() -> None:
    a = answer([planted(F[0], index=11)], [failed(F[1], ErrorCode.RPC_TIMEOUT, Attribution.CHAIN)])
    f = follow(a)
    assert sorted(f.mine) == [11] and f.retry_in is None


def test_max_farmers_caps_what_is_mined() -> None:
    f = follow(answer([planted(x) for x in F], []), max_farmers=2)
    assert len(f.mine[10]) == 2


@pytest.mark.parametrize(
    ("plantable", "last", "cap", "expected"),
    [
        (500, [3], None, 500),
        (None, [3, 7], None, 7),
        (0, [], None, 1),
        (None, [], 20, 20),
        (500, [], 100, 100),
    ],
)
def test_expected_farmers(plantable: int | None, last: list[int], cap: int | None, expected: int) -> None:
    assert expected_farmers(plantable=plantable, last_planted=last, max_farmers=cap) == expected
