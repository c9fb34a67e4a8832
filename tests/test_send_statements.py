"""The sender's statements on PostgreSQL: what they lock and what they read, and the kept
connection its groups of writes run on (``HeldWriter``, both backends).

The database is a fresh one whose ``messages`` were analysed while empty, as on a new install
whose first campaign is sending: the statistics then say nothing of the rows that follow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from openlead.db import driver
from openlead.db.engine import Database, HeldWriter, create_database
from openlead.db.errors import momentary
from openlead.db.migrate import upgrade
from openlead.sending import repository
from tests.support import query

ACCOUNT, CAMPAIGN, BUSY_LEAD, CLAIMED_LEAD = 1, 1, 1, 2
EARLIER = 3000  # messages of another lead of the campaign
STAMP = "2026-12-01 10:00:00+00"

SET_UP = [
    f"INSERT INTO accounts (id, name, created_at) VALUES ({ACCOUNT}, 'a', '{STAMP}')",
    f"""INSERT INTO campaigns (id, account_id, name, status, created_at, updated_at)
        VALUES ({CAMPAIGN}, {ACCOUNT}, 'c', 'ACTIVE', '{STAMP}', '{STAMP}')""",
    f"""INSERT INTO leads (id, account_id, email, email_domain, custom_fields, created_at,
                           updated_at)
        SELECT i, {ACCOUNT}, 'lead' || i || '@example.com', 'example.com', '{{}}', '{STAMP}',
               '{STAMP}'
        FROM generate_series(1, 2) AS i""",
    # The claimed lead waits for its second step.
    f"""INSERT INTO campaign_leads (account_id, campaign_id, lead_id, status, ignore_block_list,
                                    ignore_unsubscribe_list, created_at, updated_at, next_seq)
        SELECT {ACCOUNT}, {CAMPAIGN}, i, 'IN_PROGRESS', false, false, '{STAMP}', '{STAMP}', i
        FROM generate_series(1, 2) AS i""",
    "ANALYZE",
    # After the statistics: as far as the planner knows, there are no messages.
    f"""INSERT INTO messages (account_id, campaign_id, lead_id, seq_number, variant_label,
                              email_account_id, message_id, state, links, created_at)
        SELECT {ACCOUNT}, {CAMPAIGN}, {BUSY_LEAD}, i, 'A', 1, 'm' || i, 'sent', '[]',
               '{STAMP}'
        FROM generate_series(1, {EARLIER}) AS i""",
    f"""INSERT INTO messages (account_id, campaign_id, lead_id, seq_number, variant_label,
                              email_account_id, message_id, state, links, created_at)
        VALUES ({ACCOUNT}, {CAMPAIGN}, {CLAIMED_LEAD}, 1, 'A', 1, 'claimed', 'sending', '[]',
                '{STAMP}')""",
]


def _execute(database_url: str, *statements: str) -> None:
    async def run(database: Database) -> None:
        async with database.write() as conn:
            for statement in statements:
                await conn.exec_driver_sql(statement)

    _run(database_url, run)


@pytest.fixture
def sending_database(fresh_database_url: str) -> Iterator[str]:
    if fresh_database_url.startswith("sqlite"):
        pytest.skip("row locks and query plans of PostgreSQL")
    upgrade(fresh_database_url)
    _execute(fresh_database_url, *SET_UP)
    yield fresh_database_url


def _run(database_url: str, work: Any) -> Any:
    async def run() -> Any:
        database = create_database(database_url, pool_size=3, lock_timeout_seconds=0.3)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def _removed_by_filters(plan: dict[str, Any]) -> int:
    """The rows every node of an ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan read and threw away."""
    removed = plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Join Filter", 0)
    return removed + sum(_removed_by_filters(child) for child in plan.get("Plans", []))


async def _explained(database: Database, sql: str, params: tuple[Any, ...]) -> dict[str, Any]:
    """What running ``sql`` read, in a transaction rolled back afterwards."""
    async with database.writer.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        transaction = raw.transaction()
        await transaction.start()
        try:
            found = await raw.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *params)
        finally:
            await transaction.rollback()  # EXPLAIN ANALYZE ran the statement
    return (json.loads(found) if isinstance(found, str) else found)[0]["Plan"]


def test_a_claim_holding_its_campaign_lets_marks_be_written_but_not_another_claim(
    sending_database: str,
):
    """The claim holds its campaign against other claims and status changes; a mark (whose
    foreign key names the campaign) written meanwhile does not wait for it."""

    async def work(database: Database) -> tuple[list[Any], str]:
        async with database.write() as claim:
            held = await repository.lock_running_campaign(claim, ACCOUNT, CAMPAIGN)
            assert held is not None
            async with database.write() as marks:
                written = await repository.mark_many(marks, [_mark(seq_number=2)])
            try:
                async with database.write() as other_claim:
                    await repository.lock_running_campaign(other_claim, ACCOUNT, CAMPAIGN)
            except Exception as exc:
                refused = str(momentary(exc))  # "busy": the lock timeout ran out
            else:
                refused = "nothing"
        return list(written), refused

    written, refused = _run(sending_database, work)
    assert written == [(CAMPAIGN, CLAIMED_LEAD, 2)]
    assert refused == "busy"


def _mark(seq_number: int) -> dict[str, Any]:
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    return {
        "account_id": ACCOUNT,
        "campaign_id": CAMPAIGN,
        "lead_id": CLAIMED_LEAD,
        "seq_number": seq_number,
        "variant_label": "A",
        "email_account_id": 1,
        "message_id": f"<step{seq_number}@example.com>",
        "lease_until": now,
        "links": [],
        "created_at": now,
    }


def test_a_claim_reads_only_the_messages_of_the_leads_it_claimed(sending_database: str):
    async def work(database: Database) -> tuple[list[Any], dict[str, Any]]:
        async with database.read() as conn:
            rows = await repository.messages_of(conn, ACCOUNT, CAMPAIGN, [CLAIMED_LEAD])
        plan = await _explained(
            database, repository._EARLIER_PG, (ACCOUNT, CAMPAIGN, [CLAIMED_LEAD])
        )
        return [(r.lead_id, r.seq_number, r.message_id) for r in rows], plan

    rows, plan = _run(sending_database, work)
    assert rows == [(CLAIMED_LEAD, 1, "claimed")]
    # Before: the campaign's every message, each tested against the list of leads.
    assert _removed_by_filters(plan) == 0, plan


def test_outcomes_read_only_the_messages_in_flight(sending_database: str):
    """A group of outcomes finds its messages among those still "sending", not by reading
    every message ever sent."""
    claimed = query(sending_database, "SELECT id FROM messages WHERE message_id = 'claimed'")
    message = claimed[0][0]
    sent_at = datetime(2026, 12, 1, 10, 5, tzinfo=UTC)

    async def work(database: Database) -> tuple[set[int], dict[str, Any]]:
        async with database.write() as conn:
            update_sql, _ = repository._sent_many_sql(conn)
        rows = json.dumps([{"account_id": ACCOUNT, "id": message, "sent_at": sent_at.isoformat()}])
        plan = await _explained(database, update_sql, (rows,))
        async with database.write() as conn:
            moved = await repository.mark_many_sent(conn, [(ACCOUNT, message, sent_at)])
        return moved, plan

    moved, plan = _run(sending_database, work)
    assert moved == {message}
    assert query(sending_database, f"SELECT state FROM messages WHERE id = {message}") == [
        ("sent",)
    ]
    # Before: a scan of the whole table, throwing away the 3,000 messages already sent.
    assert _removed_by_filters(plan) < 10, plan


# --- the kept connection ----------------------------------------------------------------------


@pytest.fixture
def database_url_migrated(fresh_database_url: str) -> str:
    upgrade(fresh_database_url)
    _execute(
        fresh_database_url,
        f"INSERT INTO accounts (name, created_at) VALUES ('a', '{STAMP}')",
    )
    return fresh_database_url


def _names(database_url: str) -> list[str]:
    return [row[0] for row in query(database_url, "SELECT name FROM accounts ORDER BY id")]


async def _add(conn: Any, name: str, through_sqlalchemy: bool) -> None:
    """An account written through SQLAlchemy, or on the driver as the sender's statements are."""
    if through_sqlalchemy:
        await conn.execute(
            text(f"INSERT INTO accounts (name, created_at) VALUES (:n, '{STAMP}')"), {"n": name}
        )
        return
    placeholder = "?" if conn.dialect.name == "sqlite" else "$1"
    sql = f"INSERT INTO accounts (name, created_at) VALUES ({placeholder}, '{STAMP}') RETURNING id"
    await driver.fetch_rows(conn, sql, (name,))


