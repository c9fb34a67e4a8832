"""sending: mailboxes, campaign schedule and settings, the per-lead send state, messages

Revision ID: 0005_sending
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005_sending"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_TS = sa.DateTime(timezone=True)
_FRESH = "next_seq = 1 AND next_send_at IS NULL AND hold IS NULL AND status = 'NOT_CONTACTED'"
_SCHEDULED = "next_send_at IS NOT NULL"


def _campaign_columns() -> list[sa.Column]:
    return [
        sa.Column("schedule_timezone", sa.String(64), nullable=True),
        sa.Column("schedule_days", _JSON, nullable=True),
        sa.Column("schedule_start_minute", sa.Integer(), nullable=True),
        sa.Column("schedule_end_minute", sa.Integer(), nullable=True),
        sa.Column("min_time_btw_emails", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("max_new_leads_per_day", sa.Integer(), nullable=False, server_default="100"),
        sa.Column("schedule_starts_at", _TS, nullable=True),
        sa.Column("track_settings", _JSON, nullable=False, server_default=sa.text("'[]'")),
        sa.Column(
            "stop_lead_settings",
            sa.String(32),
            nullable=False,
            server_default="REPLY_TO_AN_EMAIL",
        ),
        sa.Column("unsubscribe_text", sa.Text(), nullable=True),
        sa.Column(
            "send_as_plain_text", sa.Boolean(), nullable=False, server_default=sa.text("false")
        ),
        sa.Column("new_leads_day", sa.String(10), nullable=True),
        sa.Column("new_leads_today", sa.Integer(), nullable=False, server_default="0"),
    ]


def _campaign_lead_columns() -> list[sa.Column]:
    return [
        sa.Column("next_seq", sa.Integer(), nullable=True, server_default="1"),
        sa.Column("next_send_at", _TS, nullable=True),
        sa.Column("email_account_id", _ID, nullable=True),
        sa.Column("hold", sa.String(24), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_sent_at", _TS, nullable=True),
    ]


def upgrade() -> None:
    for column in _campaign_columns():
        op.add_column("campaigns", column)
    for column in _campaign_lead_columns():
        op.add_column("campaign_leads", column)
    op.create_index(
        "ix_campaign_leads_fresh",
        "campaign_leads",
        ["account_id", "campaign_id", "lead_id"],
        sqlite_where=sa.text(_FRESH),
        postgresql_where=sa.text(_FRESH),
    )
    op.create_index(
        "ix_campaign_leads_scheduled",
        "campaign_leads",
        ["account_id", "campaign_id", "email_account_id", "next_send_at"],
        sqlite_where=sa.text(_SCHEDULED),
        postgresql_where=sa.text(_SCHEDULED),
    )
    op.create_table(
        "email_accounts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("from_name", sa.String(320), nullable=False),
        sa.Column("from_email", sa.String(320), nullable=False),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("password_encrypted", sa.Text(), nullable=False),
        sa.Column("smtp_host", sa.String(255), nullable=False),
        sa.Column("smtp_port", sa.Integer(), nullable=False),
        sa.Column("smtp_security", sa.String(8), nullable=False),
        sa.Column("imap_host", sa.String(255), nullable=True),
        sa.Column("imap_port", sa.Integer(), nullable=True),
        sa.Column("max_email_per_day", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False, server_default="OK"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("retry_at", _TS, nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("sent_day", sa.String(10), nullable=True),
        sa.Column("sent_today", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_free_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_email_accounts_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_accounts")),
        sa.UniqueConstraint("account_id", "id", name=op.f("uq_email_accounts_account_id_id")),
        sa.UniqueConstraint(
            "account_id", "from_email", name=op.f("uq_email_accounts_account_id_from_email")
        ),
    )
    op.create_table(
        "campaign_email_accounts",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("email_account_id", _ID, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id", "campaign_id"],
            ["campaigns.account_id", "campaigns.id"],
            name=op.f("fk_campaign_email_accounts_account_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "email_account_id"],
            ["email_accounts.account_id", "email_accounts.id"],
            name=op.f("fk_campaign_email_accounts_account_id_email_accounts"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "account_id",
            "campaign_id",
            "email_account_id",
            name=op.f("uq_campaign_email_accounts_account_id_campaign_id_email_account_id"),
        ),
    )
    op.create_index(
        op.f("ix_campaign_email_accounts_account_id_email_account_id"),
        "campaign_email_accounts",
        ["account_id", "email_account_id"],
    )
    op.create_table(
        "messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("campaign_id", _ID, nullable=False),
        sa.Column("lead_id", _ID, nullable=False),
        sa.Column("seq_number", sa.Integer(), nullable=False),
        sa.Column("variant_label", sa.String(20), nullable=False),
        sa.Column("email_account_id", _ID, nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("lease_until", _TS, nullable=True),
        sa.Column("links", _JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("sent_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id", "campaign_id"],
            ["campaigns.account_id", "campaigns.id"],
            name=op.f("fk_messages_account_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["account_id", "lead_id"],
            ["leads.account_id", "leads.id"],
            name=op.f("fk_messages_account_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.UniqueConstraint(
            "account_id",
            "campaign_id",
            "lead_id",
            "seq_number",
            name=op.f("uq_messages_account_id_campaign_id_lead_id_seq_number"),
        ),
        sa.UniqueConstraint("account_id", "id", name=op.f("uq_messages_account_id_id")),
    )


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_index(
        op.f("ix_campaign_email_accounts_account_id_email_account_id"),
        table_name="campaign_email_accounts",
    )
    op.drop_table("campaign_email_accounts")
    op.drop_table("email_accounts")
    op.drop_index("ix_campaign_leads_scheduled", table_name="campaign_leads")
    op.drop_index("ix_campaign_leads_fresh", table_name="campaign_leads")
    with op.batch_alter_table("campaign_leads") as batch:
        for column in _campaign_lead_columns():
            batch.drop_column(column.name)
    with op.batch_alter_table("campaigns") as batch:
        for column in _campaign_columns():
            batch.drop_column(column.name)
