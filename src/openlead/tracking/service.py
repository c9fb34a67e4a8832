"""What a recipient's click, open or unsubscribe does."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaign_leads import repository as campaign_leads
from openlead.campaign_leads import service as memberships
from openlead.clock import utcnow
from openlead.leads.lifecycle import EventType
from openlead.tracking import repository
from openlead.tracking.tokens import EmailRef
from openlead.web.errors import NotFound

UNSUBSCRIBE_SOURCE = "unsubscribe_link"
# The campaign's stop_lead_settings value that each engagement ends a sequence on.
_STOPS_ON = {EventType.EMAIL_OPENED: "OPEN_AN_EMAIL", EventType.LINK_CLICKED: "CLICK_ON_A_LINK"}


async def _email(conn: AsyncConnection, ref: EmailRef) -> Row:
    email = await repository.sent_email(conn, ref)
    if email is None:
        raise NotFound("Link")
    return email


async def _engaged(
    conn: AsyncConnection, ref: EmailRef, email: Row, kind: EventType, data: dict[str, Any]
) -> None:
    now = utcnow()
    event = (ref.lead_id, ref.campaign_id, kind.value, {"seq_number": ref.seq_number, **data})
    await campaign_leads.record_events(conn, ref.account_id, [event], now)
    if email.stop_lead_settings == _STOPS_ON[kind]:
        await repository.stop_sequence(conn, ref, f"stopped_on_{kind.value.lower()}", now)


async def opened(conn: AsyncConnection, ref: EmailRef) -> None:
    email = await _email(conn, ref)
    await _engaged(conn, ref, email, EventType.EMAIL_OPENED, {})


async def clicked(conn: AsyncConnection, ref: EmailRef, link: int) -> str:
    """The address the link pointed at, when it was one of this email's links."""
    email = await _email(conn, ref)
    links = email.links or []
    if not 0 <= link < len(links):
        raise NotFound("Link")
    await _engaged(conn, ref, email, EventType.LINK_CLICKED, {"url": links[link]})
    return str(links[link])


async def unsubscribed(conn: AsyncConnection, ref: EmailRef) -> str:
    """Account-wide, as the link promises; the address, to show on the page.

    The signature is proof enough that the email was sent to this lead: its way out must keep
    working after its campaign, and with it the record of the email, was deleted."""
    try:
        lead, _ = await memberships.unsubscribe_everywhere(
            conn, ref.account_id, ref.lead_id, UNSUBSCRIBE_SOURCE
        )
    except NotFound:
        raise NotFound("Link") from None
    return str(lead.email)
