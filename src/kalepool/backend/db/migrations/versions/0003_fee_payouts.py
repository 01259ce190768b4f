"""Fee payouts: journal kinds for fees sent to a pooler or the platform; payout sources.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

A pooler's share of a reward (and the platform's fee) stays in the farmer's custodial
account until the payout worker sends it to the pooler's account (the platform wallet).
That payment is journaled on the farmer as ``pooler_fee_sent`` / ``platform_fee_sent``
(KALE left the custodial account) and ``pooler_fee_settled`` / ``platform_fee_settled``
(the fee debt paid, so the farmer's own balance is unchanged), and on the pooler (the
platform) as ``payout``. A compensation a pooler owes is paid out of its fees into the
farmer's custodial account: ``compensation_received`` (custodial) and
``compensation_settled`` on that farmer. ``payouts`` gains ``source_farmer_id`` (the
custodial account a fee payout is sent from), ``recipient_farmer_id`` (the farmer a
compensation is paid to) and platform payouts.
``pails`` gains a partial index on ``claimed_by``: claim holders renew their leases by it.
"""

# ruff: noqa: E501
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "kind IN ('deposit', 'stake_burned', 'stake_returned', 'reward', 'pooler_fee', 'platform_fee', 'pooler_share', 'fee_income', 'compensation', 'compensation_owed', 'payout', 'payout_reversed', 'pooler_fee_sent', 'pooler_fee_settled', 'platform_fee_sent', 'platform_fee_settled', 'compensation_received', 'compensation_settled', 'xlm_fee', 'adjustment')"
_KIND_RULES = "(kind = 'deposit' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE', 'XLM')) OR (kind = 'stake_burned' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'stake_returned' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'reward' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_fee' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'platform_fee' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_share' AND amount > 0 AND account_type IN ('pooler') AND asset IN ('KALE')) OR (kind = 'fee_income' AND amount > 0 AND account_type IN ('platform') AND asset IN ('KALE')) OR (kind = 'compensation' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'compensation_owed' AND amount < 0 AND account_type IN ('pooler') AND asset IN ('KALE')) OR (kind = 'payout' AND amount < 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM')) OR (kind = 'payout_reversed' AND amount > 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM')) OR (kind = 'pooler_fee_sent' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_fee_settled' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'platform_fee_sent' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'platform_fee_settled' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'compensation_received' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'compensation_settled' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'xlm_fee' AND amount < 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('XLM')) OR (kind = 'adjustment' AND amount <> 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM'))"
_OLD_KINDS = "kind IN ('deposit', 'stake_burned', 'stake_returned', 'reward', 'pooler_fee', 'platform_fee', 'pooler_share', 'fee_income', 'compensation', 'compensation_owed', 'payout', 'payout_reversed', 'xlm_fee', 'adjustment')"
_OLD_KIND_RULES = "(kind = 'deposit' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE', 'XLM')) OR (kind = 'stake_burned' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'stake_returned' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'reward' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_fee' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'platform_fee' AND amount < 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'pooler_share' AND amount > 0 AND account_type IN ('pooler') AND asset IN ('KALE')) OR (kind = 'fee_income' AND amount > 0 AND account_type IN ('platform') AND asset IN ('KALE')) OR (kind = 'compensation' AND amount > 0 AND account_type IN ('farmer') AND asset IN ('KALE')) OR (kind = 'compensation_owed' AND amount < 0 AND account_type IN ('pooler') AND asset IN ('KALE')) OR (kind = 'payout' AND amount < 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM')) OR (kind = 'payout_reversed' AND amount > 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM')) OR (kind = 'xlm_fee' AND amount < 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('XLM')) OR (kind = 'adjustment' AND amount <> 0 AND account_type IN ('farmer', 'platform', 'pooler') AND asset IN ('KALE', 'XLM'))"


_PAYOUT_ACCOUNT = (
    "(account_type = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL)"
    " OR (account_type = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL)"
    " OR (account_type = 'platform' AND pooler_id IS NULL AND farmer_id IS NULL)"
)
_OLD_PAYOUT_ACCOUNT = (
    "(account_type = 'farmer' AND farmer_id IS NOT NULL AND pooler_id IS NULL)"
    " OR (account_type = 'pooler' AND pooler_id IS NOT NULL AND farmer_id IS NULL)"
)


def _payout_accounts(types: str, accounts: str) -> None:
    op.drop_constraint(op.f("ck_payouts_account_type"), "payouts", type_="check")
    op.drop_constraint(op.f("ck_payouts_account"), "payouts", type_="check")
    op.create_check_constraint(op.f("ck_payouts_account_type"), "payouts", types)
    op.create_check_constraint(op.f("ck_payouts_account"), "payouts", accounts)


def _kind_constraints(kinds: str, rules: str) -> None:
    op.drop_constraint(op.f("ck_balance_changes_kind"), "balance_changes", type_="check")
    op.drop_constraint(op.f("ck_balance_changes_kind_rules"), "balance_changes", type_="check")
    op.create_check_constraint(op.f("ck_balance_changes_kind"), "balance_changes", kinds)
    op.create_check_constraint(op.f("ck_balance_changes_kind_rules"), "balance_changes", rules)


def upgrade() -> None:
    _kind_constraints(_KINDS, _KIND_RULES)
    _payout_accounts("account_type IN ('farmer', 'pooler', 'platform')", _PAYOUT_ACCOUNT)
    op.add_column("payouts", sa.Column("source_farmer_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_payouts_source_farmer_id_farmers"), "payouts", "farmers", ["source_farmer_id"], ["id"]
    )
    op.create_check_constraint(
        op.f("ck_payouts_source"), "payouts", "(account_type = 'farmer') = (source_farmer_id IS NULL)"
    )
    op.add_column("payouts", sa.Column("recipient_farmer_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_payouts_recipient_farmer_id_farmers"), "payouts", "farmers", ["recipient_farmer_id"], ["id"]
    )
    op.create_check_constraint(
        op.f("ck_payouts_recipient"), "payouts", "recipient_farmer_id IS NULL OR account_type = 'pooler'"
    )
    op.create_index(
        op.f("ix_pails_claimed_by"),
        "pails",
        ["claimed_by"],
        unique=False,
        postgresql_where=sa.text("claimed_by IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pails_claimed_by"), table_name="pails", postgresql_where=sa.text("claimed_by IS NOT NULL"))
    op.drop_constraint(op.f("ck_payouts_recipient"), "payouts", type_="check")
    op.drop_constraint(op.f("fk_payouts_recipient_farmer_id_farmers"), "payouts", type_="foreignkey")
    op.drop_column("payouts", "recipient_farmer_id")
    op.drop_constraint(op.f("ck_payouts_source"), "payouts", type_="check")
    op.drop_constraint(op.f("fk_payouts_source_farmer_id_farmers"), "payouts", type_="foreignkey")
    op.drop_column("payouts", "source_farmer_id")
    # refused (check violation) once platform payouts or fee lines exist: the journal is append-only
    _payout_accounts("account_type IN ('farmer', 'pooler')", _OLD_PAYOUT_ACCOUNT)
    _kind_constraints(_OLD_KINDS, _OLD_KIND_RULES)
