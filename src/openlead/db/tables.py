"""Table definitions (SQLAlchemy Core).

Every table carries ``account_id`` and every unique key leads with it, so the schema can be
sharded by account later without rewriting a constraint.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# BigInteger on PostgreSQL, but INTEGER on SQLite so that it is the rowid alias.
Id = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)


def _account_fk() -> Column:
    return Column("account_id", Id, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False)


accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _account_fk(),
    # The public prefix finds the row; only a SHA-256 of the whole key is stored.
    Column("prefix", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    UniqueConstraint("account_id", "prefix"),
    Index(None, "prefix"),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # The sending schedule; no time zone means none has been set (START refuses).
    Column("schedule_timezone", String(64), nullable=True),
    Column("schedule_days", Json, nullable=True),  # 0 = Sunday
    Column("schedule_start_minute", Integer, nullable=True),  # minutes after midnight
    Column("schedule_end_minute", Integer, nullable=True),
    Column("min_time_btw_emails", Integer, nullable=False, server_default=text("10")),
    Column("max_new_leads_per_day", Integer, nullable=False, server_default=text("100")),
    Column("schedule_starts_at", Timestamp, nullable=True),
    # Settings.
    Column("track_settings", Json, nullable=False, server_default=text("'[]'")),
    Column("stop_lead_settings", String(32), nullable=False, server_default="REPLY_TO_AN_EMAIL"),
    Column("unsubscribe_text", Text, nullable=True),
    Column("send_as_plain_text", Boolean, nullable=False, server_default=text("false")),
    # New leads started on the campaign's current day (in its time zone), reserved at claim.
    Column("new_leads_day", String(10), nullable=True),
    Column("new_leads_today", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("account_id", "id"),
)

leads = Table(
    "leads",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("email", String(320), nullable=False),
    # Kept beside the address so that a domain block is an index lookup, not a LIKE scan.
    # Always the address's own domain (``addresses.domain_of``).
    Column("email_domain", String(255), nullable=False),
    Column("first_name", String(500)),
    Column("last_name", String(500)),
    Column("company_name", String(500)),
    Column("location", String(500)),
    Column("phone_number", String(500)),
    Column("website", String(2000)),
    Column("linkedin_profile", String(2000)),
    Column("company_url", String(2000)),
    Column("custom_fields", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # One index serves both lookups: an address (given with its domain, which is a function
    # of it, so this is as unique as the address alone) and a domain (the prefix). Imports
    # write addresses in random order, and each random-order index costs a dirty page per
    # lead per transaction; two such indexes were most of what a SQLite commit wrote
    # (migration 0004, docs/performance.md). Look an address up with its domain.
    UniqueConstraint("account_id", "email_domain", "email"),
    UniqueConstraint("account_id", "id"),
)

# The name the naming convention gives it, written out for SQLite's INDEXED BY.
MEMBERS_BY_STATUS_INDEX = "ix_campaign_leads_account_id_campaign_id_status_lead_id"
campaign_leads = Table(
    "campaign_leads",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("campaign_id", Id, nullable=False),
    Column("lead_id", Id, nullable=False),
    Column("status", String(24), nullable=False),
    # An import override covers only list entries that existed at import time, so the
    # sender needs to know both the flag and when the lead was added.
    Column("ignore_block_list", Boolean, nullable=False),
    Column("ignore_unsubscribe_list", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # The lead row is the job (docs/sending.md): the step to send next (NULL: the sequence is
    # over for this lead), when it is due (NULL with step 1: as soon as the campaign runs),
    # the mailbox that sends the lead's whole sequence, and why it waits, if it is held.
    Column("next_seq", Integer, nullable=True, server_default=text("1")),
    Column("next_send_at", Timestamp, nullable=True),
    Column("email_account_id", Id, nullable=True),
    Column("hold", String(24), nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_sent_at", Timestamp, nullable=True),
    UniqueConstraint("account_id", "campaign_id", "lead_id"),
    ForeignKeyConstraint(
        ["account_id", "campaign_id"],
        ["campaigns.account_id", "campaigns.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["account_id", "lead_id"], ["leads.account_id", "leads.id"], ondelete="CASCADE"
    ),
    Index(MEMBERS_BY_STATUS_INDEX, "account_id", "campaign_id", "status", "lead_id"),
    Index(None, "account_id", "lead_id"),
)

# Leads that wait for their first email: found in lead order, a page at a time. A lead leaves
# the index when it is claimed; an import appends to it.
FRESH_LEAD = "next_seq = 1 AND next_send_at IS NULL AND hold IS NULL AND status = 'NOT_CONTACTED'"
FRESH_LEAD_INDEX = "ix_campaign_leads_fresh"
Index(
    FRESH_LEAD_INDEX,
    campaign_leads.c.account_id,
    campaign_leads.c.campaign_id,
    campaign_leads.c.lead_id,
    sqlite_where=text(FRESH_LEAD),
    postgresql_where=text(FRESH_LEAD),
)
# Leads with a time set: follow-ups, retries and claims (a claim is due again when its lease
# runs out), per mailbox, soonest first.
SCHEDULED_LEAD = "next_send_at IS NOT NULL"
SCHEDULED_LEAD_INDEX = "ix_campaign_leads_scheduled"
# Its columns, for a statement that reads them in the index's order.
SCHEDULED_LEAD_ORDER = "account_id, campaign_id, email_account_id, next_send_at"
Index(
    SCHEDULED_LEAD_INDEX,
    *(campaign_leads.c[name] for name in SCHEDULED_LEAD_ORDER.split(", ")),
    sqlite_where=text(SCHEDULED_LEAD),
    postgresql_where=text(SCHEDULED_LEAD),
)

lead_events = Table(
    "lead_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, nullable=False),
    Column("lead_id", Id, nullable=False),
    # Null for account-wide events (an address blocked or unsubscribed everywhere).
    Column("campaign_id", Id, nullable=True),
    Column("type", String(32), nullable=False),
    Column("data", Json, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    ForeignKeyConstraint(
        ["account_id", "lead_id"], ["leads.account_id", "leads.id"], ondelete="CASCADE"
    ),
    Index(None, "account_id", "lead_id", "id"),
    Index(None, "account_id", "campaign_id", "type"),
)

block_list = Table(
    "block_list",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("value", String(320), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("source", String(32), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("account_id", "kind", "value"),
    UniqueConstraint("account_id", "id"),
)

unsubscribes = Table(
    "unsubscribes",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("email", String(320), nullable=False),
    Column("source", String(32), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("account_id", "email"),
    UniqueConstraint("account_id", "id"),
)

sequence_steps = Table(
    "sequence_steps",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, nullable=False),
    Column("campaign_id", Id, nullable=False),
    Column("seq_number", Integer, nullable=False),
    # "A" for the step's own subject and body, the label of a seq_variant otherwise.
    Column("variant_label", String(20), nullable=False),
    Column("subject", Text, nullable=False),
    Column("email_body", Text, nullable=False),
    Column("delay_in_days", Integer, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # The variant's share of the step's leads, in percent; NULL when they share them evenly.
    Column("distribution_percentage", Integer, nullable=True),
    UniqueConstraint(
        "account_id",
        "campaign_id",
        "seq_number",
        "variant_label",
        name="uq_sequence_steps_account_campaign_step_variant",
    ),
    ForeignKeyConstraint(
        ["account_id", "campaign_id"],
        ["campaigns.account_id", "campaigns.id"],
        ondelete="CASCADE",
    ),
)

email_accounts = Table(
    "email_accounts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _account_fk(),
    Column("from_name", String(320), nullable=False),
    Column("from_email", String(320), nullable=False),
    Column("user_name", String(320), nullable=False),
    # Fernet ciphertext (openlead.vault); the password itself is never stored or returned.
    Column("password_encrypted", Text, nullable=False),
    Column("smtp_host", String(255), nullable=False),
    Column("smtp_port", Integer, nullable=False),
    Column("smtp_security", String(8), nullable=False),
    Column("imap_host", String(255), nullable=True),
    Column("imap_port", Integer, nullable=True),
    # Reading the inbox for replies (openlead.replies): how to log in when not as for SMTP,
    # and the last message read (the UIDVALIDITY it belongs to, and its UID).
    Column("imap_security", String(8), nullable=True),
    Column("imap_user_name", String(320), nullable=True),
    Column("imap_password_encrypted", Text, nullable=True),
    Column("imap_uidvalidity", BigInteger, nullable=True),
    Column("imap_last_uid", BigInteger, nullable=True),
    # When the inbox was last read (or is being read: the claim), and what failed then.
    Column("imap_checked_at", Timestamp, nullable=True),
    Column("imap_error", Text, nullable=True),
    Column("max_email_per_day", Integer, nullable=False),
    # OK, or FAILING after a failed connection or login (its leads wait until retry_at).
    Column("state", String(8), nullable=False, server_default="OK"),
    Column("last_error", Text, nullable=True),
    Column("retry_at", Timestamp, nullable=True),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    # Sends reserved by quarter hour over the last 26 hours (openlead.sending.tally: each
    # campaign counts its own day), and when the last one was claimed: each campaign adds its
    # own gap to that, whichever campaign it was for.
    Column("sent_log", Json, nullable=True),
    Column("last_claimed_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("account_id", "id"),
    UniqueConstraint("account_id", "from_email"),
)

campaign_email_accounts = Table(
    "campaign_email_accounts",
    metadata,
    Column("account_id", Id, nullable=False),
    Column("campaign_id", Id, nullable=False),
    Column("email_account_id", Id, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("account_id", "campaign_id", "email_account_id"),
    ForeignKeyConstraint(
        ["account_id", "campaign_id"],
        ["campaigns.account_id", "campaigns.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["account_id", "email_account_id"],
        ["email_accounts.account_id", "email_accounts.id"],
        ondelete="CASCADE",
    ),
    Index(None, "account_id", "email_account_id"),
)

# One row per (lead, campaign, step) ever attempted: the unique key is what makes "never the
# same step twice" hold whatever crashes. A row is written, and committed, before the
# message's content is handed to the SMTP server (state "sending"); see docs/sending.md.
messages = Table(
    "messages",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("account_id", Id, nullable=False),
    Column("campaign_id", Id, nullable=False),
    Column("lead_id", Id, nullable=False),
    Column("seq_number", Integer, nullable=False),
    Column("variant_label", String(20), nullable=False),
    Column("email_account_id", Id, nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("state", String(12), nullable=False),
    # While "sending": when the worker that wrote it may be presumed dead.
    Column("lease_until", Timestamp, nullable=True),
    # The links of the email, in order: a click token names one by its index.
    Column("links", Json, nullable=False),
    Column("error", Text, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("sent_at", Timestamp, nullable=True),
    UniqueConstraint("account_id", "campaign_id", "lead_id", "seq_number"),
    UniqueConstraint("account_id", "id"),
    # The email a reply answers, found by the Message-ID its In-Reply-To names.
    Index(None, "account_id", "message_id"),
    ForeignKeyConstraint(
        ["account_id", "campaign_id"],
        ["campaigns.account_id", "campaigns.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["account_id", "lead_id"], ["leads.account_id", "leads.id"], ondelete="CASCADE"
    ),
)

# Messages on their way (marked, not yet known sent): the outcome of a group of sends finds
# its messages here. Without it PostgreSQL, told that few rows are "sending", read the whole
# table for every group of outcomes; this index holds only the messages in flight.
IN_FLIGHT = "state = 'sending'"
Index(
    "ix_messages_sending",
    messages.c.account_id,
    messages.c.id,
    sqlite_where=text(IN_FLIGHT),
    postgresql_where=text(IN_FLIGHT),
)

# Without AUTOINCREMENT SQLite gives a deleted row's id to the next row: a stale delete would
# then remove another entry, and a new campaign would inherit a deleted one's events
# (migration 0009). PostgreSQL's sequences never go back.
for _table in (
    accounts,
    api_keys,
    campaigns,
    leads,
    lead_events,
    block_list,
    unsubscribes,
    sequence_steps,
    email_accounts,
    messages,
):
    _table.dialect_kwargs["sqlite_autoincrement"] = True

__all__ = [
    "accounts",
    "api_keys",
    "block_list",
    "campaign_email_accounts",
    "campaign_leads",
    "campaigns",
    "email_accounts",
    "lead_events",
    "leads",
    "messages",
    "metadata",
    "sequence_steps",
    "unsubscribes",
]
