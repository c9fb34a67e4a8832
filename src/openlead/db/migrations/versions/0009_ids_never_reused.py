"""SQLite: ids are never given again once their row is deleted (AUTOINCREMENT)

Without AUTOINCREMENT SQLite gives a new row the highest id in use plus one, so deleting the
newest campaign, block-list entry, unsubscribe or mailbox hands its id to the next one: a
retried ``DELETE /leads/unsubscribes/{id}`` then lifts someone else's unsubscribe, and a new
campaign inherits the old one's events (``lead_events.campaign_id`` has no foreign key, so
they outlive it) and the tracking links of its emails. PostgreSQL's sequences never go back.

Every table with an id of its own is rebuilt with AUTOINCREMENT, which copies its rows once
(on a million leads, some seconds). Its counter starts above every id already used that is
still referred to: a deleted campaign's events, a deleted mailbox's messages.

Revision ID: 0009_ids_never_reused
Revises: 0008_mailbox_sent_log
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_ids_never_reused"
down_revision: str | None = "0008_mailbox_sent_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each table with its own id, and the columns elsewhere that name one of its ids without a
# foreign key (so a deleted row's id can still be referred to).
_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "accounts": (),
    "api_keys": (),
    "campaigns": (("lead_events", "campaign_id"), ("messages", "campaign_id")),
    "leads": (),
    "lead_events": (),
    "block_list": (),
    "unsubscribes": (),
    "sequence_steps": (),
    "email_accounts": (("messages", "email_account_id"),),
    "messages": (),
}


def _refuse_rebuild_with_foreign_keys() -> None:
    # Rebuilding drops the old table: with foreign keys enforced, SQLite would first delete
    # every row that references it (ON DELETE CASCADE), memberships and events.
    bind = op.get_bind()
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("run this migration with PRAGMA foreign_keys=OFF")


def _highest_id(table: str, references: tuple[tuple[str, str], ...]) -> int:
    bind = op.get_bind()
    columns = [(table, "id"), *references]
    highest = [
        bind.exec_driver_sql(f"SELECT max({column}) FROM {source}").scalar() or 0
        for source, column in columns
    ]
    return max(highest)


def _rebuild(table: str, autoincrement: bool) -> None:
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass


def _start_counter_above(table: str, used: int) -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
    if used:
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)"),
            {"t": table, "seq": used},
        )


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _refuse_rebuild_with_foreign_keys()
    for table, references in _TABLES.items():
        used = _highest_id(table, references)
        _rebuild(table, autoincrement=True)
        _start_counter_above(table, used)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _refuse_rebuild_with_foreign_keys()
    for table in _TABLES:
        _rebuild(table, autoincrement=False)
