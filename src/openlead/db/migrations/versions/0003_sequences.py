"""sequence steps and their A/B variants

Revision ID: 0003_sequences
Revises: 0001
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_sequences"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sequence_steps",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("seq_number", sa.Integer(), nullable=False),
        sa.Column("variant_label", sa.String(length=20), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("email_body", sa.Text(), nullable=False),
        sa.Column("delay_in_days", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "campaign_id"],
            ["campaigns.account_id", "campaigns.id"],
            name=op.f("fk_sequence_steps_account_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sequence_steps")),
        sa.UniqueConstraint(
            "account_id",
            "campaign_id",
            "seq_number",
            "variant_label",
            name="uq_sequence_steps_account_campaign_step_variant",
        ),
    )


def downgrade() -> None:
    op.drop_table("sequence_steps")
