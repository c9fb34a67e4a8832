"""SQL for campaigns. Every statement is scoped by account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.dialect import is_postgres
from openlead.db.tables import campaigns
from openlead.web.pagination import Page


async def insert_campaign(
    conn: AsyncConnection, account_id: int, name: str, status: str, now: datetime
) -> Row:
    result = await conn.execute(
        insert(campaigns)
        .values(account_id=account_id, name=name, status=status, created_at=now, updated_at=now)
        .returning(campaigns)
    )
    return result.one()


async def get_campaign(conn: AsyncConnection, account_id: int, campaign_id: int) -> Row | None:
    query = select(campaigns).where(
        campaigns.c.account_id == account_id, campaigns.c.id == campaign_id
    )
    return (await conn.execute(query)).first()


async def list_campaigns(conn: AsyncConnection, account_id: int, page: Page) -> list[Row]:
    query = select(campaigns).where(campaigns.c.account_id == account_id)
    return list((await conn.execute(page.of(query, campaigns.c.id))).all())


async def delete_campaign(conn: AsyncConnection, account_id: int, campaign_id: int) -> bool:
    result = await conn.execute(
        delete(campaigns).where(campaigns.c.account_id == account_id, campaigns.c.id == campaign_id)
    )
    return result.rowcount == 1


async def lock_campaign(conn: AsyncConnection, account_id: int, campaign_id: int) -> Row | None:
    """The campaign, held until commit on PostgreSQL (a status change waits for a claim)."""
    query = select(campaigns).where(
        campaigns.c.account_id == account_id, campaigns.c.id == campaign_id
    )
    if is_postgres(conn):
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def update_campaign(
    conn: AsyncConnection, account_id: int, campaign_id: int, values: dict[str, Any], now: datetime
) -> Row | None:
    statement = (
        update(campaigns)
        .where(campaigns.c.account_id == account_id, campaigns.c.id == campaign_id)
        .values(updated_at=now, **values)
        .returning(campaigns)
    )
    return (await conn.execute(statement)).first()
