"""The payout plan as tables: figures in, planned steps (and why) out. No database, no chain.

The worker and the dry run act on these same functions (``services/payouts/plan.py``);
``test_payouts``, ``test_pooler_payouts`` and ``test_payout_dry_run`` run them against the
devnet.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from kalepool.backend.chain import AccountInfo
from kalepool.backend.enums import AccountType, JournalKind
from kalepool.backend.services.payouts.plan import (
    Action,
    CompensationFigures,
    FarmerFigures,
    FeeFigures,
    FeeOwner,
    Owed,
    Payee,
    Planned,
    Sent,
    advance,
    fee_payments,
    owed_from,
    plan_compensations,
    plan_farmer,
    plan_fee_owner,
    source_problem,
)
from kalepool.settings import BackendSettings

KALE = 10_000_000
XLM = 10_000_000
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
SETTINGS = BackendSettings(payout_min_amount=10 * KALE, fee_payout_min_source=1 * KALE)
A, B, C, D = (uuid.UUID(int=n) for n in (1, 2, 3, 4))
POOLER = uuid.UUID(int=99)
WALLET = "GWALLET"


def account(kale: int | None = 100 * KALE, xlm: int = 5 * XLM, exists: bool = True) -> AccountInfo:
    return AccountInfo("G", exists=exists, xlm_balance=xlm, min_balance=XLM, kale_balance=kale)


def farmer(**changes: object) -> FarmerFigures:
    """A farmer earned 30 KALE (2 held for fees), paid 5 before; 100 KALE in its account."""
    base = FarmerFigures(
        farmer_id=A,
        payout_wallet=WALLET,
        leaving=False,
        owed=Owed(earned=30 * KALE, paid=-5 * KALE, held=2 * KALE, net=60 * KALE),
        pail_states=frozenset({"harvested"}),
        last_failure=None,
        now=NOW,
        source=account(),
        destination=account(kale=0),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def failed(seconds_ago: float, code: str) -> tuple[datetime, str]:
    return NOW - timedelta(seconds=seconds_ago), f"{code}: what the chain said"


FARMER_CASES = [
    ("paid its rewards", farmer(), (Action.PAY, "rewards", 25 * KALE)),
    ("leaving: everything it owns", farmer(leaving=True), (Action.PAY, "everything", 60 * KALE)),
    (
        "no more than its own KALE in the account",
        farmer(source=account(kale=20 * KALE)),
        (Action.PAY, "rewards", 18 * KALE),
    ),
    (
        "a failure an hour old is over",
        farmer(last_failure=failed(3600, "no_trustline")),
        (Action.PAY, "rewards", 25 * KALE),
    ),
    (
        "a failure younger backs off",
        farmer(last_failure=failed(3599, "no_trustline")),
        (Action.SKIP, "backing_off", 0),
    ),
    (
        "a transient failure waits 10 s",
        farmer(last_failure=failed(9, "bad_sequence")),
        (Action.SKIP, "backing_off", 0),
    ),
    ("and no longer", farmer(last_failure=failed(10, "bad_sequence")), (Action.PAY, "rewards", 25 * KALE)),
    ("a plant in flight", farmer(pail_states=frozenset({"planting"})), (Action.SKIP, "busy", 0)),
    ("a harvest in flight", farmer(pail_states=frozenset({"harvesting"})), (Action.SKIP, "busy", 0)),
    (
        "a planted pail is no reason for an active farmer",
        farmer(pail_states=frozenset({"planted"})),
        (Action.PAY, "rewards", 25 * KALE),
    ),
    (
        "a leaving farmer waits for its pails",
        farmer(leaving=True, pail_states=frozenset({"worked"})),
        (Action.SKIP, "pails_open", 0),
    ),
    (
        "owed less than the minimum",
        farmer(owed=Owed(14 * KALE, -5 * KALE, 0, 9 * KALE)),
        (Action.WAIT, "below_minimum", 0),
    ),
    (
        "leaving, owed nothing",
        farmer(leaving=True, owed=Owed(0, 0, 0, 0)),
        (Action.DEPART, "nothing_owed", 0),
    ),
    ("owed, not in the account", farmer(source=account(kale=11 * KALE)), (Action.SKIP, "not_in_account", 0)),
    (
        "leaving, nothing more of its own in the account",
        farmer(leaving=True, source=account(kale=2 * KALE)),
        (Action.DEPART, "paid_out", 0),
    ),
    (
        "leaving, a compensation still due to it",
        farmer(leaving=True, source=account(kale=2 * KALE), compensation_due=3 * KALE),
        (Action.SKIP, "compensation_due", 0),
    ),
    ("too little XLM for the fee", farmer(source=account(xlm=XLM + 999_999)), (Action.SKIP, "low_xlm", 0)),
    (
        "the payout wallet missing",
        farmer(destination=account(exists=False, kale=None)),
        (Action.FAIL, "destination_missing", 25 * KALE),
    ),
    (
        "without a KALE trustline",
        farmer(destination=account(kale=None)),
        (Action.FAIL, "no_trustline", 25 * KALE),
    ),
]


@pytest.mark.parametrize(
    ("figures", "expected"), [c[1:] for c in FARMER_CASES], ids=[c[0] for c in FARMER_CASES]
)
def test_plan_farmer(figures: FarmerFigures, expected: tuple[Action, str, int]) -> None:
    step = plan_farmer(figures, SETTINGS)
    assert step is not None
    assert (step.action, step.code, step.amount) == expected
    assert (step.payee, step.farmer_id, step.destination) == (Payee.FARMER, A, WALLET)


def test_the_chain_is_read_only_for_a_farmer_with_something_to_be_paid() -> None:
    assert plan_farmer(farmer(source=None, destination=None), SETTINGS) is None
    unread = farmer(source=None, destination=None, last_failure=failed(1, "no_trustline"))
    assert plan_farmer(unread, SETTINGS) is not None  # backing off: decided without the chain


def test_a_failed_step_carries_the_error_its_row_records() -> None:
    step = plan_farmer(farmer(destination=account(kale=None)), SETTINGS)
    assert step is not None and step.error == "no_trustline: the payout wallet has no KALE trustline"


def test_owed_from_the_journal() -> None:
    sums = {
        JournalKind.DEPOSIT: 50 * KALE,
        JournalKind.REWARD: 10 * KALE,
        JournalKind.POOLER_FEE: -1 * KALE,
        JournalKind.PLATFORM_FEE: -KALE // 10,
        JournalKind.POOLER_FEE_SETTLED: KALE // 2,
        JournalKind.PAYOUT: -3 * KALE,
    }
    owed = owed_from(sums)
    assert owed == Owed(earned=89 * KALE // 10, paid=-3 * KALE, held=6 * KALE // 10, net=564 * KALE // 10)
    assert (owed.owed(leaving=False), owed.owed(leaving=True)) == (59 * KALE // 10, 564 * KALE // 10)


# --- fee owners -------------------------------------------------------------------------------


OWNER = FeeOwner(AccountType.POOLER, POOLER, "GPOOLER")


def fees(**changes: object) -> FeeFigures:
    """A pooler with a 100 KALE claim held in three accounts (60, 50, and 0.5: dust)."""
    base = FeeFigures(
        owner=OWNER,
        claim=100 * KALE,
        held={C: 50 * KALE, A: 60 * KALE, D: KALE // 2},
        last_failure=None,
        now=NOW,
        wallet=account(kale=0),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def planned(figures: FeeFigures) -> list[tuple[Action, str, int, uuid.UUID | None]]:
    plan = plan_fee_owner(figures, SETTINGS)
    assert plan is not None
    return [(s.action, s.code, s.amount, s.source_id) for s in plan]


FEE_CASES = [
    (
        "the largest accounts first, dust left",
        fees(),
        [(Action.PAY, "fees", 60 * KALE, A), (Action.PAY, "fees", 40 * KALE, C)],
    ),
    ("a claim one account covers", fees(claim=30 * KALE), [(Action.PAY, "fees", 30 * KALE, A)]),
    ("a claim below the minimum", fees(claim=9 * KALE), [(Action.WAIT, "below_minimum", 0, None)]),
    (
        "a failure lately",
        fees(last_failure=failed(60, "no_trustline")),
        [(Action.SKIP, "backing_off", 0, None)],
    ),
    ("only dust held", fees(held={D: KALE // 2}), [(Action.WAIT, "dust", 0, None)]),
    (
        "the account missing",
        fees(wallet=account(exists=False, kale=None)),
        [(Action.FAIL, "destination_missing", 60 * KALE, A)],
    ),
    (
        "no KALE trustline",
        fees(wallet=account(kale=None), claim=20 * KALE),
        [(Action.FAIL, "no_trustline", 20 * KALE, A)],
    ),
]


@pytest.mark.parametrize(("figures", "expected"), [c[1:] for c in FEE_CASES], ids=[c[0] for c in FEE_CASES])
def test_plan_fee_owner(
    figures: FeeFigures, expected: list[tuple[Action, str, int, uuid.UUID | None]]
) -> None:
    assert planned(figures) == expected


def test_the_wallet_is_read_only_when_there_is_something_to_send() -> None:
    assert plan_fee_owner(fees(wallet=None), SETTINGS) is None
    assert plan_fee_owner(fees(wallet=None, claim=0), SETTINGS) is not None


def test_at_most_payout_batch_accounts_a_run() -> None:
    held = {uuid.UUID(int=n): 2 * KALE for n in range(10, 20)}
    plan = plan_fee_owner(fees(held=held), SETTINGS.model_copy(update={"payout_batch": 3}))
    assert plan is not None and [s.amount for s in plan] == [2 * KALE] * 3


def test_an_account_that_sends_nothing_leaves_its_part_to_the_next() -> None:
    """As the worker has always done: the next account is asked for what is still left."""
    plan = fee_payments(OWNER, 100 * KALE, [(60 * KALE, A), (50 * KALE, C), (30 * KALE, B)])
    first = advance(plan)
    assert first is not None and (first.source_id, first.amount) == (A, 60 * KALE)
    second = advance(plan, Sent(0))  # A was busy
    assert second is not None and (second.source_id, second.amount) == (C, 50 * KALE)
    third = advance(plan)  # C sent it all
    assert third is not None and (third.source_id, third.amount) == (B, 30 * KALE)
    assert advance(plan, Sent(30 * KALE)) is None


@pytest.mark.parametrize(
    ("busy", "source", "amount", "expected"),
    [
        (True, None, KALE, "busy"),
        (False, None, KALE, None),  # an open payout: signed already, nothing to check on chain
        (False, account(kale=KALE), KALE, None),
        (False, account(kale=KALE - 1), KALE, "not_in_account"),
        (False, account(kale=None), KALE, "not_in_account"),
        (False, account(xlm=XLM + 999_999), KALE, "low_xlm"),
    ],
)
def test_source_problem(busy: bool, source: AccountInfo | None, amount: int, expected: str | None) -> None:
    problem = source_problem(busy, source, amount, SETTINGS)
    assert (problem[0] if problem else None) == expected


# --- compensations ----------------------------------------------------------------------------


def compensations(**changes: object) -> CompensationFigures:
    """B is due 8 KALE and holds 3 of the pooler's fees; A holds 60, C 50, D 0.5."""
    base = CompensationFigures(
        owner=OWNER,
        due={B: 8 * KALE},
        held={A: 60 * KALE, B: 3 * KALE, C: 50 * KALE, D: KALE // 2},
        accounts={B: "GB", C: "GC"},
        failures={},
        now=NOW,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def steps(plan: list[Planned]) -> list[tuple[Action, str, uuid.UUID | None, int, uuid.UUID | None]]:
    return [(s.action, s.code, s.farmer_id, s.amount, s.source_id) for s in plan]


def test_compensations_settle_in_place_then_pay_from_the_largest_account() -> None:
    plan = list(plan_compensations(compensations(), SETTINGS))
    assert steps(plan) == [
        (Action.SETTLE, "in_place", B, 3 * KALE, None),
        (Action.PAY, "compensation", B, 5 * KALE, A),
    ]
    assert plan[1].destination == "GB" and plan[1].pooler_id == POOLER and plan[1].payee == Payee.COMPENSATION


def test_a_settlement_refused_leaves_the_whole_amount_to_pay() -> None:
    plan = plan_compensations(compensations(), SETTINGS)
    assert advance(plan) is not None
    pay = advance(plan, Sent(0))  # another worker held B's row
    assert pay is not None and (pay.action, pay.amount) == (Action.PAY, 8 * KALE)


def test_a_farmer_due_a_compensation_never_pays_one() -> None:
    figures = compensations(due={B: 8 * KALE, C: 100 * KALE}, held={A: 2 * KALE, C: 50 * KALE})
    assert steps(list(plan_compensations(figures, SETTINGS))) == [
        (Action.SETTLE, "in_place", C, 50 * KALE, None),
        (Action.PAY, "compensation", B, 2 * KALE, A),
        (Action.WAIT, "no_fees", C, 50 * KALE, None),  # nobody else holds any of the fees
    ]


def test_a_small_compensation_may_come_from_an_account_below_the_source_minimum() -> None:
    figures = compensations(due={B: KALE // 4}, held={D: KALE // 2})
    assert steps(list(plan_compensations(figures, SETTINGS))) == [
        (Action.PAY, "compensation", B, KALE // 4, D)
    ]


def test_a_recipient_backing_off_waits() -> None:
    figures = compensations(held={A: 60 * KALE}, failures={B: failed(30, "no_trustline")})
    assert steps(list(plan_compensations(figures, SETTINGS))) == [
        (Action.WAIT, "backing_off", B, 8 * KALE, None)
    ]


def test_a_payment_that_fails_on_chain_ends_that_recipients_turn() -> None:
    figures = compensations(due={B: 8 * KALE, C: 4 * KALE}, held={A: 5 * KALE, D: 6 * KALE})
    plan = plan_compensations(figures, SETTINGS)
    first = advance(plan)
    assert first is not None and (first.farmer_id, first.source_id, first.amount) == (B, D, 6 * KALE)
    after_failure = advance(plan, Sent(0, backing_off=True))
    assert after_failure is not None and (after_failure.farmer_id, after_failure.source_id) == (C, D)
    skipped = plan_compensations(figures, SETTINGS)  # the same, merely skipped: the next account
    advance(skipped)
    then = advance(skipped, Sent(0))
    assert then is not None and (then.farmer_id, then.source_id, then.amount) == (B, A, 5 * KALE)
