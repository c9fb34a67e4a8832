"""HTTP endpoints for the leads of a campaign."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Row

from openlead.campaign_leads import service
from openlead.campaign_leads.schemas import (
    Activity,
    ActivityEvent,
    CampaignLead,
    CampaignLeadPage,
    CampaignUnsubscribed,
    Removed,
    Statistics,
    StatusChange,
    StatusChanged,
    Unsubscribed,
)
from openlead.campaigns import service as campaigns
from openlead.clock import iso
from openlead.leads.schemas import PROFILE_FIELDS
from openlead.web.deps import AccountId, ReadConn, WriteConn
from openlead.web.ids import ObjectId
from openlead.web.pagination import LongPageParams, PageParams
from openlead.web.text import line

router = APIRouter(tags=["leads in a campaign"])
StatusFilter = Annotated[
    line(32) | None,
    Query(description=f"One of {', '.join(service.VALID_STATUSES)}"),
]


def campaign_lead(row: Row) -> CampaignLead:
    updated = max(row.updated_at, row.profile_updated_at)
    return CampaignLead(
        id=row.id,
        email=row.email,
        **{field: getattr(row, field) for field in PROFILE_FIELDS},
        custom_fields=row.custom_fields or {},
        status=row.status,
        next_seq_number=row.next_seq,
        next_send_at=iso(row.next_send_at),
        hold=row.hold,
        email_account_id=row.email_account_id,
        is_unsubscribed=bool(row.is_unsubscribed),
        is_blocked=bool(row.is_blocked),
        created_at=iso(row.created_at) or "",
        updated_at=iso(updated) or "",
    )


@router.get("/campaigns/{campaign_id:int}/leads", response_model=CampaignLeadPage)
async def list_campaign_leads(
    campaign_id: ObjectId,
    account_id: AccountId,
    conn: ReadConn,
    page: PageParams,
    status: StatusFilter = None,
) -> CampaignLeadPage:
    rows, total = await service.list_page(conn, account_id, campaign_id, status, page)
    return CampaignLeadPage(
        leads=[campaign_lead(r) for r in page.rows(rows)],
        total_leads=total,
        **page.answer([r.id for r in rows]),
    )


@router.patch(
    "/campaigns/{campaign_id:int}/leads/{lead_id:int}/status", response_model=StatusChanged
)
async def change_lead_status(
    campaign_id: ObjectId,
    lead_id: ObjectId,
    body: StatusChange,
    account_id: AccountId,
    conn: WriteConn,
) -> StatusChanged:
    previous, status = await service.change_status(
        conn, account_id, campaign_id, lead_id, body.status
    )
    return StatusChanged(
        lead_id=lead_id, campaign_id=campaign_id, status=status, previous_status=previous
    )


@router.get("/campaigns/{campaign_id:int}/leads/{lead_id:int}/activity", response_model=Activity)
async def lead_activity(
    campaign_id: ObjectId,
    lead_id: ObjectId,
    page: LongPageParams,
    account_id: AccountId,
    conn: ReadConn,
) -> Activity:
    """The lead's timeline, oldest first: up to 1,000 events a page by default, so that an
    ordinary lead's timeline comes whole; ``next_cursor`` leads on from there."""
    rows = await service.activity(conn, account_id, campaign_id, lead_id, page)
    events = [
        ActivityEvent(type=r.type, timestamp=iso(r.created_at) or "", **(r.data or {}))
        for r in page.rows(rows)
    ]
    paging = page.answer([r.id for r in rows])
    return Activity(lead_id=lead_id, campaign_id=campaign_id, events=events, **paging)


@router.post(
    "/campaigns/{campaign_id:int}/leads/{lead_id:int}/unsubscribe",
    response_model=CampaignUnsubscribed,
)
async def unsubscribe_from_campaign(
    campaign_id: ObjectId, lead_id: ObjectId, account_id: AccountId, conn: WriteConn
) -> CampaignUnsubscribed:
    previous, status = await service.unsubscribe_from_campaign(
        conn, account_id, campaign_id, lead_id
    )
    return CampaignUnsubscribed(
        lead_id=lead_id, campaign_id=campaign_id, status=status, previous_status=previous
    )


@router.post("/leads/{lead_id:int}/unsubscribe", response_model=Unsubscribed)
async def unsubscribe_everywhere(
    lead_id: ObjectId, account_id: AccountId, conn: WriteConn
) -> Unsubscribed:
    """Account-wide: the unsubscribe list, and UNSUBSCRIBED in every unfinished campaign."""
    lead, added = await service.unsubscribe_everywhere(conn, account_id, lead_id)
    return Unsubscribed(lead_id=lead.id, email=lead.email, already_unsubscribed=not added)


@router.delete("/campaigns/{campaign_id:int}/leads/{lead_id:int}", response_model=Removed)
async def remove_from_campaign(
    campaign_id: ObjectId, lead_id: ObjectId, account_id: AccountId, conn: WriteConn
) -> Removed:
    await service.remove(conn, account_id, campaign_id, lead_id)
    return Removed()


@router.get(
    "/campaigns/{campaign_id:int}/leads-export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The leads as CSV"}},
)
async def export_leads(
    campaign_id: ObjectId, account_id: AccountId, conn: ReadConn, request: Request
) -> StreamingResponse:
    """Streamed in batches: memory stays flat whatever the campaign's size."""
    await campaigns.get(conn, account_id, campaign_id)
    return StreamingResponse(
        service.export_csv(request.app.state.database, account_id, campaign_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="campaign-{campaign_id}-leads.csv"'},
    )


@router.get("/campaigns/{campaign_id:int}/statistics", response_model=Statistics)
async def campaign_statistics(
    campaign_id: ObjectId, account_id: AccountId, conn: ReadConn
) -> Statistics:
    by_status, by_event = await service.statistics(conn, account_id, campaign_id)
    return Statistics(
        campaign_id=campaign_id,
        total_leads=sum(by_status.values()),
        by_status=by_status,
        by_event=by_event,
    )
