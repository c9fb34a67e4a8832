"""leads: one unique (account_id, email_domain, email) index for address and domain lookups

Replaces the unique (account_id, email) and the (account_id, email_domain) indexes. The
domain is a function of the address, so the new key is exactly as unique as the old one; an
address is looked up with its domain, a domain block reads the prefix. Imports write
addresses in random order, and every random-order index costs one dirty page per lead in
each transaction: on SQLite the two indexes were most of what a 400-lead commit wrote.

On SQLite the table is rebuilt (its unique constraints live in CREATE TABLE), which copies
every lead once.

Revision ID: 0004
Revises: 0003_sequences
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003_sequences"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_UNIQUE = "uq_leads_account_id_email"
_OLD_DOMAIN_INDEX = "ix_leads_account_id_email_domain"
_NEW_UNIQUE = "uq_leads_account_id_email_domain_email"


def _refuse_rebuild_with_foreign_keys() -> None:
    # Rebuilding ``leads`` drops the old table: with foreign keys enforced, SQLite would
    # first delete every row that references it (ON DELETE CASCADE), memberships and events.
    bind = op.get_bind()
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("run this migration with PRAGMA foreign_keys=OFF")


def upgrade() -> None:
    _refuse_rebuild_with_foreign_keys()
    with op.batch_alter_table("leads", schema=None) as batch_op:
        # PostgreSQL applies these in order: the new key exists before the old one goes.
        batch_op.create_unique_constraint(_NEW_UNIQUE, ["account_id", "email_domain", "email"])
        batch_op.drop_constraint(_OLD_UNIQUE, type_="unique")
        batch_op.drop_index(_OLD_DOMAIN_INDEX)


def downgrade() -> None:
    _refuse_rebuild_with_foreign_keys()
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_unique_constraint(_OLD_UNIQUE, ["account_id", "email"])
        batch_op.create_index(_OLD_DOMAIN_INDEX, ["account_id", "email_domain"], unique=False)
        batch_op.drop_constraint(_NEW_UNIQUE, type_="unique")
