"""HTTP endpoints for campaigns."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.engine import Row

from openlead.campaigns import service
from openlead.campaigns.schemas import (
    Campaign,
    CampaignCreate,
    CampaignCreated,
    Deleted,
)
from openlead.clock import iso
from openlead.web.deps import AccountId, ReadConn, WriteConn
from openlead.web.ids import ObjectId
from openlead.web.pagination import PageParams

router = APIRouter(tags=["campaigns"])


def _campaign(row: Row) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        status=row.status,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
    )


async def _create(body: CampaignCreate, account_id: int, conn: WriteConn) -> CampaignCreated:
    row = await service.create(conn, account_id, body.name)
    return CampaignCreated(id=row.id, name=row.name, created_at=iso(row.created_at) or "")


@router.post("/campaigns", response_model=CampaignCreated)
async def create_campaign(
    body: CampaignCreate, account_id: AccountId, conn: WriteConn
) -> CampaignCreated:
    return await _create(body, account_id, conn)


@router.post("/campaigns/create", response_model=CampaignCreated, summary="Create (compat)")
async def create_campaign_compat(
    body: CampaignCreate, account_id: AccountId, conn: WriteConn
) -> CampaignCreated:
    return await _create(body, account_id, conn)


@router.get("/campaigns", response_model=list[Campaign])
async def list_campaigns(
    account_id: AccountId, conn: ReadConn, page: PageParams, response: Response
) -> list[Campaign]:
    """A bare array, as SmartLead answers; the cursor travels in ``X-Next-Cursor``."""
    rows = await service.list_page(conn, account_id, page)
    cursor = page.next_cursor([r.id for r in rows])
    if cursor is not None:
        response.headers["X-Next-Cursor"] = cursor
    return [_campaign(r) for r in rows]


@router.get("/campaigns/{campaign_id:int}", response_model=Campaign)
async def get_campaign(campaign_id: ObjectId, account_id: AccountId, conn: ReadConn) -> Campaign:
    return _campaign(await service.get(conn, account_id, campaign_id))


@router.delete("/campaigns/{campaign_id:int}", response_model=Deleted)
async def delete_campaign(campaign_id: ObjectId, account_id: AccountId, conn: WriteConn) -> Deleted:
    await service.delete(conn, account_id, campaign_id)
    return Deleted()
