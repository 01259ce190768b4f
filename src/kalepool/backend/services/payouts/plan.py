"""The payout plan: who is paid what, and why, as pure functions of the figures read.

Nothing here reads a clock, the database or the chain: the worker
(:mod:`.farmers`, :mod:`.fees`, :mod:`.compensations`) and the dry run (:mod:`.dry_run`)
read the figures, call these functions and act on (or print) the :class:`Planned` steps
they answer, so the dry run says exactly what the worker would do. Table tests:
``tests/backend/test_payout_plan.py``.

* :func:`plan_farmer`: one farmer's payout of its own KALE (the rule of ``docs/backend.md``,
  "Payouts"), or why not; ``None`` while the accounts on chain, which only a payable
  farmer needs, are not read yet.
* :func:`plan_fee_owner`: a pooler's or the platform's fees, to be sent from the custodial
  accounts holding them; :func:`fee_payments` shares the claim out over those accounts.
* :func:`plan_compensations`: the compensations a pooler owes, out of its fees: settled in
  place first, then paid from the other accounts holding them.
* :func:`source_problem`: why a custodial account cannot send a fee payment now.
* :func:`backoff`: whether a failure is too recent to try again (:data:`TRANSIENT_CODES`
  wait ``backend.payout_transient_retry_seconds``, the others ``payout_retry_seconds``).

The multi-step plans are generators: each ``PAY`` (or ``SETTLE``) step may be answered with
``plan.send(Sent(...))``, what was actually sent; unanswered (``None``), it went as
planned. So the worker follows the same plan when an account turns out busy (the next
account is asked for more), and ``list(plan)`` is the dry run's list.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from kalepool.backend.accounting import held_fees
from kalepool.backend.chain import AccountInfo
from kalepool.backend.enums import AccountType, JournalKind, PailState
from kalepool.kale.amounts import amount_text
from kalepool.settings import BackendSettings

__all__ = [
    "TRANSIENT_CODES",
    "Action",
    "CompensationFigures",
    "FarmerFigures",
    "FeeFigures",
    "FeeOwner",
    "Owed",
    "Payee",
    "Plan",
    "Planned",
    "Sent",
    "advance",
    "backoff",
    "fee_payments",
    "kale",
    "nowhere",
    "one",
    "owed_from",
    "plan_compensations",
    "plan_farmer",
    "plan_fee_owner",
    "source_problem",
]

#: Failures that say nothing about the payout or its wallet (another process used the
#: account, the network stalled, a lost race): tried again after
#: ``backend.payout_transient_retry_seconds``, not ``payout_retry_seconds``.
TRANSIENT_CODES = frozenset(
    {
        "bad_sequence",
        "account_busy",
        "rpc_timeout",
        "network_error",
        "chain_unavailable",
        "tx_throttled",
        "tx_expired",
        "race_lost",
    }
)

_BUSY = frozenset({PailState.PLANTING.value, PailState.HARVESTING.value})
_UNSETTLED = _BUSY | {PailState.PLANTED.value, PailState.WORKED.value}


class Payee(StrEnum):
    """Whose payment a step is."""

    FARMER = "farmer"  # a farmer's own KALE, to its payout wallet
    POOLER = "pooler"  # a pooler's fees, to its account
    PLATFORM = "platform"  # the platform's fees, to backend.platform_wallet
    COMPENSATION = "compensation"  # a pooler's fees, to a farmer it owes a compensation


class Action(StrEnum):
    """What the worker does for a step (and what it counts it as)."""

    PAY = "pay"  # a payout row (pending), then signed and sent
    RESUME = "resume"  # an open payout finished first (a submitted one followed by hash)
    SETTLE = "settle"  # a compensation settled in place: journal lines, no transaction
    FAIL = "fail"  # a failed payout recorded, nothing sent (the destination cannot take KALE)
    DEPART = "depart"  # a leaving farmer marked departed
    SKIP = "skip"  # not this run (counted as skipped)
    WAIT = "wait"  # nothing to do yet


@dataclass(frozen=True, slots=True)
class Planned:
    """One step of the plan: an ``action`` for a ``payee``, and why (``code``, ``reason``).

    ``amount`` is KALE stroops; ``farmer_id`` the farmer paid (its own KALE, or a
    compensation), ``source_id`` the custodial account a fee payment leaves from."""

    payee: Payee
    action: Action
    code: str
    reason: str
    amount: int = 0
    farmer_id: uuid.UUID | None = None
    pooler_id: uuid.UUID | None = None
    source_id: uuid.UUID | None = None
    destination: str | None = None
    payout_id: int | None = None

    @property
    def error(self) -> str:
        """A failed step's error, as recorded on its payout row."""
        return f"{self.code}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Sent:
    """What a step actually did: KALE sent (or settled); ``backing_off``: it failed on
    chain and its recipient now waits the backoff (a compensation goes on to the next
    recipient rather than the next account)."""

    amount: int
    backing_off: bool = False


