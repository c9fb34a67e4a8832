"""email_accounts: the moment of a mailbox's last claimed send, instead of when it is free

``next_free_at`` held "now + the claiming campaign's gap", so a mailbox shared by campaigns
kept the gap of whichever campaign claimed last, and a campaign without a gap neither waited
for it nor moved it. ``last_claimed_at`` is when the mailbox last took a send; each campaign
adds its own gap to it.

The values are kept: an old ``next_free_at`` is later than the claim it came from, so the
first send after the upgrade waits at most one gap longer than it needs to, never less.

Revision ID: 0006_mailbox_last_claim
Revises: 0005_sending
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006_mailbox_last_claim"
down_revision: str | None = "0005_sending"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # RENAME COLUMN is plain SQL on PostgreSQL and on SQLite (3.25 and later): no table rebuild.
    op.execute("ALTER TABLE email_accounts RENAME COLUMN next_free_at TO last_claimed_at")


def downgrade() -> None:
    op.execute("ALTER TABLE email_accounts RENAME COLUMN last_claimed_at TO next_free_at")
