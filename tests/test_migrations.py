"""The migrations build exactly the schema ``db/tables.py`` declares, on both backends, and
carry the data they move."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from openlead.db.migrate import alembic_config, upgrade
from openlead.db.tables import metadata
from openlead.sending.tally import quarter_of
from tests.support import create_pg_database, drop_pg_database, postgres_reachable


@pytest.fixture(params=["sqlite", "postgres"])
def fresh(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A new, empty database: its URL for the app and migrations, and its synchronous one."""
    if request.param == "sqlite":
        path = tmp_path / "openlead.db"
        yield f"sqlite+aiosqlite:///{path}", f"sqlite:///{path}"
        return
    problem = postgres_reachable()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name, url = create_pg_database()
    try:
        yield url, url.replace("postgresql+asyncpg://", "postgresql+psycopg://")
    finally:
        drop_pg_database(name)


@pytest.fixture
def migrated(fresh: tuple[str, str]) -> str:
    """A fresh database, migrated; its synchronous URL."""
    upgrade(fresh[0])
    return fresh[1]


def _ignored(difference: tuple) -> bool:
    # Server defaults are compared by their SQL text, which each database spells its own way.
    return difference[0] == "modify_default"


def test_the_migrated_schema_is_the_declared_one(migrated: str) -> None:
    engine = create_engine(migrated)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    flat = [d for group in differences for d in (group if isinstance(group, list) else [group])]
    assert [d for d in flat if not _ignored(d)] == []


MAILBOX_AT_0007 = """
INSERT INTO email_accounts (account_id, from_name, from_email, user_name, password_encrypted,
  smtp_host, smtp_port, smtp_security, max_email_per_day, sent_day, sent_today,
  last_claimed_at, created_at, updated_at)
VALUES (:account, 'Sam', :email, 'sam', 'x', 'smtp.example', 587, 'STARTTLS', 50, :day, :sent,
  :claimed, :claimed, :claimed)
"""


def test_the_sends_counted_today_survive_the_move_to_a_tally(fresh: tuple[str, str]) -> None:
    """0008 carries each mailbox's count for the current UTC day into its tally, in the
    quarter hour of its last claim, and a downgrade gives the day's count back."""
    url, sync_url = fresh
    upgrade(url, "0007_replies")
    now = datetime.now(UTC).replace(microsecond=0)
    today, yesterday = now.date(), now.date() - timedelta(days=1)
    engine = create_engine(sync_url)
    try:
        with engine.begin() as conn:
            account = conn.execute(
                text("INSERT INTO accounts (name, created_at) VALUES ('a', :t) RETURNING id"),
                {"t": now},
            ).scalar_one()
            for email, day, sent in [
                ("today@x", today, 5),
                ("old@x", yesterday, 7),
            ]:
                row = {"account": account, "email": email, "day": day.isoformat(), "sent": sent}
                conn.execute(text(MAILBOX_AT_0007), {**row, "claimed": now})
        upgrade(url)
        if datetime.now(UTC).date() != today:
            pytest.skip("UTC midnight passed during the upgrade")
        with engine.connect() as conn:
            logs = dict(conn.execute(text("SELECT from_email, sent_log FROM email_accounts")).all())
        stored = {k: json.loads(v) if isinstance(v, str) else v for k, v in logs.items()}
        assert stored == {"today@x": [[quarter_of(now), 5]], "old@x": None}
        command.downgrade(alembic_config(url), "0007_replies")
        with engine.connect() as conn:
            counts = conn.execute(
                text("SELECT from_email, sent_day, sent_today FROM email_accounts ORDER BY id")
            ).all()
        assert [tuple(r) for r in counts] == [
            ("today@x", today.isoformat(), 5),
            ("old@x", None, 0),
        ]
    finally:
        engine.dispose()


def _insert(conn, sql: str, **params) -> int:  # type: ignore[no-untyped-def]
    return conn.execute(text(sql + " RETURNING id"), params).scalar_one()


def test_no_id_is_given_again_after_the_upgrade(fresh: tuple[str, str]) -> None:
    """0009: a campaign deleted before the upgrade keeps its id, because its events still
    name it; the rows, and the cascades that delete them, survive the rebuild."""
    url, sync_url = fresh
    upgrade(url, "0008_mailbox_sent_log")
    now = datetime.now(UTC)
    engine = create_engine(sync_url)
    campaign_sql = (
        "INSERT INTO campaigns (account_id, name, status, created_at, updated_at)"
        " VALUES (:a, :n, 'DRAFTED', :t, :t)"
    )
    try:
        with engine.begin() as conn:
            account = _insert(
                conn, "INSERT INTO accounts (name, created_at) VALUES ('a', :t)", t=now
            )
            kept, deleted = (_insert(conn, campaign_sql, a=account, n=n, t=now) for n in "kd")
            lead = _insert(
                conn,
                "INSERT INTO leads (account_id, email, email_domain, custom_fields, created_at,"
                " updated_at) VALUES (:a, 'x@y.example', 'y.example', '{}', :t, :t)",
                a=account,
                t=now,
            )
            for campaign in (kept, deleted):
                conn.execute(
                    text(
                        "INSERT INTO campaign_leads (account_id, campaign_id, lead_id, status,"
                        " ignore_block_list, ignore_unsubscribe_list, created_at, updated_at)"
                        " VALUES (:a, :c, :l, 'NOT_CONTACTED', false, false, :t, :t)"
                    ),
                    {"a": account, "c": campaign, "l": lead, "t": now},
                )
                conn.execute(
                    text(
                        "INSERT INTO lead_events (account_id, lead_id, campaign_id, type,"
                        " created_at) VALUES (:a, :l, :c, 'LEAD_ADDED', :t)"
                    ),
                    {"a": account, "c": campaign, "l": lead, "t": now},
                )
            conn.execute(text("DELETE FROM campaign_leads WHERE campaign_id = :c"), {"c": deleted})
            conn.execute(text("DELETE FROM campaigns WHERE id = :c"), {"c": deleted})
        upgrade(url)
        with engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            newer = _insert(conn, campaign_sql, a=account, n="new", t=now)
            assert newer > deleted
            conn.execute(text("DELETE FROM campaigns WHERE id = :c"), {"c": kept})
            members = conn.execute(text("SELECT count(*) FROM campaign_leads")).scalar_one()
            events = conn.execute(text("SELECT count(*) FROM lead_events")).scalar_one()
        assert (members, events) == (0, 2)
        command.downgrade(alembic_config(url), "0008_mailbox_sent_log")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT id FROM campaigns")).scalars().all() == [newer]
    finally:
        engine.dispose()
