"""Work timing: final works before the rollover with a margin, early works in the window."""

from __future__ import annotations

import pytest

from kalepool.pooler.timing import plan_work, submission_rounds


def test_submission_rounds() -> None:
    assert submission_rounds(0, 4) == 0
    assert submission_rounds(8, 4) == 2
    assert submission_rounds(9, 4) == 3
    assert submission_rounds(3, 1) == 3


def test_mainnet_like_plan() -> None:
    plan = plan_work(
        block_start=1_000, interval=300, mine_from=1_006, ledger_seconds=5.5,
        farmers=8, channels=4, margin_ledgers=3, margin_seconds=2.0, early_fraction=0.5,
    )
    # reserve = (2 rounds + 3 margin) x 5.5 + 2 = 29.5 s before 1300
    assert plan.deadline == 1_300
    assert plan.final_at == pytest.approx(1_270.5)
    assert plan.early_at == pytest.approx(1_006 + 0.5 * (1_270.5 - 1_006))
    assert plan.mining_seconds == pytest.approx(264.5)
    assert plan.phase(1_100) == "mining"
    assert plan.phase(1_280) == "final"
    assert plan.phase(1_300) == "closed"


def test_devnet_plan_keeps_the_whole_submission_before_the_rollover() -> None:
    plan = plan_work(
        block_start=100, interval=30, mine_from=102, ledger_seconds=1.0,
        farmers=8, channels=4, margin_ledgers=3, margin_seconds=2.0, early_fraction=None,
    )
    assert plan.final_at == pytest.approx(100 + 30 - 7)
    assert plan.early_at is None
    # submissions need 2 ledgers, then 3 spare ledgers and 2 s remain before 130
    assert plan.final_at + 2 * 1.0 < plan.deadline


def test_late_plant_submits_at_once_and_drops_the_early_work() -> None:
    plan = plan_work(
        block_start=100, interval=30, mine_from=127, ledger_seconds=1.0, farmers=2, channels=2,
    )
    assert plan.final_at == 127 and plan.mining_seconds == 0 and plan.early_at is None


def test_early_work_needs_room_on_both_sides() -> None:
    plan = plan_work(
        block_start=100, interval=30, mine_from=118, ledger_seconds=1.0, farmers=8, channels=1,
        margin_ledgers=1, margin_seconds=0, early_fraction=0.5,
    )
    # final at 130 - 9 = 121: the window is 3 s, too short for 8 rounds before the final
    assert plan.early_at is None


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        plan_work(block_start=0, interval=0, mine_from=0, ledger_seconds=1, farmers=1)
    with pytest.raises(ValueError):
        plan_work(block_start=0, interval=30, mine_from=0, ledger_seconds=0, farmers=1)
    with pytest.raises(ValueError):
        plan_work(block_start=0, interval=30, mine_from=0, ledger_seconds=1, farmers=1, early_fraction=1.0)
