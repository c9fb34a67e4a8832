"""Lead rules: import into a campaign, look a lead up."""

from __future__ import annotations

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.clock import utcnow
from openlead.leads import importer, repository
from openlead.leads.lifecycle import EventType, LeadStatus
from openlead.leads.schemas import ImportRequest, ImportResult, ImportSettings
from openlead.suppression import service as suppression
from openlead.web.errors import NotFound


async def _known(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    emails: list[str],
    settings: ImportSettings,
) -> importer.Known:
    in_campaign, elsewhere = await repository.presence(conn, account_id, campaign_id, emails)
    if settings.ignore_global_block_list and settings.ignore_unsubscribe_list:
        return importer.Known(frozenset(in_campaign), frozenset(elsewhere))
    suppressed = await suppression.suppressed(conn, account_id, emails)
    return importer.Known(
        in_campaign=frozenset(in_campaign),
        in_other_campaign=frozenset(elsewhere),
        blocked=suppressed.blocked,
        unsubscribed=suppressed.unsubscribed,
    )


async def import_leads(
    conn: AsyncConnection, account_id: int, campaign_id: int, request: ImportRequest
) -> ImportResult:
    """Add a batch of leads to a campaign in one transaction, a fixed number of statements."""
    settings = request.settings or ImportSettings()
    if not await repository.lock_campaign_for_import(conn, account_id, campaign_id):
        raise NotFound("Campaign")
    screened = importer.screen(request.lead_list)
    known = await _known(conn, account_id, campaign_id, screened.emails, settings)
    plan = importer.plan(screened, known, settings, total=len(request.lead_list))
    if plan.adds:
        now = utcnow()
        lead_ids = await repository.upsert_leads(conn, account_id, plan.adds, now)
        await repository.add_to_campaign(
            conn,
            account_id,
            campaign_id,
            lead_ids,
            LeadStatus.NOT_CONTACTED,
            settings.ignore_global_block_list,
            settings.ignore_unsubscribe_list,
            now,
        )
        await repository.record_events(
            conn, account_id, campaign_id, lead_ids, EventType.LEAD_ADDED, now
        )
    return plan.result()


async def get(conn: AsyncConnection, account_id: int, lead_id: int) -> Row:
    row = await repository.get_lead(conn, account_id, lead_id)
    if row is None:
        raise NotFound("Lead")
    return row