def test_a_kept_connection_commits_and_rolls_back_all_of_a_transaction(database_url_migrated):
    url = database_url_migrated

    async def work(database: Database) -> None:
        writer = HeldWriter(database)
        try:
            async with writer.transaction() as conn:
                await _add(conn, "driver 1", through_sqlalchemy=False)
                await _add(conn, "sqlalchemy", through_sqlalchemy=True)
                await _add(conn, "driver 2", through_sqlalchemy=False)
            with pytest.raises(RuntimeError):
                async with writer.transaction() as conn:
                    await _add(conn, "lost 1", through_sqlalchemy=False)
                    await _add(conn, "lost 2", through_sqlalchemy=True)
                    raise RuntimeError("the group failed")
            with pytest.raises(Exception, match=r"duplicate|UNIQUE"):
                async with writer.transaction() as conn:
                    await _add(conn, "lost 3", through_sqlalchemy=True)
                    await _add(conn, "driver 1", through_sqlalchemy=False)  # the name is taken
            async with writer.transaction() as conn:  # a failure leaves nothing behind
                await _add(conn, "after", through_sqlalchemy=False)
        finally:
            await writer.close()

    _run(url, work)
    assert _names(url) == ["a", "driver 1", "sqlalchemy", "driver 2", "after"]


def test_a_kept_connection_the_server_closed_is_replaced(database_url_migrated):
    url = database_url_migrated
    if url.startswith("sqlite"):
        pytest.skip("a SQLite database has no server to close a connection")

    async def work(database: Database) -> None:
        writer = HeldWriter(database)
        try:
            async with writer.transaction() as conn:
                await _add(conn, "before", through_sqlalchemy=False)
                backend = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
            async with database.write() as admin:
                await admin.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
            await asyncio.sleep(0.5)  # the driver hears of it
            async with writer.transaction() as conn:
                await _add(conn, "after", through_sqlalchemy=False)
                again = (await conn.exec_driver_sql("SELECT pg_backend_pid()")).scalar()
            assert again != backend
        finally:
            await writer.close()

    _run(url, work)
    assert _names(url) == ["a", "before", "after"]
