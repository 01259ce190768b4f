"""The append-only balance journal (``balance_changes``) and the balances derived from it.

Every credit and debit is one row: who (farmer, pooler or the platform), what
(:class:`~kalepool.backend.enums.JournalKind`), which asset, a signed amount in stroops,
the block it belongs to and a reference (a transaction hash, a payout id). Rows are never
changed; a correction is a new ``adjustment`` row. A balance is ``SUM(amount)``.

Recording is idempotent: (account, kind, asset, block, reference) is unique, and
:func:`record` inserts with ``ON CONFLICT DO NOTHING``, so a retried service call cannot
credit twice. Functions take the caller's session and never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kalepool.backend.accounting import pooler_fees_held
from kalepool.backend.db.models import BalanceChange, Farmer, Pail
from kalepool.backend.enums import JOURNAL_KINDS, AccountType, Asset, JournalKind, PailState

__all__ = [
    "Balances",
    "Entry",
    "farmer_balances",
    "platform_balances",
    "pooler_balances",
    "record",
    "statement",
]


@dataclass(frozen=True)
class Entry:
    """One journal line to record. Validated against :data:`JOURNAL_KINDS` on creation."""

    account_type: AccountType
    kind: JournalKind
    amount: int
    usage: str
    asset: Asset = Asset.KALE
    farmer_id: uuid.UUID | None = None
    pooler_id: uuid.UUID | None = None
    block_index: int | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        rule = JOURNAL_KINDS[self.kind]
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount == 0:
            raise ValueError(f"amount: a non-zero integer number of stroops, got {self.amount!r}")
        if rule.sign and (self.amount > 0) != (rule.sign > 0):
            raise ValueError(f"amount: {self.kind} must be {'positive' if rule.sign > 0 else 'negative'}")
        if self.account_type not in rule.accounts:
            raise ValueError(f"account_type: {self.kind} cannot be held by a {self.account_type}")
        if self.asset not in rule.assets:
            raise ValueError(f"asset: {self.kind} cannot be in {self.asset}")
        owner = {
            AccountType.FARMER: (self.farmer_id is not None, self.pooler_id is None),
            AccountType.POOLER: (self.pooler_id is not None, self.farmer_id is None),
            AccountType.PLATFORM: (self.farmer_id is None, self.pooler_id is None),
        }[self.account_type]
        if not all(owner):
            raise ValueError(f"{self.account_type} entries name exactly their own account")

    @classmethod
    def farmer(cls, farmer_id: uuid.UUID, kind: JournalKind, amount: int, usage: str, **kw: object) -> Entry:
        return cls(AccountType.FARMER, kind, amount, usage, farmer_id=farmer_id, **kw)  # type: ignore[arg-type]

    @classmethod
    def pooler(cls, pooler_id: uuid.UUID, kind: JournalKind, amount: int, usage: str, **kw: object) -> Entry:
        return cls(AccountType.POOLER, kind, amount, usage, pooler_id=pooler_id, **kw)  # type: ignore[arg-type]

    @classmethod
    def platform(cls, kind: JournalKind, amount: int, usage: str, **kw: object) -> Entry:
        return cls(AccountType.PLATFORM, kind, amount, usage, **kw)  # type: ignore[arg-type]


def xlm_fee(
    farmer_id: uuid.UUID, fee: int, tx_hash: str | None, usage: str, *, block_index: int | None = None
) -> list[Entry]:
    """The XLM fee a farmer's custodial account paid for a transaction, keyed by its hash.

    Empty when nothing was charged or the transaction is unknown, so callers can always add it.
    """
    if fee <= 0 or not tx_hash:
        return []
    return [
        Entry.farmer(
            farmer_id,
            JournalKind.XLM_FEE,
            -fee,
            usage,
            asset=Asset.XLM,
            block_index=block_index,
            reference=tx_hash,
        )
    ]


async def record(session: AsyncSession, entries: Iterable[Entry]) -> int:
    """Insert the entries that are not recorded yet; returns how many were new."""
    rows = [
        {
            "account_type": e.account_type.value,
            "farmer_id": e.farmer_id,
            "pooler_id": e.pooler_id,
            "asset": e.asset.value,
            "kind": e.kind.value,
            "amount": e.amount,
            "block_index": e.block_index,
            "reference": e.reference,
            "usage": e.usage,
        }
        for e in entries
    ]
    if not rows:
        return 0
    # one statement, executed with SQLAlchemy's batched "insertmanyvalues" (cached, few round trips)
    statement = insert(BalanceChange).on_conflict_do_nothing().returning(BalanceChange.id)
    return len((await session.execute(statement, rows)).all())


@dataclass(frozen=True)
class Balances:
    """Derived balances of one account: net per asset, and the KALE total per kind."""

    net: dict[Asset, int] = field(default_factory=dict)
    by_kind: dict[Asset, dict[JournalKind, int]] = field(default_factory=dict)

    def __getitem__(self, asset: Asset) -> int:
        return self.net.get(asset, 0)


async def _balances(session: AsyncSession, *conditions: object) -> Balances:
    statement = (
        select(BalanceChange.asset, BalanceChange.kind, func.sum(BalanceChange.amount))
        .where(*conditions)  # type: ignore[arg-type]
        .group_by(BalanceChange.asset, BalanceChange.kind)
    )
    net: dict[Asset, int] = {}
    by_kind: dict[Asset, dict[JournalKind, int]] = {}
    for asset_text, kind_text, total in (await session.execute(statement)).all():
        asset, kind = Asset(asset_text), JournalKind(kind_text)
        net[asset] = net.get(asset, 0) + int(total)
        by_kind.setdefault(asset, {})[kind] = int(total)
    return Balances(net, by_kind)


async def kale_by_kind(
    session: AsyncSession, farmer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[JournalKind, int]]:
    """Each farmer's KALE journal summed per kind, in one query (farmers without lines: {})."""
    ids = list(farmer_ids)
    out: dict[uuid.UUID, dict[JournalKind, int]] = {fid: {} for fid in ids}
    if not ids:
        return out
    statement = (
        select(BalanceChange.farmer_id, BalanceChange.kind, func.sum(BalanceChange.amount))
        .where(
            BalanceChange.account_type == AccountType.FARMER.value,
            BalanceChange.farmer_id.in_(ids),
            BalanceChange.asset == Asset.KALE.value,
        )
        .group_by(BalanceChange.farmer_id, BalanceChange.kind)
    )
    for farmer_id, kind, total in (await session.execute(statement)).all():
        if farmer_id is not None:
            out[farmer_id][JournalKind(kind)] = int(total)
    return out


