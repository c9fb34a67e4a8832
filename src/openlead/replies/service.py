"""What a lead's answer does: an ``EMAIL_REPLIED`` event on the email it answers, and, when
the campaign stops a lead's sequence on a reply (``stop_lead_settings: REPLY_TO_AN_EMAIL``, the
default), no further step for that lead in that campaign. An automatic answer (out of office)
is recorded as such and stops nothing; a campaign that does not track replies
(``DONT_TRACK_REPLY_TO_AN_EMAIL``) records none (docs/sending.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaign_leads import repository as campaign_leads
from openlead.leads.lifecycle import EventType
from openlead.replies import repository
from openlead.replies.answers import Answer
from openlead.tracking.repository import stop_sequence
from openlead.tracking.tokens import EmailRef

STOPS_ON_REPLY = "REPLY_TO_AN_EMAIL"
NOT_TRACKED = "DONT_TRACK_REPLY_TO_AN_EMAIL"
STOPPED = "stopped_on_email_replied"


@dataclass(frozen=True)
class Recorded:
    campaign_id: int
    lead_id: int
    stopped: bool


async def _answered(
    conn: AsyncConnection, mailbox: Row, answer: Answer, now: datetime
) -> Row | None:
    """The email ``answer`` answers: the nearest one its headers name, else the last one this
    mailbox sent its sender before it arrived."""
    if answer.answers:
        found = await repository.emails_named(conn, mailbox.account_id, list(answer.answers))
        by_id = {row.message_id: row for row in found}
        for message_id in answer.answers:
            if message_id in by_id:
                return by_id[message_id]
    if answer.sender is None:
        return None
    before = answer.received_at or now
    return await repository.last_email_to(
        conn, mailbox.account_id, mailbox.id, answer.sender, before
    )


async def record(
    conn: AsyncConnection, mailbox: Row, answer: Answer, now: datetime
) -> Recorded | None:
    """Record one arrived message; None when it answers none of the account's emails (or is a
    delivery report, or its campaign does not track replies)."""
    if answer.report:
        return None
    email = await _answered(conn, mailbox, answer, now)
    if email is None or NOT_TRACKED in (email.track_settings or []):
        return None
    data = {
        "seq_number": email.seq_number,
        "message_id": answer.message_id,
        "from": answer.sender,
        "subject": answer.subject,
        "automatic": answer.automatic,
        "email_account_id": mailbox.id,
    }
    event = (email.lead_id, email.campaign_id, EventType.EMAIL_REPLIED.value, data)
    await campaign_leads.record_events(conn, mailbox.account_id, [event], now)
    stopped = False
    if email.stop_lead_settings == STOPS_ON_REPLY and not answer.automatic:
        ref = EmailRef(mailbox.account_id, email.campaign_id, email.lead_id, email.seq_number)
        stopped = await stop_sequence(conn, ref, STOPPED, now)
    return Recorded(email.campaign_id, email.lead_id, stopped)
