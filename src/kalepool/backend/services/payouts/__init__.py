"""Payouts: KALE leaves the custodial accounts for whom it belongs to.

Split by who is paid: :mod:`.farmers` (a farmer's own KALE, to its payout wallet),
:mod:`.fees` (the poolers' fees to their accounts, the platform's to
``backend.platform_wallet``), :mod:`.compensations` (what a pooler owes farmers it left
unworked, out of its fees). :mod:`.plan` decides, as pure functions of the figures read;
:mod:`.sending` sends a decided payout once; :mod:`.dry_run` prints the plan of a run
without signing or writing anything (``kalepool backend payouts --dry-run``). The queries
are in :mod:`kalepool.backend.db.payouts`.

The rule (see ``docs/backend.md``, "Payouts"), per farmer, from the KALE journal:

* ``earned`` = ``reward`` + ``pooler_fee`` + ``platform_fee`` (the fees are negative): the
  rewards the farmer keeps; ``paid`` = ``payout`` + ``payout_reversed`` (≤ 0);
  ``held`` = −(``pooler_fee`` + ``platform_fee``): KALE that sits in the custodial account
  but belongs to the pooler and the platform.
* An **active** farmer is owed ``earned + paid``: rewards only, never the principal it
  keeps for planting (deposits and stakes). A **leaving** farmer is owed its whole net
  KALE journal balance, once none of its pails is open any more.
* The amount is ``min(owed, on-chain KALE − held)``; it is paid only when it reaches
  ``backend.payout_min_amount`` (any positive amount for a leaving farmer). The stake of
  the next plant is a share of what is left, so it never needs more than that.
* A farmer with a plant or harvest in flight, with too little XLM for the fee, or with a
  failed payout younger than ``backend.payout_retry_seconds`` is skipped this run (a
  transient failure, such as a sequence number another process used, waits only
  ``backend.payout_transient_retry_seconds``).

Intent first: a ``payouts`` row (``pending``) is committed before anything is signed; the
gateway's ``on_signed`` hook records the envelope and hash (``submitted``) before sending;
a run finds ``submitted`` rows first and follows them by hash (:meth:`Chain.resume_payment`),
never signing again. The ``payout`` debit and the ``xlm_fee`` are journaled with the
transaction hash as reference, so they are written once whatever happens. A farmer's row is
locked (``FOR NO KEY UPDATE SKIP LOCKED``: the journal's foreign keys still pass) while
its payout is decided and sent, so two workers never pay one farmer at once; one worker
pays a fee owner at a time (an advisory lock), its open payouts first. A payout wallet
without a KALE trustline is a failed payout (attributed to the farmer), recorded without
sending anything and without a journal line.
"""

from kalepool.backend.services.payouts.dry_run import PayoutPlan, format_plan, plan_payouts
from kalepool.backend.services.payouts.farmers import owed_to, pay_farmers
from kalepool.backend.services.payouts.fees import pay_platform, pay_poolers
from kalepool.backend.services.payouts.plan import FeeOwner, Owed, Planned
from kalepool.backend.services.payouts.sending import PayoutRun

__all__ = [
    "FeeOwner",
    "Owed",
    "PayoutPlan",
    "PayoutRun",
    "Planned",
    "format_plan",
    "owed_to",
    "pay_farmers",
    "pay_platform",
    "pay_poolers",
    "plan_payouts",
]
