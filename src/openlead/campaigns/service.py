"""Campaign rules."""

from __future__ import annotations

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaigns import repository
from openlead.clock import utcnow
from openlead.web.errors import NotFound
from openlead.web.pagination import Page

DRAFTED = "DRAFTED"
CAMPAIGN_STATUSES = ("DRAFTED", "ACTIVE", "PAUSED", "STOPPED", "COMPLETED")


async def create(conn: AsyncConnection, account_id: int, name: str) -> Row:
    return await repository.insert_campaign(conn, account_id, name, DRAFTED, utcnow())


async def get(conn: AsyncConnection, account_id: int, campaign_id: int) -> Row:
    row = await repository.get_campaign(conn, account_id, campaign_id)
    if row is None:
        raise NotFound("Campaign")
    return row


async def list_page(conn: AsyncConnection, account_id: int, page: Page) -> list[Row]:
    return await repository.list_campaigns(conn, account_id, page)


async def delete(conn: AsyncConnection, account_id: int, campaign_id: int) -> None:
    if not await repository.delete_campaign(conn, account_id, campaign_id):
        raise NotFound("Campaign")