async def pooler_fees_in_custody(session: AsyncSession, pooler_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Per farmer of the pooler: the pooler's fees still held in its custodial account."""
    ids = list((await session.scalars(select(Farmer.id).where(Farmer.pooler_id == pooler_id))).all())
    return {fid: pooler_fees_held(sums) for fid, sums in (await kale_by_kind(session, ids)).items()}


async def compensations_due(session: AsyncSession, pooler_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Per farmer of the pooler: the compensation owed to it for pails that ended
    ``unworked`` (final: only a harvest reverses a compensation), less what was settled."""
    farmers = select(Farmer.id).where(Farmer.pooler_id == pooler_id)
    owed = (
        select(BalanceChange.farmer_id, func.sum(BalanceChange.amount))
        .join(
            Pail,
            and_(Pail.farmer_id == BalanceChange.farmer_id, Pail.block_index == BalanceChange.block_index),
        )
        .where(
            BalanceChange.account_type == AccountType.FARMER.value,
            BalanceChange.farmer_id.in_(farmers),
            BalanceChange.kind == JournalKind.COMPENSATION.value,
            Pail.state == PailState.UNWORKED.value,
        )
        .group_by(BalanceChange.farmer_id)
    )
    settled = (
        select(BalanceChange.farmer_id, func.sum(BalanceChange.amount))
        .where(
            BalanceChange.account_type == AccountType.FARMER.value,
            BalanceChange.farmer_id.in_(farmers),
            BalanceChange.kind == JournalKind.COMPENSATION_SETTLED.value,
        )
        .group_by(BalanceChange.farmer_id)
    )
    due: dict[uuid.UUID, int] = {fid: int(t) for fid, t in (await session.execute(owed)).all() if fid}
    for fid, total in (await session.execute(settled)).all():
        if fid in due:
            due[fid] += int(total)
    return {fid: amount for fid, amount in due.items() if amount > 0}


async def platform_fees_in_custody(session: AsyncSession) -> dict[uuid.UUID, int]:
    """Per farmer still holding some: the platform's fees in its custodial account."""
    kinds = [JournalKind.PLATFORM_FEE.value, JournalKind.PLATFORM_FEE_SETTLED.value]
    total = func.sum(BalanceChange.amount)
    query = (
        select(BalanceChange.farmer_id, total)
        .where(
            BalanceChange.account_type == AccountType.FARMER.value,
            BalanceChange.kind.in_(kinds),
            BalanceChange.asset == Asset.KALE.value,
        )
        .group_by(BalanceChange.farmer_id)
        .having(total < 0)
    )
    return {fid: -int(t) for fid, t in (await session.execute(query)).all() if fid is not None}


async def farmer_balances(session: AsyncSession, farmer_id: uuid.UUID) -> Balances:
    return await _balances(
        session, BalanceChange.farmer_id == farmer_id, BalanceChange.account_type == AccountType.FARMER.value
    )


async def pooler_balances(session: AsyncSession, pooler_id: uuid.UUID) -> Balances:
    return await _balances(
        session, BalanceChange.pooler_id == pooler_id, BalanceChange.account_type == AccountType.POOLER.value
    )


async def platform_balances(session: AsyncSession) -> Balances:
    return await _balances(session, BalanceChange.account_type == AccountType.PLATFORM.value)


async def statement(
    session: AsyncSession, farmer_id: uuid.UUID, *, limit: int = 50
) -> Sequence[BalanceChange]:
    """A farmer's newest journal lines first."""
    query = (
        select(BalanceChange)
        .where(BalanceChange.farmer_id == farmer_id)
        .order_by(BalanceChange.id.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()