#: A multi-step plan: steps out, what each did (``None``: as planned) in.
Plan = Generator[Planned, Sent | None, None]


def one(step: Planned) -> Plan:
    """A plan of one step."""
    yield step


def advance(plan: Plan, sent: Sent | None = None) -> Planned | None:
    """The plan's next step, once it is told what the last one did; None when it is done."""
    try:
        return plan.send(sent)
    except StopIteration:
        return None


def kale(stroops: int) -> str:
    """``12.5000000 KALE`` (exact: integers only)."""
    return amount_text(stroops, unit="KALE")


def backoff(last: tuple[datetime, str | None] | None, now: datetime, settings: BackendSettings) -> str | None:
    """Why a failure at ``last`` (time, error) is too recent to try again; None: it is not."""
    if last is None:
        return None
    at, error = last
    code = (error or "").split(":", 1)[0]
    transient = code in TRANSIENT_CODES
    seconds = settings.payout_transient_retry_seconds if transient else settings.payout_retry_seconds
    if now - at >= timedelta(seconds=seconds):
        return None
    setting = "payout_transient_retry_seconds" if transient else "payout_retry_seconds"
    left = (at + timedelta(seconds=seconds) - now).total_seconds()
    return f"failed lately ({code or 'unknown'}): tried again in {left:.0f} s ({setting} {seconds:g})"


# --- farmers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Owed:
    """A farmer's payout figures from the journal (KALE stroops)."""

    earned: int
    paid: int
    held: int
    net: int

    def owed(self, leaving: bool) -> int:
        return self.net if leaving else self.earned + self.paid


def owed_from(sums: Mapping[JournalKind, int]) -> Owed:
    """:class:`Owed` from the farmer's KALE journal summed per kind."""
    fees = sums.get(JournalKind.POOLER_FEE, 0) + sums.get(JournalKind.PLATFORM_FEE, 0)
    return Owed(
        earned=sums.get(JournalKind.REWARD, 0) + fees,
        paid=sums.get(JournalKind.PAYOUT, 0) + sums.get(JournalKind.PAYOUT_REVERSED, 0),
        held=held_fees(sums),
        net=sum(sums.values()),
    )


@dataclass(frozen=True)
class FarmerFigures:
    """What one farmer's payout is decided on. ``source`` (its custodial account) and
    ``destination`` (its payout wallet) as on chain, None until read."""

    farmer_id: uuid.UUID
    payout_wallet: str
    leaving: bool
    owed: Owed
    pail_states: frozenset[str]
    last_failure: tuple[datetime, str | None] | None
    now: datetime
    compensation_due: int = 0  # owed to it by its pooler, still unpaid (read for a leaving farmer)
    source: AccountInfo | None = None
    destination: AccountInfo | None = None


def plan_farmer(f: FarmerFigures, settings: BackendSettings) -> Planned | None:
    """The farmer's payout (or why none); None when the accounts on chain are needed and
    ``f.source`` / ``f.destination`` are not read yet."""

    def step(action: Action, code: str, reason: str, amount: int = 0) -> Planned:
        return Planned(Payee.FARMER, action, code, reason, amount, f.farmer_id, destination=f.payout_wallet)

    if (why := backoff(f.last_failure, f.now, settings)) is not None:
        return step(Action.SKIP, "backing_off", why)
    if f.leaving and f.pail_states & _UNSETTLED:
        return step(Action.SKIP, "pails_open", "leaving: waits until none of its pails is open")
    if not f.leaving and f.pail_states & _BUSY:
        return step(Action.SKIP, "busy", "a plant or harvest of its account is in flight")
    owed = f.owed.owed(f.leaving)
    least = 1 if f.leaving else settings.payout_min_amount
    if owed < least:
        if f.leaving:
            return step(Action.DEPART, "nothing_owed", "leaving, and owed nothing more: departs")
        return step(
            Action.WAIT, "below_minimum", f"owed {kale(owed)}, less than payout_min_amount {kale(least)}"
        )
    if f.source is None or f.destination is None:
        return None
    own = (f.source.kale_balance or 0) - f.owed.held
    amount = min(owed, own)
    if amount < least:
        if f.leaving and f.compensation_due <= 0:
            return step(Action.DEPART, "paid_out", "leaving: nothing more it owns is in its account: departs")
        if f.leaving:
            why = f"leaving: waits for the compensation of {kale(f.compensation_due)} its pooler owes it"
            return step(Action.SKIP, "compensation_due", why)
        why = f"owed {kale(owed)}, but only {kale(own)} of its own is in its account"
        return step(Action.SKIP, "not_in_account", why)
    if f.source.spendable_xlm < settings.min_fee_xlm:
        return step(Action.SKIP, "low_xlm", "its account has too little XLM for the fee (min_fee_xlm)")
    if not f.destination.exists:
        return step(Action.FAIL, "destination_missing", "the payout wallet does not exist on chain", amount)
    if not f.destination.has_kale_trustline:
        return step(Action.FAIL, "no_trustline", "the payout wallet has no KALE trustline", amount)
    if f.leaving:
        return step(
            Action.PAY, "everything", f"leaving: everything it owns ({kale(owed)} on the journal)", amount
        )
    why = f"earned {kale(f.owed.earned)}, paid {kale(-f.owed.paid)}"
    if amount < owed:
        why += f"; {kale(owed - amount)} not in its account yet"
    return step(Action.PAY, "rewards", why, amount)


