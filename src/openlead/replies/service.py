"""What a lead's answer does: an ``EMAIL_REPLIED`` event on the email it answers, and, when
the campaign stops a lead's sequence on a reply (``stop_lead_settings: REPLY_TO_AN_EMAIL``, the
default), no further step for that lead in that campaign. An automatic answer (out of office)
is recorded as such and stops nothing; a campaign that does not track replies
(``DONT_TRACK_REPLY_TO_AN_EMAIL``) records none. A delivery report that says a lead's address
failed for good bounces the lead, as a refusal at RCPT TO would have; one that says the message
was refused for the sender's or the content's sake stops the lead's sequence and blocks nobody
(docs/sending.md)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaign_leads import repository as campaign_leads
from openlead.campaign_leads import service as memberships
from openlead.leads.lifecycle import HOLD_REJECTED, EventType, LeadStatus
from openlead.replies import repository
from openlead.replies.answers import Answer, Failure, Report
from openlead.sending import repository as sending
from openlead.sending.smtp import permanent_verdict
from openlead.suppression import service as suppression
from openlead.tracking.repository import stop_sequence
from openlead.tracking.tokens import EmailRef

STOPS_ON_REPLY = "REPLY_TO_AN_EMAIL"
NOT_TRACKED = "DONT_TRACK_REPLY_TO_AN_EMAIL"
STOPPED = "stopped_on_email_replied"
BOUNCE_SOURCE = "bounce"
BOUNCED_HOLD = "bounced"
# The statuses a late bounce turns into BOUNCED; one a person set (INTERESTED…) is kept.
LATE_BOUNCE_STATUSES = (
    LeadStatus.NOT_CONTACTED.value,
    LeadStatus.IN_PROGRESS.value,
    LeadStatus.COMPLETED.value,
)


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


async def record(conn: AsyncConnection, mailbox: Row, answer: Answer, now: datetime) -> bool:
    """Record one arrived message that is not a delivery report; False when it answers none
    of the account's emails, or its campaign does not track replies."""
    email = await _answered(conn, mailbox, answer, now)
    if email is None or NOT_TRACKED in (email.track_settings or []):
        return False
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
    if email.stop_lead_settings == STOPS_ON_REPLY and not answer.automatic:
        ref = EmailRef(mailbox.account_id, email.campaign_id, email.lead_id, email.seq_number)
        await stop_sequence(conn, ref, STOPPED, now)
    return True


async def record_report(conn: AsyncConnection, mailbox: Row, report: Report, now: datetime) -> int:
    """A delivery report: each recipient it says failed for good, who is a lead this account
    emailed, bounced as an SMTP refusal would have it (docs/sending.md). The number bounced."""
    quoted: Row | None = None
    if report.original_message_id is not None:
        named = await repository.emails_named(
            conn, mailbox.account_id, [report.original_message_id]
        )
        quoted = named[0] if named else None
    bounced = 0
    for failure in report.failures:
        email = quoted
        if email is None:
            email = await repository.last_email_to(
                conn, mailbox.account_id, mailbox.id, failure.recipient, now
            )
        if email is not None and await _bounced(conn, mailbox, email, failure, now):
            bounced += 1
    return bounced


async def _bounced(
    conn: AsyncConnection, mailbox: Row, email: Row, failure: Failure, now: datetime
) -> bool:
    account_id, campaign_id, lead_id = mailbox.account_id, email.campaign_id, email.lead_id
    member = await campaign_leads.one(conn, account_id, campaign_id, lead_id)
    if member is None or member.email != failure.recipient:
        return False  # gone from the campaign, or a report about someone else
    error = f"{failure.status} {failure.diagnostic}".strip()
    await sending.set_message_state(
        conn, account_id, email.id, sending.BOUNCED, now, error, from_states=sending.DELIVERED
    )
    # As at RCPT TO: a failure for the sender's or the content's sake (5.7.x and the like)
    # says nothing against the address, so it stops the sequence and blocks nobody.
    address_failed = permanent_verdict(failure.status) == "permanent"
    bounced = {
        "seq_number": email.seq_number,
        "email_account_id": mailbox.id,
        "status": failure.status,
        "diagnostic": failure.diagnostic,
        "permanent": address_failed,
        "reported": True,
        **({} if address_failed else {"rejected": True}),
    }
    event = (lead_id, campaign_id, EventType.EMAIL_BOUNCED.value, bounced)
    # The bounce first, then what it caused, at its moment: as the sender records a refusal.
    await campaign_leads.record_events(conn, account_id, [event], now)
    ref = EmailRef(account_id, campaign_id, lead_id, email.seq_number)
    if not address_failed:
        await stop_sequence(conn, ref, HOLD_REJECTED, now)
        return True
    if member.status in LATE_BOUNCE_STATUSES:
        await memberships.change_status(
            conn, account_id, campaign_id, lead_id, LeadStatus.BOUNCED.value, BOUNCE_SOURCE, now
        )
    await stop_sequence(conn, ref, BOUNCED_HOLD, now)
    await suppression.block(conn, account_id, [failure.recipient], [], source=BOUNCE_SOURCE)
    return True
