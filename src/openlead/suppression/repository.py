"""SQL for the block list and the unsubscribe list. Every statement is scoped by account."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Column, Table, and_, delete, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.dialect import insert_for
from openlead.db.tables import block_list, unsubscribes
from openlead.web.pagination import Page

EMAIL = "email"
DOMAIN = "domain"


async def block_hits(
    conn: AsyncConnection, account_id: int, emails: Iterable[str], domains: Iterable[str]
) -> list[Row]:
    """Block entries matching any of the addresses or domains: (kind, value) rows."""
    emails, domains = list(emails), list(domains)
    if not emails and not domains:
        return []
    query = select(block_list.c.kind, block_list.c.value).where(
        block_list.c.account_id == account_id,
        or_(
            and_(block_list.c.kind == EMAIL, block_list.c.value.in_(emails)),
            and_(block_list.c.kind == DOMAIN, block_list.c.value.in_(domains)),
        ),
    )
    return list((await conn.execute(query)).all())


async def unsubscribed_among(
    conn: AsyncConnection, account_id: int, emails: Iterable[str]
) -> set[str]:
    emails = list(emails)
    if not emails:
        return set()
    query = select(unsubscribes.c.email).where(
        unsubscribes.c.account_id == account_id, unsubscribes.c.email.in_(emails)
    )
    return set((await conn.execute(query)).scalars())


async def insert_blocks(
    conn: AsyncConnection,
    account_id: int,
    entries: list[tuple[str, str]],
    source: str,
    now: datetime,
) -> int:
    """Insert (kind, value) entries not already listed; return how many were new."""
    if not entries:
        return 0
    rows = [
        {"account_id": account_id, "kind": k, "value": v, "source": source, "created_at": now}
        for k, v in entries
    ]
    statement = (
        insert_for(conn, block_list)
        .on_conflict_do_nothing(index_elements=["account_id", "kind", "value"])
        .returning(block_list.c.id)
    )
    return len((await conn.execute(statement, rows)).all())


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
        query = query.where(column.contains(search.lower(), autoescape=True))
    if page.after is not None:
        query = query.where(table.c.id > page.after)
    query = query.order_by(table.c.id).offset(page.offset).limit(page.limit)
    return list((await conn.execute(query)).all())


async def _delete_entry(
    conn: AsyncConnection, table: Table, account_id: int, entry_id: int
) -> bool:
    result = await conn.execute(
        delete(table).where(table.c.account_id == account_id, table.c.id == entry_id)
    )
    return result.rowcount == 1


async def list_blocks(
    conn: AsyncConnection, account_id: int, search: str | None, page: Page
) -> list[Row]:
    return await _list_page(conn, block_list, block_list.c.value, account_id, search, page)


async def delete_block(conn: AsyncConnection, account_id: int, entry_id: int) -> bool:
    return await _delete_entry(conn, block_list, account_id, entry_id)


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


async def delete_unsubscribe(conn: AsyncConnection, account_id: int, entry_id: int) -> bool:
    return await _delete_entry(conn, unsubscribes, account_id, entry_id)
