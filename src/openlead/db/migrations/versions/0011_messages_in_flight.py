"""messages: an index of the messages in flight (state "sending")

The outcomes of a group of sends are written by message id, on the condition that each is
still "sending". With statistics that lag behind a fast-growing ``messages`` table (a new
install's first campaign), PostgreSQL took "sending" rows to be a handful and read the whole
table for every group. A partial index of the messages in flight holds only the ones marked
and not yet settled, so finding them costs what is in flight, not what was ever sent.

Revision ID: 0011_messages_in_flight
Revises: 0010_variant_shares
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_messages_in_flight"
down_revision: str | None = "0010_variant_shares"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_IN_FLIGHT = sa.text("state = 'sending'")


def upgrade() -> None:
    op.create_index(
        "ix_messages_sending",
        "messages",
        ["account_id", "id"],
        sqlite_where=_IN_FLIGHT,
        postgresql_where=_IN_FLIGHT,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_sending", table_name="messages")
