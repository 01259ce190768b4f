"""Chain-facing state: plant/harvest intents and TTLs on pails, attribution of harvests.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

``pails`` gains the block the plant-request named, the signed plant and harvest
transactions (recorded before sending, so a restart resumes them by hash instead of
signing again), the pail's ``liveUntilLedgerSeq`` (the harvester serves the most urgent
first) and the last error; ``harvests`` gains ``attributed_to``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAIL_COLUMNS = (
    ("requested_block_index", sa.BigInteger()),
    ("plant_tx_hash", sa.Text()),
    ("plant_envelope_xdr", sa.Text()),
    ("harvest_tx_hash", sa.Text()),
    ("harvest_envelope_xdr", sa.Text()),
    ("live_until_ledger", sa.BigInteger()),
    ("last_error", sa.Text()),
)


def upgrade() -> None:
    for name, type_ in _PAIL_COLUMNS:
        op.add_column("pails", sa.Column(name, type_, nullable=True))
    op.create_index(
        op.f("ix_pails_pooler_id_requested_block_index"),
        "pails",
        ["pooler_id", "requested_block_index"],
        unique=False,
    )
    op.add_column("harvests", sa.Column("attributed_to", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_harvests_attributed_to"),
        "harvests",
        "attributed_to IS NULL OR attributed_to IN ('farmer', 'pooler', 'backend', 'chain')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_harvests_attributed_to"), "harvests", type_="check")
    op.drop_column("harvests", "attributed_to")
    op.drop_index(op.f("ix_pails_pooler_id_requested_block_index"), table_name="pails")
    for name, _ in reversed(_PAIL_COLUMNS):
        op.drop_column("pails", name)
