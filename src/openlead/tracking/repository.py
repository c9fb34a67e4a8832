"""SQL for the tracking endpoints. Every statement is scoped by the account a signed token
names."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.tables import campaign_leads, campaigns, messages
from openlead.sending.repository import DELIVERED, SENDING
from openlead.tracking.tokens import EmailRef


async def sent_email(conn: AsyncConnection, ref: EmailRef) -> Row | None:
    """The email a token names, with its campaign's stop setting; None unless it went out."""
    query = (
        select(
            messages.c.id,
            messages.c.links,
            messages.c.variant_label,
            campaigns.c.stop_lead_settings,
        )
        .join(
            campaigns,
            (campaigns.c.account_id == messages.c.account_id)
            & (campaigns.c.id == messages.c.campaign_id),
        )
        .where(
            messages.c.account_id == ref.account_id,
            messages.c.campaign_id == ref.campaign_id,
            messages.c.lead_id == ref.lead_id,
            messages.c.seq_number == ref.seq_number,
            messages.c.state.in_((SENDING, *DELIVERED)),
        )
    )
    return (await conn.execute(query)).first()


async def stop_sequence(conn: AsyncConnection, ref: EmailRef, reason: str, now: datetime) -> bool:
    """No more steps for this lead in this campaign; False when it had none left."""
    result = await conn.execute(
        update(campaign_leads)
        .where(
            campaign_leads.c.account_id == ref.account_id,
            campaign_leads.c.campaign_id == ref.campaign_id,
            campaign_leads.c.lead_id == ref.lead_id,
            campaign_leads.c.next_seq.is_not(None),
        )
        .values(next_seq=None, next_send_at=None, hold=reason, updated_at=now)
    )
    return result.rowcount == 1
