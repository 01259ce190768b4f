"""The backend's tables (SQLAlchemy 2 declarative). The migrations create exactly these.

Three families:

* **Actors** (mutable rows): ``poolers``, ``farmers``, ``api_keys``.
* **Events** (append-only, a trigger rejects UPDATE, DELETE and TRUNCATE): ``plantings``,
  ``works``, ``harvests``, ``pooler_compensations`` and the ``balance_changes`` journal.
  A partial unique index allows one *successful* planting, accepted work and successful
  harvest per (farmer, block); failed attempts are kept as further rows.
* **State** (mutable, derived from events, used as work queues): ``pails`` (one row per
  farmer and block, claimed with ``FOR UPDATE SKIP LOCKED``), ``block_operations`` (one
  row per block and pooler: timings, counts, totals) and ``payouts`` (intent first).

Amounts are ``BIGINT`` stroops; block indexes are ``BIGINT`` holding a ``u32``; secrets
exist only as AES-GCM ciphertext on ``farmers`` (see :mod:`kalepool.backend.custody`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kalepool.backend.enums import (
    JOURNAL_KINDS,
    AccountType,
    ApiKeyKind,
    Asset,
    CompensationReason,
    EventStatus,
    FarmerStatus,
    FundingState,
    JournalKind,
    PailState,
    PayoutStatus,
    PoolerStatus,
    WorkStatus,
)

__all__ = [
    "IMMUTABLE_TABLES",
    "ApiKey",
    "BalanceChange",
    "Base",
    "BlockOperation",
    "Farmer",
    "Harvest",
    "Pail",
    "Payout",
    "Planting",
    "Pooler",
    "PoolerCompensation",
    "Work",
]

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

U32_MAX = 2**32 - 1

#: Tables whose rows never change once written (enforced by a trigger, see the migration).
IMMUTABLE_TABLES = ("plantings", "works", "harvests", "pooler_compensations", "balance_changes")


def _in(column: str, values: type[StrEnum] | list[Any]) -> str:
    items = ", ".join(f"'{v.value if isinstance(v, StrEnum) else v}'" for v in values)
    return f"{column} IN ({items})"


def _block(column: str = "block_index") -> str:
    return f"{column} BETWEEN 0 AND {U32_MAX}"


def _journal_rules() -> str:
    clauses = []
    for kind, rule in JOURNAL_KINDS.items():
        sign = {1: "amount > 0", -1: "amount < 0", 0: "amount <> 0"}[rule.sign]
        accounts = _in("account_type", sorted(rule.accounts))
        assets = _in("asset", sorted(rule.assets))
        clauses.append(f"(kind = '{kind.value}' AND {sign} AND {accounts} AND {assets})")
    return " OR ".join(clauses)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: DateTime(timezone=True),
        uuid.UUID: Uuid(),
        str: Text(),
        bytes: LargeBinary(),
        int: BigInteger(),
    }


# --- actors ---------------------------------------------------------------------------------


class Pooler(Base):
    """A mining machine's operator, known by API key. Acts only on its own farmers."""

    __tablename__ = "poolers"
    __table_args__ = (
        CheckConstraint(_in("status", PoolerStatus), name="status"),
        CheckConstraint("reward_share_bps BETWEEN 0 AND 10000", name="reward_share_bps"),
        CheckConstraint("max_farmers IS NULL OR max_farmers > 0", name="max_farmers"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(unique=True)
    #: the pooler's own Stellar account (its reward share is paid there)
    public_key: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default=PoolerStatus.ACTIVE.value)
    #: the pooler's share of its farmers' rewards, in basis points
    reward_share_bps: Mapped[int] = mapped_column(Integer, server_default="0")
    max_farmers: Mapped[int | None] = mapped_column(Integer)
    last_heartbeat_at: Mapped[datetime | None]
    last_heartbeat: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()


class Farmer(Base):
    """A custodial farmer account. The secret is only ever stored sealed (AES-GCM)."""

    __tablename__ = "farmers"
    __table_args__ = (
        CheckConstraint(_in("status", FarmerStatus), name="status"),
        CheckConstraint(_in("funding_state", FundingState), name="funding_state"),
        CheckConstraint("stake_bps BETWEEN 0 AND 10000", name="stake_bps"),
        CheckConstraint("octet_length(secret_nonce) = 12", name="secret_nonce"),
        # GET /pooler/farmers and the planter: a pooler's farmers by status and funding
        Index(None, "pooler_id", "status", "funding_state"),
        # key rotation: farmers whose secret is sealed under an old key
        Index(None, "secret_key_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    #: the custodial account (G...)
    public_key: Mapped[str] = mapped_column(unique=True)
    secret_key_id: Mapped[str]
    secret_nonce: Mapped[bytes]
    secret_ciphertext: Mapped[bytes]
    payout_wallet: Mapped[str]
    #: share of the KALE balance staked each block, in basis points (10000 = 100 %)
    stake_bps: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(server_default=FarmerStatus.ACTIVE.value)
    funding_state: Mapped[str] = mapped_column(server_default=FundingState.UNFUNDED.value)
    funded_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    def __repr__(self) -> str:  # never the sealed secret
        return f"Farmer(id={self.id}, public_key={self.public_key}, status={self.status})"


class ApiKey(Base):
    """A bearer credential: a pooler's API key or a farmer's token, stored as SHA-256."""

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL)"
            " OR (kind = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL)",
            name="owner",
        ),
        CheckConstraint(_in("kind", ApiKeyKind), name="kind"),
        CheckConstraint("octet_length(key_hash) = 32", name="key_hash"),
        Index(None, "pooler_id", postgresql_where=text("pooler_id IS NOT NULL")),
        Index(None, "farmer_id", postgresql_where=text("farmer_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    kind: Mapped[str]
    pooler_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("poolers.id"))
    farmer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("farmers.id"))
    key_hash: Mapped[bytes] = mapped_column(unique=True)
    #: the token's first characters, to tell keys apart in logs and listings
    prefix: Mapped[str]
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None]


