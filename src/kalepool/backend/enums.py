"""The closed sets of the backend: statuses, states, journal kinds. Stored as text.

Each is a ``StrEnum`` whose values are what the database holds; the CHECK constraints
of :mod:`kalepool.backend.db.models` are generated from these, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kalepool.wire.enums import Attribution, FarmerStatus, FundingState

__all__ = [
    "JOURNAL_KINDS",
    "AccountType",
    "ApiKeyKind",
    "Asset",
    "Attribution",
    "CompensationReason",
    "EventStatus",
    "FarmerStatus",
    "FundingState",
    "JournalKind",
    "KindRule",
    "PailState",
    "PayoutStatus",
    "PoolerStatus",
    "WorkStatus",
]


class PoolerStatus(StrEnum):
    ACTIVE = "active"
    #: the operator stopped it: its API key is refused, its farmers are not planted
    SUSPENDED = "suspended"


class ApiKeyKind(StrEnum):
    POOLER = "pooler"
    FARMER = "farmer"


class EventStatus(StrEnum):
    """Outcome of a planting or a harvest (one row per attempt)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


class WorkStatus(StrEnum):
    #: the result checked out against the recomputed hash and the pail on chain
    ACCEPTED = "accepted"
    #: it did not: the pooler owes a compensation
    REJECTED = "rejected"


class PailState(StrEnum):
    """One farmer's entry in one block, as the backend drives it (mutable, one row)."""

    PLANTING = "planting"  # claimed; the plant transaction may be in flight
    PLANTED = "planted"
    PLANT_FAILED = "plant_failed"
    WORKED = "worked"  # an accepted work is recorded: harvestable once the block closes
    UNWORKED = "unworked"  # planted, never (validly) worked: stake forfeited, compensation owed
    HARVESTING = "harvesting"  # claimed by a harvester; the transaction may be in flight
    HARVESTED = "harvested"
    LOST = "lost"  # the pail expired or the block vanished before a harvest


class CompensationReason(StrEnum):
    NOT_WORKED = "not_worked"  # planted, but the pooler reported no work for it
    INVALID_WORK = "invalid_work"  # the reported work did not check


class AccountType(StrEnum):
    FARMER = "farmer"
    POOLER = "pooler"
    PLATFORM = "platform"


class Asset(StrEnum):
    KALE = "KALE"
    XLM = "XLM"


class PayoutStatus(StrEnum):
    PENDING = "pending"  # intent recorded; no transaction sent yet
    SUBMITTED = "submitted"  # envelope and hash recorded, then sent
    CONFIRMED = "confirmed"
    FAILED = "failed"


class JournalKind(StrEnum):
    """What a ``balance_changes`` row records. Signs and owners are in :data:`JOURNAL_KINDS`."""

    DEPOSIT = "deposit"
    STAKE_BURNED = "stake_burned"
    STAKE_RETURNED = "stake_returned"
    REWARD = "reward"
    POOLER_FEE = "pooler_fee"
    PLATFORM_FEE = "platform_fee"
    POOLER_SHARE = "pooler_share"
    FEE_INCOME = "fee_income"
    COMPENSATION = "compensation"
    COMPENSATION_OWED = "compensation_owed"
    PAYOUT = "payout"
    PAYOUT_REVERSED = "payout_reversed"
    POOLER_FEE_SENT = "pooler_fee_sent"
    POOLER_FEE_SETTLED = "pooler_fee_settled"
    PLATFORM_FEE_SENT = "platform_fee_sent"
    PLATFORM_FEE_SETTLED = "platform_fee_settled"
    COMPENSATION_RECEIVED = "compensation_received"
    COMPENSATION_SETTLED = "compensation_settled"
    XLM_FEE = "xlm_fee"
    ADJUSTMENT = "adjustment"


@dataclass(frozen=True)
class KindRule:
    """The sign a kind's amount must have (+1, -1, or 0 for either) and who may hold it."""

    sign: int
    accounts: frozenset[AccountType]
    assets: frozenset[Asset] = frozenset({Asset.KALE})


_F, _P, _PL = AccountType.FARMER, AccountType.POOLER, AccountType.PLATFORM
_ALL = frozenset({_F, _P, _PL})

#: Every journal kind: the sign of its amount and the accounts that may hold it.
JOURNAL_KINDS: dict[JournalKind, KindRule] = {
    JournalKind.DEPOSIT: KindRule(+1, frozenset({_F}), frozenset({Asset.KALE, Asset.XLM})),
    JournalKind.STAKE_BURNED: KindRule(-1, frozenset({_F})),
    JournalKind.STAKE_RETURNED: KindRule(+1, frozenset({_F})),
    JournalKind.REWARD: KindRule(+1, frozenset({_F})),
    JournalKind.POOLER_FEE: KindRule(-1, frozenset({_F})),
    JournalKind.PLATFORM_FEE: KindRule(-1, frozenset({_F})),
    JournalKind.POOLER_SHARE: KindRule(+1, frozenset({_P})),
    JournalKind.FEE_INCOME: KindRule(+1, frozenset({_PL})),
    JournalKind.COMPENSATION: KindRule(+1, frozenset({_F})),
    JournalKind.COMPENSATION_OWED: KindRule(-1, frozenset({_P})),
    JournalKind.PAYOUT: KindRule(-1, _ALL, frozenset({Asset.KALE, Asset.XLM})),
    JournalKind.PAYOUT_REVERSED: KindRule(+1, _ALL, frozenset({Asset.KALE, Asset.XLM})),
    # a pooler's fees leave the custodial account for the pooler's wallet: the KALE goes
    # (sent, custodial) and the farmer's fee debt is settled by as much (settled): net 0
    JournalKind.POOLER_FEE_SENT: KindRule(-1, frozenset({_F})),
    JournalKind.POOLER_FEE_SETTLED: KindRule(+1, frozenset({_F})),
    # the same for the platform's fees, sent to backend.platform_wallet
    JournalKind.PLATFORM_FEE_SENT: KindRule(-1, frozenset({_F})),
    JournalKind.PLATFORM_FEE_SETTLED: KindRule(+1, frozenset({_F})),
    # a compensation paid out of the pooler's fees: KALE arrives in the farmer's account
    # (received, custodial) and its claim on the pooler is settled by as much (settled): net 0
    JournalKind.COMPENSATION_RECEIVED: KindRule(+1, frozenset({_F})),
    JournalKind.COMPENSATION_SETTLED: KindRule(-1, frozenset({_F})),
    JournalKind.XLM_FEE: KindRule(-1, _ALL, frozenset({Asset.XLM})),
    JournalKind.ADJUSTMENT: KindRule(0, _ALL, frozenset({Asset.KALE, Asset.XLM})),
}

assert set(JOURNAL_KINDS) == set(JournalKind)
