"""SQL for the block list and the unsubscribe list. Every statement is scoped by account."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, Table, delete, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.dialect import insert_for, is_postgres
from openlead.db.jsoncodec import dumps
from openlead.db.tables import block_list, unsubscribes
from openlead.web.pagination import Page

EMAIL = "email"
DOMAIN = "domain"


# The two lookups every import makes, as plain SQL with a fixed text: the addresses travel as
# one parameter (a JSON array on SQLite, an array on PostgreSQL), so the statement is prepared
# once and no per-address work happens in SQLAlchemy. Each kind is its own lookup in
# (account_id, kind, value); given one OR of the two, SQLite read the account's whole block
# list instead.
_BLOCK_HITS_SQLITE = f"""
SELECT kind, value FROM block_list
WHERE account_id = ? AND kind = '{EMAIL}' AND value IN (SELECT value FROM json_each(?))
UNION ALL
SELECT kind, value FROM block_list
WHERE account_id = ? AND kind = '{DOMAIN}' AND value IN (SELECT value FROM json_each(?))
"""
_BLOCK_HITS_POSTGRES = f"""
SELECT kind, value FROM block_list
WHERE account_id = $1 AND kind = '{EMAIL}' AND value = ANY($2::text[])
UNION ALL
SELECT kind, value FROM block_list
WHERE account_id = $1 AND kind = '{DOMAIN}' AND value = ANY($3::text[])
"""
_UNSUBSCRIBED_SQLITE = """
SELECT email FROM unsubscribes
WHERE account_id = ? AND email IN (SELECT value FROM json_each(?))
"""
_UNSUBSCRIBED_POSTGRES = """
SELECT email FROM unsubscribes WHERE account_id = $1 AND email = ANY($2::text[])
"""


async def block_hits(
    conn: AsyncConnection, account_id: int, emails: Iterable[str], domains: Iterable[str]
) -> list[Row]:
    """Block entries matching any of the addresses or domains: (kind, value) rows."""
    emails, domains = list(emails), list(domains)
    if not emails and not domains:
        return []
    if is_postgres(conn):
        result = await conn.exec_driver_sql(_BLOCK_HITS_POSTGRES, (account_id, emails, domains))
    else:
        result = await conn.exec_driver_sql(
            _BLOCK_HITS_SQLITE,
            (account_id, dumps(emails), account_id, dumps(domains)),
        )
    return list(result.all())


async def unsubscribed_among(
    conn: AsyncConnection, account_id: int, emails: Iterable[str]
) -> set[str]:
    emails = list(emails)
    if not emails:
        return set()
    if is_postgres(conn):
        result = await conn.exec_driver_sql(_UNSUBSCRIBED_POSTGRES, (account_id, emails))
    else:
        result = await conn.exec_driver_sql(_UNSUBSCRIBED_SQLITE, (account_id, dumps(emails)))
    return set(result.scalars())


async def insert_blocks(
    conn: AsyncConnection,
    account_id: int,
    entries: list[tuple[str, str]],
    source: str,
    now: datetime,
) -> list[tuple[str, str]]:
    """Insert (kind, value) entries not already listed; return the new ones."""
    if not entries:
        return []
    rows = [
        {"account_id": account_id, "kind": k, "value": v, "source": source, "created_at": now}
        for k, v in entries
    ]
    statement = (
        insert_for(conn, block_list)
        .on_conflict_do_nothing(index_elements=["account_id", "kind", "value"])
        .returning(block_list.c.kind, block_list.c.value)
    )
    return [(r.kind, r.value) for r in (await conn.execute(statement, rows)).all()]


async def _list_page(
    conn: AsyncConnection,
    table: Table,
    column: Column,
    account_id: int,
    search: str | None,
    page: Page,
) -> list[Row]:
    query = select(table).where(table.c.account_id == account_id)
    if search:
        query = query.where(column.contains(search, autoescape=True))
    return list((await conn.execute(page.of(query, table.c.id))).all())


async def _delete_entry(
    conn: AsyncConnection, table: Table, account_id: int, entry_id: int, *returned: Column
) -> Row | None:
    result = await conn.execute(
        delete(table)
        .where(table.c.account_id == account_id, table.c.id == entry_id)
        .returning(*returned)
    )
    return result.first()


async def list_blocks(
    conn: AsyncConnection, account_id: int, search: str | None, page: Page
) -> list[Row]:
    return await _list_page(conn, block_list, block_list.c.value, account_id, search, page)


async def delete_block(
    conn: AsyncConnection, account_id: int, entry_id: int
) -> tuple[str, str] | None:
    """Delete an entry; its (kind, value), or None when there was no such entry."""
    row = await _delete_entry(
        conn, block_list, account_id, entry_id, block_list.c.kind, block_list.c.value
    )
    return None if row is None else (row.kind, row.value)


async def insert_unsubscribe(
    conn: AsyncConnection, account_id: int, email: str, source: str, now: datetime
) -> bool:
    statement = (
        insert_for(conn, unsubscribes)
        .values(account_id=account_id, email=email, source=source, created_at=now)
        .on_conflict_do_nothing(index_elements=["account_id", "email"])
        .returning(unsubscribes.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def list_unsubscribes(
    conn: AsyncConnection, account_id: int, search: str | None, page: Page
) -> list[Row]:
    return await _list_page(conn, unsubscribes, unsubscribes.c.email, account_id, search, page)


async def delete_unsubscribe(conn: AsyncConnection, account_id: int, entry_id: int) -> str | None:
    """Delete an entry; its address, or None when there was no such entry."""
    row = await _delete_entry(conn, unsubscribes, account_id, entry_id, unsubscribes.c.email)
    return None if row is None else row.email