# --- fees: the poolers' and the platform's ------------------------------------------------------


@dataclass(frozen=True)
class FeeOwner:
    """Whose fees a fee payout sends: a pooler (to its own account) or the platform (to
    ``backend.platform_wallet``); ``destination`` None: nowhere to send them."""

    account_type: AccountType
    pooler_id: uuid.UUID | None
    destination: str | None

    @property
    def name(self) -> str:
        return f"pooler {self.pooler_id}" if self.pooler_id else "the platform"

    @property
    def payee(self) -> Payee:
        return Payee.POOLER if self.account_type == AccountType.POOLER else Payee.PLATFORM

    @property
    def sent_kinds(self) -> tuple[JournalKind, JournalKind]:
        if self.account_type == AccountType.POOLER:
            return JournalKind.POOLER_FEE_SENT, JournalKind.POOLER_FEE_SETTLED
        return JournalKind.PLATFORM_FEE_SENT, JournalKind.PLATFORM_FEE_SETTLED


@dataclass(frozen=True)
class FeeFigures:
    """What a fee owner's payout is decided on: its claim (its KALE journal balance), its
    fees held per custodial account, its newest failure; ``wallet``, its destination on
    chain, None until read."""

    owner: FeeOwner
    claim: int
    held: Mapping[uuid.UUID, int]
    last_failure: tuple[datetime, str | None] | None
    now: datetime
    wallet: AccountInfo | None = None


def nowhere(owner: FeeOwner) -> Plan:
    """The plan of an owner without a destination: its fees stay (nothing is read)."""
    where = "no account" if owner.pooler_id else "no backend.platform_wallet"
    why = f"{where}: its fees stay in the custodial accounts"
    return one(Planned(owner.payee, Action.WAIT, "no_destination", why, pooler_id=owner.pooler_id))


def plan_fee_owner(f: FeeFigures, settings: BackendSettings) -> Plan | None:
    """The owner's fee payments, one per custodial account holding at least
    ``fee_payout_min_source`` of its fees, the largest first (at most ``payout_batch``),
    until its claim is sent; or why none. None when the wallet on chain is needed and
    ``f.wallet`` is not read yet."""
    owner = f.owner

    def step(
        action: Action, code: str, reason: str, amount: int = 0, source: uuid.UUID | None = None
    ) -> Plan:
        return one(
            Planned(
                owner.payee, action, code, reason, amount, None, owner.pooler_id, source, owner.destination
            )
        )

    if f.claim < settings.payout_min_amount:
        why = f"claim {kale(f.claim)}, less than payout_min_amount {kale(settings.payout_min_amount)}"
        return step(Action.WAIT, "below_minimum", why)
    if (waiting := backoff(f.last_failure, f.now, settings)) is not None:
        return step(Action.SKIP, "backing_off", waiting)
    smallest = settings.fee_payout_min_source  # dust waits: one transaction per account
    sources = sorted(
        ((h, fid) for fid, h in f.held.items() if h >= smallest), key=lambda t: (-t[0], str(t[1]))
    )
    sources = sources[: settings.payout_batch]
    if not sources:
        why = f"no custodial account holds fee_payout_min_source {kale(smallest)} of its fees"
        return step(Action.WAIT, "dust", why)
    if f.wallet is None:
        return None
    first_held, first = sources[0]
    if not f.wallet.exists:
        why = f"the account of {owner.name} does not exist on chain"
        return step(Action.FAIL, "destination_missing", why, min(f.claim, first_held), first)
    if not f.wallet.has_kale_trustline:
        why = f"the account of {owner.name} has no KALE trustline"
        return step(Action.FAIL, "no_trustline", why, min(f.claim, first_held), first)
    return fee_payments(owner, f.claim, sources)


