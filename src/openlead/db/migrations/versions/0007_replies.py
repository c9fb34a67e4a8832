"""replies: the inbox of each mailbox, its read cursor, and messages by Message-ID

The columns say how to read each mailbox's inbox and where its reading got to; the index finds
the email a reply answers. A mailbox's inbox is read over IMAP (``imap_host``); the login is
the SMTP one unless ``imap_user_name``/``imap_password`` say otherwise. ``imap_uidvalidity``
and ``imap_last_uid`` are the cursor: the last message of the inbox that was read (IMAP UIDs
only grow, until the server changes UIDVALIDITY). ``imap_checked_at`` is also the claim that
keeps two workers from reading one inbox at once.

Revision ID: 0007_replies
Revises: 0006_mailbox_last_claim
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_replies"
down_revision: str | None = "0006_mailbox_last_claim"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _columns() -> list[sa.Column]:
    return [
        sa.Column("imap_security", sa.String(8), nullable=True),
        sa.Column("imap_user_name", sa.String(320), nullable=True),
        sa.Column("imap_password_encrypted", sa.Text(), nullable=True),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_last_uid", sa.BigInteger(), nullable=True),
        sa.Column("imap_checked_at", _TS, nullable=True),
        sa.Column("imap_error", sa.Text(), nullable=True),
    ]


def upgrade() -> None:
    for column in _columns():
        op.add_column("email_accounts", column)
    op.create_index(
        op.f("ix_messages_account_id_message_id"), "messages", ["account_id", "message_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_account_id_message_id"), table_name="messages")
    for column in reversed(_columns()):
        op.drop_column("email_accounts", column.name)
