"""An import is set-based: the same number of SQL statements for 10 leads as for 400."""

from __future__ import annotations

import asyncio

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaigns import service as campaigns
from openlead.db.engine import create_database
from openlead.db.migrate import upgrade
from openlead.leads import service as leads
from openlead.leads.schemas import ImportRequest
from openlead.suppression import service as suppression
from tests.support import create_account, query


def _request(prefix: str, count: int) -> ImportRequest:
    return ImportRequest.model_validate(
        {
            "lead_list": [
                {"email": f"{prefix}{i}@stmt{i % 3}.com", "custom_fields": {"n": i}}
                for i in range(count)
            ]
        }
    )


async def _count_statements(conn: AsyncConnection, seen: list[str]) -> None:
    """Record every statement the import sends, through SQLAlchemy or straight to the driver
    (its lookups go to the driver, past SQLAlchemy's events). SQLite's trace sees both ways;
    asyncpg's query logger sees its own methods, not the statements SQLAlchemy prepares."""
    driver = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "postgresql":
        driver.add_query_logger(lambda logged: seen.append(logged.query))

        @event.listens_for(conn.sync_engine, "before_cursor_execute")
        def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
            seen.append(statement)
    else:
        await driver.set_trace_callback(seen.append)


def test_statement_count_does_not_grow_with_the_batch(database_url):
    upgrade(database_url)
    create_account(database_url)
    account_id = query(database_url, "SELECT MAX(id) FROM accounts")[0][0]
    sqlite = database_url.startswith("sqlite")

    async def run() -> dict[int, list[str]]:
        database = create_database(database_url, pool_size=1)
        statements: list[str] = []
        seen = {}
        try:
            async with database.write() as conn:
                await _count_statements(conn, statements)
                campaign = await campaigns.create(conn, account_id, "stmt")
                await suppression.block(conn, account_id, ["s1@stmt1.com"], ["stmt2.com"])
            for size in (10, 400):
                statements.clear()
                async with database.write() as conn:
                    result = await leads.import_leads(
                        conn, account_id, campaign.id, _request(f"size{size}-", size)
                    )
                    assert result.added_count > 0
                seen[size] = [
                    s
                    for s in statements
                    # Planner statistics, gathered once per table (leads.repository).
                    if not s.strip().startswith("ANALYZE")
                    # SQLite's executemany runs the upsert once per lead, in one call.
                    and not (sqlite and s.strip().startswith("INSERT INTO leads"))
                ]
        finally:
            await database.dispose()
        return seen

    seen = asyncio.run(run())
    assert len(seen[10]) == len(seen[400]) <= 10
    for size in (10, 400):  # the lookups and the writes are all counted
        assert any("block_list" in s for s in seen[size]), seen[size]
        assert any("lead_events" in s for s in seen[size]), seen[size]


def test_blocking_a_domain_costs_the_same_statements_for_any_number_of_leads(database_url):
    upgrade(database_url)
    create_account(database_url)
    account_id = query(database_url, "SELECT MAX(id) FROM accounts")[0][0]

    async def run() -> dict[int, tuple[int, int]]:
        database = create_database(database_url, pool_size=1)
        statements: list[str] = []

        @event.listens_for(database.writer.sync_engine, "before_cursor_execute")
        def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
            statements.append(statement)

        outcome = {}
        try:
            for size in (3, 800):
                domain = f"block{size}.com"
                async with database.write() as conn:
                    campaign = await campaigns.create(conn, account_id, f"block {size}")
                    for start in range(0, size, 400):
                        request = ImportRequest.model_validate(
                            {
                                "lead_list": [
                                    {"email": f"b{i}@{domain}"}
                                    for i in range(start, min(size, start + 400))
                                ]
                            }
                        )
                        await leads.import_leads(conn, account_id, campaign.id, request)
                async with database.write() as conn:
                    statements.clear()
                    await suppression.block(conn, account_id, [], [domain])
                    outcome[size] = (len(statements), campaign.id)
        finally:
            await database.dispose()
        return outcome

    outcome = asyncio.run(run())
    assert outcome[3][0] == outcome[800][0] <= 3
    for size, (_, campaign) in outcome.items():
        blocked = query(
            database_url,
            "SELECT COUNT(*) FROM lead_events WHERE campaign_id = :c AND type = 'BLOCKED'",
            c=campaign,
        )
        assert blocked == [(size,)]