def fee_payments(owner: FeeOwner, claim: int, sources: Sequence[tuple[int, uuid.UUID]]) -> Plan:
    """``claim`` sent from the ``(held, account)`` sources in order, each sending what it
    holds of the owner's fees until the claim is covered."""
    left = claim
    for held, source_id in sources:
        if left <= 0:
            return
        amount = min(held, left)
        why = f"{kale(held)} held in farmer {source_id}'s account, claim left {kale(left)}"
        sent = yield Planned(
            owner.payee, Action.PAY, "fees", why, amount, None, owner.pooler_id, source_id, owner.destination
        )
        left -= amount if sent is None else sent.amount


def source_problem(
    busy: bool, account: AccountInfo | None, amount: int, settings: BackendSettings
) -> tuple[str, str] | None:
    """Why a custodial account cannot send ``amount`` of fees now (code, reason), or None.
    ``account``: as on chain (None: not needed, for an open payout)."""
    if busy:
        return "busy", "a plant or harvest of the account is in flight"
    if account is None:
        return None
    if (account.kale_balance or 0) < amount:
        return "not_in_account", f"the account holds {kale(account.kale_balance or 0)}"
    if account.spendable_xlm < settings.min_fee_xlm:
        return "low_xlm", "the account has too little XLM for the fee (min_fee_xlm)"
    return None


# --- compensations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompensationFigures:
    """What a pooler's compensations are decided on: due per farmer, the pooler's fees held
    per account, each recipient's custodial account and newest failed compensation."""

    owner: FeeOwner
    due: Mapping[uuid.UUID, int]
    held: Mapping[uuid.UUID, int]
    accounts: Mapping[uuid.UUID, str]
    failures: Mapping[uuid.UUID, tuple[datetime, str | None]]
    now: datetime


def plan_compensations(f: CompensationFigures, settings: BackendSettings) -> Plan:
    """The compensations the pooler owes, out of its fees still in custody, in two passes
    over the farmers due one: first its fees in the farmer's own account become the
    farmer's (``SETTLE``); then what is still due is sent from the other accounts holding
    them (``PAY``, the largest first; an account holding less than both
    ``fee_payout_min_source`` and the amount is left out), unless the recipient's last
    payment failed lately. What the fees cannot cover waits."""
    owner = f.owner
    due, held = dict(f.due), dict(f.held)
    order = sorted(due, key=str)

    def step(
        action: Action,
        code: str,
        reason: str,
        farmer: uuid.UUID,
        amount: int,
        source: uuid.UUID | None = None,
    ) -> Planned:
        destination = f.accounts.get(farmer)
        return Planned(
            Payee.COMPENSATION, action, code, reason, amount, farmer, owner.pooler_id, source, destination
        )

    for farmer_id in order:  # pass 1: in place, no transaction
        own = min(due[farmer_id], held.get(farmer_id, 0))
        if own > 0:
            why = f"{kale(own)} of {owner.name}'s fees are in its own account (due {kale(due[farmer_id])})"
            reply = yield step(Action.SETTLE, "in_place", why, farmer_id, own)
            if reply is None or reply.amount > 0:
                held[farmer_id] -= own
                due[farmer_id] -= own
    for farmer_id in order:  # pass 2: payments from the other accounts
        amount = due[farmer_id]
        if amount <= 0:
            continue
        if (waiting := backoff(f.failures.get(farmer_id), f.now, settings)) is not None:
            yield step(Action.WAIT, "backing_off", waiting, farmer_id, amount)
            continue
        sources = sorted(
            (
                (h, fid)
                for fid, h in held.items()
                if due.get(fid, 0) <= 0 and h >= min(settings.fee_payout_min_source, amount)
            ),
            key=lambda t: (-t[0], str(t[1])),
        )
        if not sources:
            why = f"{kale(amount)} due: no other account holds enough of {owner.name}'s fees yet"
            yield step(Action.WAIT, "no_fees", why, farmer_id, amount)
        for amount_held, source_id in sources:
            if amount <= 0:
                break
            part = min(amount_held, amount)
            why = f"due {kale(amount)}, from {owner.name}'s fees in farmer {source_id}'s account"
            reply = yield step(Action.PAY, "compensation", why, farmer_id, part, source_id)
            moved = part if reply is None else reply.amount
            held[source_id] -= moved
            amount -= moved
            if reply is not None and reply.amount == 0 and reply.backing_off:
                break  # it failed on chain: the backoff, not the next source
