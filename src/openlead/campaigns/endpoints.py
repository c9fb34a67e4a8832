"""HTTP endpoints for campaigns."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy.engine import Row

from openlead.campaigns import service
from openlead.campaigns.schemas import (
    Campaign,
    CampaignCreate,
    CampaignCreated,
    CampaignSchedule,
    CampaignSettings,
    CampaignSettingsView,
    CampaignStatusChange,
    CampaignStatusChanged,
    Deleted,
    ScheduleSaved,
    SettingsSaved,
)
from openlead.clock import iso
from openlead.sending.schedule import format_clock
from openlead.web.deps import AccountId, ReadConn, WriteConn
from openlead.web.ids import ObjectId
from openlead.web.pagination import PageParams

router = APIRouter(tags=["campaigns"])


def _schedule(row: Row) -> CampaignSchedule | None:
    if row.schedule_timezone is None:
        return None
    return CampaignSchedule(
        timezone=row.schedule_timezone,
        days_of_the_week=list(row.schedule_days or []),
        start_hour=format_clock(row.schedule_start_minute),
        end_hour=format_clock(row.schedule_end_minute),
        min_time_btw_emails=row.min_time_btw_emails,
        max_new_leads_per_day=row.max_new_leads_per_day,
        schedule_start_time=iso(row.schedule_starts_at),
    )


def _settings(row: Row) -> CampaignSettingsView:
    return CampaignSettingsView(
        track_settings=list(row.track_settings or []),
        stop_lead_settings=row.stop_lead_settings,
        unsubscribe_text=row.unsubscribe_text,
        send_as_plain_text=bool(row.send_as_plain_text),
    )


def _campaign(row: Row) -> Campaign:
    return Campaign(
        id=row.id,
        name=row.name,
        status=row.status,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        schedule=_schedule(row),
        settings=_settings(row),
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
    return [_campaign(r) for r in page.rows(rows)]


@router.get("/campaigns/{campaign_id:int}", response_model=Campaign)
async def get_campaign(campaign_id: ObjectId, account_id: AccountId, conn: ReadConn) -> Campaign:
    return _campaign(await service.get(conn, account_id, campaign_id))


@router.delete("/campaigns/{campaign_id:int}", response_model=Deleted)
async def delete_campaign(campaign_id: ObjectId, account_id: AccountId, conn: WriteConn) -> Deleted:
    await service.delete(conn, account_id, campaign_id)
    return Deleted()


@router.post("/campaigns/{campaign_id:int}/schedule", response_model=ScheduleSaved)
async def save_schedule(
    campaign_id: ObjectId, body: CampaignSchedule, account_id: AccountId, conn: WriteConn
) -> ScheduleSaved:
    """When the campaign sends: days (0 = Sunday) and hours in its time zone, the minutes
    between two emails of one mailbox, and how many new leads it starts a day."""
    row = await service.set_schedule(conn, account_id, campaign_id, body)
    schedule = _schedule(row)
    assert schedule is not None
    return ScheduleSaved(id=row.id, schedule=schedule)


@router.post("/campaigns/{campaign_id:int}/settings", response_model=SettingsSaved)
async def save_settings(
    campaign_id: ObjectId, body: CampaignSettings, account_id: AccountId, conn: WriteConn
) -> SettingsSaved:
    """Tracking, when a lead's sequence stops, the unsubscribe footer, plain text. Fields left
    out keep their value."""
    row = await service.set_settings(conn, account_id, campaign_id, body)
    return SettingsSaved(id=row.id, settings=_settings(row))


@router.post("/campaigns/{campaign_id:int}/status", response_model=CampaignStatusChanged)
async def change_status(
    campaign_id: ObjectId, body: CampaignStatusChange, account_id: AccountId, conn: WriteConn
) -> CampaignStatusChanged:
    """START (refused with a 400 that lists every reason when the campaign is not ready),
    PAUSED or STOPPED (final)."""
    previous, status = await service.change_status(conn, account_id, campaign_id, body.status)
    return CampaignStatusChanged(id=campaign_id, status=status, previous_status=previous)
