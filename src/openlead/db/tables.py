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
    UniqueConstraint("account_id", "campaign_id", "lead_id"),
    ForeignKeyConstraint(
        ["account_id", "campaign_id"],
        ["campaigns.account_id", "campaigns.id"],
        ondelete="CASCADE",
    ),
    ForeignKeyConstraint(
        ["account_id", "lead_id"], ["leads.account_id", "leads.id"], ondelete="CASCADE"
    ),
    Index(None, "account_id", "campaign_id", "status", "lead_id"),
    Index(None, "account_id", "lead_id"),
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

__all__ = [
    "accounts",
    "api_keys",
    "block_list",
    "campaign_leads",
    "campaigns",
    "lead_events",
    "leads",
    "metadata",
    "sequence_steps",
    "unsubscribes",
]
