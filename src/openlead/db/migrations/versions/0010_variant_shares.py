"""sequence_steps: each variant's share of its step's leads (SmartLead's percentages)

``distribution_percentage`` is null for a step whose variants share its leads evenly (every
step before this migration), and for a step split by hand holds each variant's percentage,
which add up to 100 over the step.

Revision ID: 0010_variant_shares
Revises: 0009_ids_never_reused
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_variant_shares"
down_revision: str | None = "0009_ids_never_reused"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: no table rebuild on SQLite, no rewrite on PostgreSQL.
    op.add_column(
        "sequence_steps", sa.Column("distribution_percentage", sa.Integer(), nullable=True)
    )


def downgrade() -> None:
    # Plain SQL on both (SQLite 3.35 and later): a batch rebuild would lose 0009's AUTOINCREMENT.
    op.execute("ALTER TABLE sequence_steps DROP COLUMN distribution_percentage")
