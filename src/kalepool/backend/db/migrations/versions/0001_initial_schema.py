"""Initial schema: actors, append-only events and journal, state tables, immutability trigger.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

The CHECK constraints spell out the value sets of ``kalepool.backend.enums`` as they were
at this revision; a later change to those sets needs its own migration.
"""
# ruff: noqa: E501

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Tables whose rows never change once written.
IMMUTABLE_TABLES = ("plantings", "works", "harvests", "pooler_compensations", "balance_changes")

REJECT_CHANGE = """
CREATE FUNCTION kalepool_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % rejected', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'record a new event (or a compensating journal entry) instead';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "poolers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("reward_share_bps", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_farmers", sa.Integer(), nullable=True),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_heartbeat", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('active', 'suspended')", name=op.f("ck_poolers_status")),
        sa.CheckConstraint("max_farmers IS NULL OR max_farmers > 0", name=op.f("ck_poolers_max_farmers")),
        sa.CheckConstraint("reward_share_bps BETWEEN 0 AND 10000", name=op.f("ck_poolers_reward_share_bps")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_poolers")),
        sa.UniqueConstraint("name", name=op.f("uq_poolers_name")),
    )
    op.create_table(
        "block_operations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("entropy", sa.LargeBinary(), nullable=True),
        sa.Column("plant_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plant_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("work_reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("harvest_completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("farmers_planted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("farmers_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("works_accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("works_rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("harvests_succeeded", sa.Integer(), server_default="0", nullable=False),
        sa.Column("harvests_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("total_staked", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_rewards", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_compensation", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("xlm_fees", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "block_index BETWEEN 0 AND 4294967295", name=op.f("ck_block_operations_block_index")
        ),
        sa.CheckConstraint(
            "entropy IS NULL OR octet_length(entropy) = 32", name=op.f("ck_block_operations_entropy")
        ),
        sa.ForeignKeyConstraint(
            ["pooler_id"], ["poolers.id"], name=op.f("fk_block_operations_pooler_id_poolers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_block_operations")),
        sa.UniqueConstraint(
            "block_index", "pooler_id", name=op.f("uq_block_operations_block_index_pooler_id")
        ),
    )
    op.create_index(
        op.f("ix_block_operations_pooler_id_block_index"),
        "block_operations",
        ["pooler_id", "block_index"],
        unique=False,
    )
    op.create_table(
        "farmers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("secret_key_id", sa.Text(), nullable=False),
        sa.Column("secret_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("secret_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("payout_wallet", sa.Text(), nullable=False),
        sa.Column("stake_bps", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("funding_state", sa.Text(), server_default="unfunded", nullable=False),
        sa.Column("funded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "funding_state IN ('unfunded', 'funded', 'ready')", name=op.f("ck_farmers_funding_state")
        ),
        sa.CheckConstraint("status IN ('active', 'leaving', 'departed')", name=op.f("ck_farmers_status")),
        sa.CheckConstraint("octet_length(secret_nonce) = 12", name=op.f("ck_farmers_secret_nonce")),
        sa.CheckConstraint("stake_bps BETWEEN 0 AND 10000", name=op.f("ck_farmers_stake_bps")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_farmers_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_farmers")),
        sa.UniqueConstraint("public_key", name=op.f("uq_farmers_public_key")),
    )
    op.create_index(
        op.f("ix_farmers_pooler_id_status_funding_state"),
        "farmers",
        ["pooler_id", "status", "funding_state"],
        unique=False,
    )
    op.create_index(op.f("ix_farmers_secret_key_id"), "farmers", ["secret_key_id"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=True),
        sa.Column("farmer_id", sa.Uuid(), nullable=True),
        sa.Column("key_hash", sa.LargeBinary(), nullable=False),
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL) OR (kind = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL)",
            name=op.f("ck_api_keys_owner"),
        ),
        sa.CheckConstraint("kind IN ('pooler', 'farmer')", name=op.f("ck_api_keys_kind")),
        sa.CheckConstraint("octet_length(key_hash) = 32", name=op.f("ck_api_keys_key_hash")),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_api_keys_farmer_id_farmers")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_api_keys_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(
        op.f("ix_api_keys_farmer_id"),
        "api_keys",
        ["farmer_id"],
        unique=False,
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_api_keys_pooler_id"),
        "api_keys",
        ["pooler_id"],
        unique=False,
        postgresql_where=sa.text("pooler_id IS NOT NULL"),
    )
    op.create_table(
        "balance_changes",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("account_type", sa.Text(), nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=True),
        sa.Column("pooler_id", sa.Uuid(), nullable=True),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=True),
        sa.Column("reference", sa.Text(), server_default="", nullable=False),
        sa.Column("usage", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(account_type = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL) OR (account_type = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL) OR (account_type = 'platform' AND farmer_id IS NULL AND pooler_id IS NULL)",
            name=op.f("ck_balance_changes_account"),
        ),
        sa.CheckConstraint(
            "(kind = 'deposit' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE', 'XLM')) OR (kind = 'stake_burned' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'stake_returned' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'reward' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_fee' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'platform_fee' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_share' AND amount > 0 AND account_type IN ('pooler') AND asset IN ('KALE')) OR (kind = 'fee_income' AND amount > 0 AND account_type IN ('platform') AND asset IN ('KALE')) OR (kind = 'compensation' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'compensation_owed' AND amount < 0 AND account_type IN ('pooler') AND asset IN ('KALE')) OR (kind = 'payout' AND amount < 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM')) OR (kind = 'payout_reversed' AND amount > 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM')) OR (kind = 'xlm_fee' AND amount < 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('XLM')) OR (kind = 'adjustment' AND amount <> 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM'))",
            name=op.f("ck_balance_changes_kind_rules"),
        ),
        sa.CheckConstraint(
            "account_type IN ('farmer', 'pooler', 'platform')", name=op.f("ck_balance_changes_account_type")
        ),
        sa.CheckConstraint("asset IN ('KALE', 'XLM')", name=op.f("ck_balance_changes_asset")),
        sa.CheckConstraint(
            "kind IN ('deposit', 'stake_burned', 'stake_returned', 'reward', 'pooler_fee', 'platform_fee', 'pooler_share', 'fee_income', 'compensation', 'compensation_owed', 'payout', 'payout_reversed', 'xlm_fee', 'adjustment')",
            name=op.f("ck_balance_changes_kind"),
        ),
        sa.CheckConstraint(
            "block_index IS NULL OR block_index BETWEEN 0 AND 4294967295",
            name=op.f("ck_balance_changes_block_index"),
        ),
        sa.ForeignKeyConstraint(
            ["farmer_id"], ["farmers.id"], name=op.f("fk_balance_changes_farmer_id_farmers")
        ),
        sa.ForeignKeyConstraint(
            ["pooler_id"], ["poolers.id"], name=op.f("fk_balance_changes_pooler_id_poolers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_changes")),
    )
    op.create_index(
        op.f("ix_balance_changes_farmer_id_asset"),
        "balance_changes",
        ["farmer_id", "asset"],
        unique=False,
        postgresql_include=["amount"],
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_balance_changes_farmer_id_id"),
        "balance_changes",
        ["farmer_id", "id"],
        unique=False,
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_balance_changes_pooler_id_asset"),
        "balance_changes",
        ["pooler_id", "asset"],
        unique=False,
        postgresql_include=["amount"],
        postgresql_where=sa.text("pooler_id IS NOT NULL"),
    )
    op.create_index(
        "uq_balance_changes_idempotency",
        "balance_changes",
        ["account_type", "farmer_id", "pooler_id", "kind", "asset", "block_index", "reference"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )
    op.create_table(
        "harvests",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("reward", sa.BigInteger(), nullable=True),
        sa.Column("stake_returned", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.Text(), nullable=True),
        sa.Column("fee_charged", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status <> 'failed' OR error_code IS NOT NULL", name=op.f("ck_harvests_failed_has_error")
        ),
        sa.CheckConstraint(
            "status <> 'succeeded' OR (tx_hash IS NOT NULL AND reward >= 0 AND stake_returned >= 0)",
            name=op.f("ck_harvests_succeeded_has_amounts"),
        ),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name=op.f("ck_harvests_status")),
        sa.CheckConstraint("block_index BETWEEN 0 AND 4294967295", name=op.f("ck_harvests_block_index")),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_harvests_farmer_id_farmers")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_harvests_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_harvests")),
    )
    op.create_index(op.f("ix_harvests_block_index"), "harvests", ["block_index"], unique=False)
    op.create_index(
        op.f("ix_harvests_farmer_id_created_at"), "harvests", ["farmer_id", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_harvests_pooler_id_block_index"), "harvests", ["pooler_id", "block_index"], unique=False
    )
    op.create_index(
        "uq_harvests_one_success",
        "harvests",
        ["farmer_id", "block_index"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.create_table(
        "pails",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("stake_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "state IN ('planting', 'planted', 'plant_failed', 'worked', 'unworked', 'harvesting', 'harvested', 'lost')",
            name=op.f("ck_pails_state"),
        ),
        sa.CheckConstraint("block_index BETWEEN 0 AND 4294967295", name=op.f("ck_pails_block_index")),
        sa.CheckConstraint("stake_amount >= 0", name=op.f("ck_pails_stake_amount")),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_pails_farmer_id_farmers")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_pails_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pails")),
        sa.UniqueConstraint("farmer_id", "block_index", name=op.f("uq_pails_farmer_id_block_index")),
    )
    op.create_index(
        op.f("ix_pails_pooler_id_block_index"), "pails", ["pooler_id", "block_index"], unique=False
    )
    op.create_index(
        op.f("ix_pails_state_block_index"),
        "pails",
        ["state", "block_index"],
        unique=False,
        postgresql_where=sa.text("state IN ('planting', 'planted', 'worked', 'harvesting')"),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("account_type", sa.Text(), nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=True),
        sa.Column("pooler_id", sa.Uuid(), nullable=True),
        sa.Column("asset", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("tx_hash", sa.Text(), nullable=True),
        sa.Column("envelope_xdr", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "(account_type = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL) OR (account_type = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL)",
            name=op.f("ck_payouts_account"),
        ),
        sa.CheckConstraint("account_type IN ('farmer', 'pooler')", name=op.f("ck_payouts_account_type")),
        sa.CheckConstraint("asset IN ('KALE', 'XLM')", name=op.f("ck_payouts_asset")),
        sa.CheckConstraint(
            "status <> 'submitted' OR tx_hash IS NOT NULL", name=op.f("ck_payouts_submitted_has_tx")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'submitted', 'confirmed', 'failed')", name=op.f("ck_payouts_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_payouts_amount")),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_payouts_farmer_id_farmers")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_payouts_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
    )
    op.create_index(
        op.f("ix_payouts_farmer_id_created_at"),
        "payouts",
        ["farmer_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_payouts_pooler_id_created_at"),
        "payouts",
        ["pooler_id", "created_at"],
        unique=False,
        postgresql_where=sa.text("pooler_id IS NOT NULL"),
    )
    op.create_index(
        op.f("ix_payouts_status"),
        "payouts",
        ["status"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'submitted')"),
    )
    op.create_table(
        "plantings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stake_amount", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.Text(), nullable=True),
        sa.Column("entropy", sa.LargeBinary(), nullable=True),
        sa.Column("fee_charged", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("attributed_to", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "attributed_to IS NULL OR attributed_to IN ('farmer', 'pooler', 'backend', 'chain')",
            name=op.f("ck_plantings_attributed_to"),
        ),
        sa.CheckConstraint(
            "status <> 'failed' OR (error_code IS NOT NULL AND attributed_to IS NOT NULL)",
            name=op.f("ck_plantings_failed_has_error"),
        ),
        sa.CheckConstraint(
            "status <> 'succeeded' OR (tx_hash IS NOT NULL AND octet_length(entropy) = 32)",
            name=op.f("ck_plantings_succeeded_has_tx"),
        ),
        sa.CheckConstraint("status IN ('succeeded', 'failed')", name=op.f("ck_plantings_status")),
        sa.CheckConstraint("block_index BETWEEN 0 AND 4294967295", name=op.f("ck_plantings_block_index")),
        sa.CheckConstraint("stake_amount >= 0", name=op.f("ck_plantings_stake_amount")),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_plantings_farmer_id_farmers")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_plantings_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plantings")),
    )
    op.create_index(op.f("ix_plantings_block_index"), "plantings", ["block_index"], unique=False)
    op.create_index(
        op.f("ix_plantings_farmer_id_created_at"), "plantings", ["farmer_id", "created_at"], unique=False
    )
    op.create_index(
        op.f("ix_plantings_pooler_id_block_index"), "plantings", ["pooler_id", "block_index"], unique=False
    )
    op.create_index(
        "uq_plantings_one_success",
        "plantings",
        ["farmer_id", "block_index"],
        unique=True,
        postgresql_where=sa.text("status = 'succeeded'"),
    )
    op.create_table(
        "pooler_compensations",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "reason IN ('not_worked', 'invalid_work')", name=op.f("ck_pooler_compensations_reason")
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_pooler_compensations_amount")),
        sa.CheckConstraint(
            "block_index BETWEEN 0 AND 4294967295", name=op.f("ck_pooler_compensations_block_index")
        ),
        sa.ForeignKeyConstraint(
            ["farmer_id"], ["farmers.id"], name=op.f("fk_pooler_compensations_farmer_id_farmers")
        ),
        sa.ForeignKeyConstraint(
            ["pooler_id"], ["poolers.id"], name=op.f("fk_pooler_compensations_pooler_id_poolers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pooler_compensations")),
        sa.UniqueConstraint(
            "farmer_id", "block_index", name=op.f("uq_pooler_compensations_farmer_id_block_index")
        ),
    )
    op.create_index(
        op.f("ix_pooler_compensations_block_index"), "pooler_compensations", ["block_index"], unique=False
    )
    op.create_index(
        op.f("ix_pooler_compensations_pooler_id_created_at"),
        "pooler_compensations",
        ["pooler_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "works",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("farmer_id", sa.Uuid(), nullable=False),
        sa.Column("pooler_id", sa.Uuid(), nullable=False),
        sa.Column("block_index", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("nonce", sa.Numeric(precision=20, scale=0), nullable=True),
        sa.Column("hash", sa.LargeBinary(), nullable=True),
        sa.Column("zeros", sa.Integer(), nullable=True),
        sa.Column("gap", sa.Integer(), nullable=True),
        sa.Column("tx_hash", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "status <> 'accepted' OR (nonce IS NOT NULL AND hash IS NOT NULL AND zeros IS NOT NULL AND gap IS NOT NULL)",
            name=op.f("ck_works_accepted_is_complete"),
        ),
        sa.CheckConstraint(
            "status <> 'rejected' OR reason IS NOT NULL", name=op.f("ck_works_rejected_has_reason")
        ),
        sa.CheckConstraint("status IN ('accepted', 'rejected')", name=op.f("ck_works_status")),
        sa.CheckConstraint("block_index BETWEEN 0 AND 4294967295", name=op.f("ck_works_block_index")),
        sa.CheckConstraint("gap IS NULL OR gap >= 0", name=op.f("ck_works_gap")),
        sa.CheckConstraint("hash IS NULL OR octet_length(hash) = 32", name=op.f("ck_works_hash")),
        sa.CheckConstraint(
            "nonce IS NULL OR nonce BETWEEN 0 AND 18446744073709551615", name=op.f("ck_works_nonce")
        ),
        sa.CheckConstraint("zeros IS NULL OR zeros BETWEEN 0 AND 64", name=op.f("ck_works_zeros")),
        sa.ForeignKeyConstraint(["farmer_id"], ["farmers.id"], name=op.f("fk_works_farmer_id_farmers")),
        sa.ForeignKeyConstraint(["pooler_id"], ["poolers.id"], name=op.f("fk_works_pooler_id_poolers")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_works")),
    )
    op.create_index(op.f("ix_works_block_index"), "works", ["block_index"], unique=False)
    op.create_index(op.f("ix_works_farmer_id_created_at"), "works", ["farmer_id", "created_at"], unique=False)
    op.create_index(
        op.f("ix_works_pooler_id_block_index"), "works", ["pooler_id", "block_index"], unique=False
    )
    op.create_index(
        "uq_works_one_accepted",
        "works",
        ["farmer_id", "block_index"],
        unique=True,
        postgresql_where=sa.text("status = 'accepted'"),
    )

    op.execute(REJECT_CHANGE)
    for table in IMMUTABLE_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION kalepool_reject_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION kalepool_reject_change()"
        )


def downgrade() -> None:
    for table in IMMUTABLE_TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
    op.execute("DROP FUNCTION IF EXISTS kalepool_reject_change()")
    op.drop_index(
        "uq_works_one_accepted", table_name="works", postgresql_where=sa.text("status = 'accepted'")
    )
    op.drop_index(op.f("ix_works_pooler_id_block_index"), table_name="works")
    op.drop_index(op.f("ix_works_farmer_id_created_at"), table_name="works")
    op.drop_index(op.f("ix_works_block_index"), table_name="works")
    op.drop_table("works")
    op.drop_index(op.f("ix_pooler_compensations_pooler_id_created_at"), table_name="pooler_compensations")
    op.drop_index(op.f("ix_pooler_compensations_block_index"), table_name="pooler_compensations")
    op.drop_table("pooler_compensations")
    op.drop_index(
        "uq_plantings_one_success", table_name="plantings", postgresql_where=sa.text("status = 'succeeded'")
    )
    op.drop_index(op.f("ix_plantings_pooler_id_block_index"), table_name="plantings")
    op.drop_index(op.f("ix_plantings_farmer_id_created_at"), table_name="plantings")
    op.drop_index(op.f("ix_plantings_block_index"), table_name="plantings")
    op.drop_table("plantings")
    op.drop_index(
        op.f("ix_payouts_status"),
        table_name="payouts",
        postgresql_where=sa.text("status IN ('pending', 'submitted')"),
    )
    op.drop_index(
        op.f("ix_payouts_pooler_id_created_at"),
        table_name="payouts",
        postgresql_where=sa.text("pooler_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("ix_payouts_farmer_id_created_at"),
        table_name="payouts",
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.drop_table("payouts")
    op.drop_index(
        op.f("ix_pails_state_block_index"),
        table_name="pails",
        postgresql_where=sa.text("state IN ('planting', 'planted', 'worked', 'harvesting')"),
    )
    op.drop_index(op.f("ix_pails_pooler_id_block_index"), table_name="pails")
    op.drop_table("pails")
    op.drop_index(
        "uq_harvests_one_success", table_name="harvests", postgresql_where=sa.text("status = 'succeeded'")
    )
    op.drop_index(op.f("ix_harvests_pooler_id_block_index"), table_name="harvests")
    op.drop_index(op.f("ix_harvests_farmer_id_created_at"), table_name="harvests")
    op.drop_index(op.f("ix_harvests_block_index"), table_name="harvests")
    op.drop_table("harvests")
    op.drop_index(
        "uq_balance_changes_idempotency", table_name="balance_changes", postgresql_nulls_not_distinct=True
    )
    op.drop_index(
        op.f("ix_balance_changes_pooler_id_asset"),
        table_name="balance_changes",
        postgresql_include=["amount"],
        postgresql_where=sa.text("pooler_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("ix_balance_changes_farmer_id_id"),
        table_name="balance_changes",
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("ix_balance_changes_farmer_id_asset"),
        table_name="balance_changes",
        postgresql_include=["amount"],
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.drop_table("balance_changes")
    op.drop_index(
        op.f("ix_api_keys_pooler_id"),
        table_name="api_keys",
        postgresql_where=sa.text("pooler_id IS NOT NULL"),
    )
    op.drop_index(
        op.f("ix_api_keys_farmer_id"),
        table_name="api_keys",
        postgresql_where=sa.text("farmer_id IS NOT NULL"),
    )
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_farmers_secret_key_id"), table_name="farmers")
    op.drop_index(op.f("ix_farmers_pooler_id_status_funding_state"), table_name="farmers")
    op.drop_table("farmers")
    op.drop_index(op.f("ix_block_operations_pooler_id_block_index"), table_name="block_operations")
    op.drop_table("block_operations")
    op.drop_table("poolers")