# --- events (append-only) -------------------------------------------------------------------


class Planting(Base):
    """One plant attempt for one farmer in one block: its stake, transaction or failure."""

    __tablename__ = "plantings"
    __table_args__ = (
        CheckConstraint(_in("status", EventStatus), name="status"),
        CheckConstraint(_block(), name="block_index"),
        CheckConstraint("stake_amount >= 0", name="stake_amount"),
        CheckConstraint(
            "status <> 'succeeded' OR (tx_hash IS NOT NULL AND octet_length(entropy) = 32)",
            name="succeeded_has_tx",
        ),
        CheckConstraint(
            "status <> 'failed' OR (error_code IS NOT NULL AND attributed_to IS NOT NULL)",
            name="failed_has_error",
        ),
        CheckConstraint(
            "attributed_to IS NULL OR attributed_to IN ('farmer', 'pooler', 'backend', 'chain')",
            name="attributed_to",
        ),
        Index(
            "uq_plantings_one_success",
            "farmer_id",
            "block_index",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
        ),
        Index(None, "farmer_id", "created_at"),
        Index(None, "pooler_id", "block_index"),
        Index(None, "block_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    farmer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("farmers.id"))
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    block_index: Mapped[int]
    status: Mapped[str]
    stake_amount: Mapped[int]
    tx_hash: Mapped[str | None]
    entropy: Mapped[bytes | None]
    fee_charged: Mapped[int | None]
    error_code: Mapped[str | None]
    error_message: Mapped[str | None]
    attributed_to: Mapped[str | None]
    created_at: Mapped[datetime] = _now()


class Work(Base):
    """One work result a pooler reported for one farmer and block, accepted or rejected."""

    __tablename__ = "works"
    __table_args__ = (
        CheckConstraint(_in("status", WorkStatus), name="status"),
        CheckConstraint(_block(), name="block_index"),
        CheckConstraint("nonce IS NULL OR nonce BETWEEN 0 AND 18446744073709551615", name="nonce"),
        CheckConstraint("hash IS NULL OR octet_length(hash) = 32", name="hash"),
        CheckConstraint("zeros IS NULL OR zeros BETWEEN 0 AND 64", name="zeros"),
        CheckConstraint("gap IS NULL OR gap >= 0", name="gap"),
        CheckConstraint(
            "status <> 'accepted' OR (nonce IS NOT NULL AND hash IS NOT NULL"
            " AND zeros IS NOT NULL AND gap IS NOT NULL)",
            name="accepted_is_complete",
        ),
        CheckConstraint("status <> 'rejected' OR reason IS NOT NULL", name="rejected_has_reason"),
        Index(
            "uq_works_one_accepted",
            "farmer_id",
            "block_index",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
        ),
        Index(None, "farmer_id", "created_at"),
        Index(None, "pooler_id", "block_index"),
        Index(None, "block_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    farmer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("farmers.id"))
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    block_index: Mapped[int]
    status: Mapped[str]
    #: u64, beyond BIGINT
    nonce: Mapped[Decimal | None] = mapped_column(Numeric(20, 0))
    hash: Mapped[bytes | None]
    zeros: Mapped[int | None] = mapped_column(Integer)
    gap: Mapped[int | None] = mapped_column(Integer)
    tx_hash: Mapped[str | None]
    reason: Mapped[str | None]
    created_at: Mapped[datetime] = _now()


class Harvest(Base):
    """One harvest attempt: the reward read from the transaction result, or the failure."""

    __tablename__ = "harvests"
    __table_args__ = (
        CheckConstraint(_in("status", EventStatus), name="status"),
        CheckConstraint(_block(), name="block_index"),
        CheckConstraint(
            "status <> 'succeeded' OR (tx_hash IS NOT NULL AND reward >= 0 AND stake_returned >= 0)",
            name="succeeded_has_amounts",
        ),
        CheckConstraint("status <> 'failed' OR error_code IS NOT NULL", name="failed_has_error"),
        CheckConstraint(
            "attributed_to IS NULL OR attributed_to IN ('farmer', 'pooler', 'backend', 'chain')",
            name="attributed_to",
        ),
        Index(
            "uq_harvests_one_success",
            "farmer_id",
            "block_index",
            unique=True,
            postgresql_where=text("status = 'succeeded'"),
        ),
        Index(None, "farmer_id", "created_at"),
        Index(None, "pooler_id", "block_index"),
        Index(None, "block_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    farmer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("farmers.id"))
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    block_index: Mapped[int]
    status: Mapped[str]
    #: the reward alone (the mint is reward + stake)
    reward: Mapped[int | None]
    stake_returned: Mapped[int | None]
    tx_hash: Mapped[str | None]
    fee_charged: Mapped[int | None]
    error_code: Mapped[str | None]
    error_message: Mapped[str | None]
    #: who a failure (or a loss) is blamed on
    attributed_to: Mapped[str | None]
    created_at: Mapped[datetime] = _now()


class PoolerCompensation(Base):
    """What a pooler owes a farmer for a block it planted but did not (validly) work."""

    __tablename__ = "pooler_compensations"
    __table_args__ = (
        CheckConstraint(_in("reason", CompensationReason), name="reason"),
        CheckConstraint(_block(), name="block_index"),
        CheckConstraint("amount >= 0", name="amount"),
        UniqueConstraint("farmer_id", "block_index"),
        Index(None, "pooler_id", "created_at"),
        Index(None, "block_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    farmer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("farmers.id"))
    block_index: Mapped[int]
    reason: Mapped[str]
    amount: Mapped[int]
    detail: Mapped[str | None]
    created_at: Mapped[datetime] = _now()


class BalanceChange(Base):
    """One line of the append-only journal; every balance is a SUM over these.

    The idempotency key (account, kind, block, reference) is unique with NULLs equal, so
    recording the same fact twice inserts nothing the second time.
    """

    __tablename__ = "balance_changes"
    __table_args__ = (
        CheckConstraint(
            "(account_type = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL)"
            " OR (account_type = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL)"
            " OR (account_type = 'platform' AND farmer_id IS NULL AND pooler_id IS NULL)",
            name="account",
        ),
        CheckConstraint(_in("account_type", AccountType), name="account_type"),
        CheckConstraint(_in("asset", Asset), name="asset"),
        CheckConstraint(_in("kind", JournalKind), name="kind"),
        CheckConstraint(_journal_rules(), name="kind_rules"),
        CheckConstraint("block_index IS NULL OR " + _block(), name="block_index"),
        Index(
            "uq_balance_changes_idempotency",
            "account_type",
            "farmer_id",
            "pooler_id",
            "kind",
            "asset",
            "block_index",
            "reference",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
        # balances: SUM(amount) per account and asset, answered from the index alone
        Index(
            None,
            "farmer_id",
            "asset",
            postgresql_include=["amount"],
            postgresql_where=text("farmer_id IS NOT NULL"),
        ),
        Index(
            None,
            "pooler_id",
            "asset",
            postgresql_include=["amount"],
            postgresql_where=text("pooler_id IS NOT NULL"),
        ),
        # a farmer's statement, newest first
        Index(None, "farmer_id", "id", postgresql_where=text("farmer_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_type: Mapped[str]
    farmer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("farmers.id"))
    pooler_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("poolers.id"))
    asset: Mapped[str]
    kind: Mapped[str]
    amount: Mapped[int]
    block_index: Mapped[int | None]
    #: what makes this fact unique besides the block: a transaction hash, a payout id
    reference: Mapped[str] = mapped_column(server_default="")
    #: human-readable audit text ("stake for block 1234")
    usage: Mapped[str]
    created_at: Mapped[datetime] = _now()


# --- state (mutable, rebuilt from events if need be) ----------------------------------------


class Pail(Base):
    """One farmer's entry in one block as the backend drives it; the workers' queue row."""

    __tablename__ = "pails"
    __table_args__ = (
        CheckConstraint(_in("state", PailState), name="state"),
        CheckConstraint(_block(), name="block_index"),
        CheckConstraint("stake_amount >= 0", name="stake_amount"),
        UniqueConstraint("farmer_id", "block_index"),
        Index(None, "pooler_id", "block_index"),
        # a repeated plant-request finds the pails an earlier one made for the same block
        Index(None, "pooler_id", "requested_block_index"),
        # harvester and reconciler: claimable pails, oldest block first
        Index(
            None,
            "state",
            "block_index",
            postgresql_where=text("state IN ('planting', 'planted', 'worked', 'harvesting')"),
        ),
        # a holder renews its claims (every few seconds while it works)
        Index(None, "claimed_by", postgresql_where=text("claimed_by IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    farmer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("farmers.id"))
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    block_index: Mapped[int]
    state: Mapped[str]
    stake_amount: Mapped[int] = mapped_column(server_default="0")
    #: the block the plant-request named (``block_index`` is where the plant landed)
    requested_block_index: Mapped[int | None]
    #: intent: the signed plant / harvest transaction, recorded before it is sent
    plant_tx_hash: Mapped[str | None]
    plant_envelope_xdr: Mapped[str | None]
    harvest_tx_hash: Mapped[str | None]
    harvest_envelope_xdr: Mapped[str | None]
    #: last ledger the pail lives through on chain (temporary storage), when read
    live_until_ledger: Mapped[int | None]
    #: the last failure's code (plant_failed, lost, a failed harvest attempt)
    last_error: Mapped[str | None]
    #: which worker holds it, until when (a crashed worker's claim lapses)
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class BlockOperation(Base):
    """What happened in one block for one pooler: timings, counts and totals."""

    __tablename__ = "block_operations"
    __table_args__ = (
        CheckConstraint(_block(), name="block_index"),
        CheckConstraint("entropy IS NULL OR octet_length(entropy) = 32", name="entropy"),
        UniqueConstraint("block_index", "pooler_id"),
        Index(None, "pooler_id", "block_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    block_index: Mapped[int]
    pooler_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("poolers.id"))
    entropy: Mapped[bytes | None]
    plant_requested_at: Mapped[datetime | None]
    plant_completed_at: Mapped[datetime | None]
    work_reported_at: Mapped[datetime | None]
    harvest_completed_at: Mapped[datetime | None]
    farmers_planted: Mapped[int] = mapped_column(Integer, server_default="0")
    farmers_failed: Mapped[int] = mapped_column(Integer, server_default="0")
    works_accepted: Mapped[int] = mapped_column(Integer, server_default="0")
    works_rejected: Mapped[int] = mapped_column(Integer, server_default="0")
    harvests_succeeded: Mapped[int] = mapped_column(Integer, server_default="0")
    harvests_failed: Mapped[int] = mapped_column(Integer, server_default="0")
    total_staked: Mapped[int] = mapped_column(server_default="0")
    total_rewards: Mapped[int] = mapped_column(server_default="0")
    total_compensation: Mapped[int] = mapped_column(server_default="0")
    xlm_fees: Mapped[int] = mapped_column(server_default="0")
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Payout(Base):
    """A payment to a farmer's payout wallet, or of a pooler's or the platform's fees to
    their account, or of a compensation a pooler owes out of its fees to the custodial
    account of ``recipient_farmer_id`` (fees are sent by the custodial account of
    ``source_farmer_id``, which held them): intent recorded before sending."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint(_in("status", PayoutStatus), name="status"),
        CheckConstraint(_in("account_type", AccountType), name="account_type"),
        CheckConstraint(
            "(account_type = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL)"
            " OR (account_type = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL)"
            " OR (account_type = 'platform' AND pooler_id IS NULL AND farmer_id IS NULL)",
            name="account",
        ),
        CheckConstraint(
            "(account_type = 'farmer') = (source_farmer_id IS NULL)",
            name="source",
        ),
        CheckConstraint("recipient_farmer_id IS NULL OR account_type = 'pooler'", name="recipient"),
        CheckConstraint(_in("asset", Asset), name="asset"),
        CheckConstraint("amount > 0", name="amount"),
        CheckConstraint("status <> 'submitted' OR tx_hash IS NOT NULL", name="submitted_has_tx"),
        Index(None, "status", postgresql_where=text("status IN ('pending', 'submitted')")),
        Index(None, "farmer_id", "created_at", postgresql_where=text("farmer_id IS NOT NULL")),
        Index(None, "pooler_id", "created_at", postgresql_where=text("pooler_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_type: Mapped[str]
    farmer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("farmers.id"))
    pooler_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("poolers.id"))
    source_farmer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("farmers.id"))
    #: a compensation the pooler owes, paid to this farmer's custodial account
    recipient_farmer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("farmers.id"))
    asset: Mapped[str]
    amount: Mapped[int]
    destination: Mapped[str]
    status: Mapped[str] = mapped_column(server_default=PayoutStatus.PENDING.value)
    tx_hash: Mapped[str | None]
    envelope_xdr: Mapped[str | None]
    error: Mapped[str | None]
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
