"""SQL for reading inboxes. Finding the inboxes due a read spans accounts (as the sender's
claim does); every other statement is scoped by the account of the inbox being read."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.addresses import domain_of
from openlead.db.tables import campaign_leads, campaigns, email_accounts, leads, messages
from openlead.sending.repository import DELIVERED, SENDING

_SENT_STATES = (SENDING, *DELIVERED)


async def inboxes_due(conn: AsyncConnection, read_before: datetime, limit: int) -> list[Row]:
    """Mailboxes with an inbox to read that were not read since ``read_before``, least
    recently read first."""
    query = (
        select(email_accounts)
        .where(
            email_accounts.c.imap_host.is_not(None),
            or_(
                email_accounts.c.imap_checked_at.is_(None),
                email_accounts.c.imap_checked_at <= read_before,
            ),
        )
        .order_by(email_accounts.c.imap_checked_at.is_not(None), email_accounts.c.imap_checked_at)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


def _mailbox(row: Row) -> list:
    return [email_accounts.c.account_id == row.account_id, email_accounts.c.id == row.id]


async def claim_inbox(conn: AsyncConnection, row: Row, now: datetime) -> bool:
    """This worker reads the inbox now: False when another one claimed it since ``row`` was
    read (its ``imap_checked_at`` moved)."""
    unchanged = _same(email_accounts.c.imap_checked_at, row.imap_checked_at)
    result = await conn.execute(
        update(email_accounts).where(*_mailbox(row), unchanged).values(imap_checked_at=now)
    )
    return result.rowcount == 1


async def move_cursor(
    conn: AsyncConnection, row: Row, old: tuple[int | None, int | None], new: tuple[int, int]
) -> bool:
    """The inbox read up to a new (UIDVALIDITY, UID), unless another reader moved the cursor
    from ``old`` meanwhile (then the caller rolls back, so nothing is recorded twice)."""
    result = await conn.execute(
        update(email_accounts)
        .where(
            *_mailbox(row),
            _same(email_accounts.c.imap_uidvalidity, old[0]),
            _same(email_accounts.c.imap_last_uid, old[1]),
        )
        .values(imap_uidvalidity=new[0], imap_last_uid=new[1], imap_error=None)
    )
    return result.rowcount == 1


def _same(column, value):  # type: ignore[no-untyped-def]
    return column.is_(None) if value is None else column == value


async def set_inbox_error(conn: AsyncConnection, row: Row, error: str) -> None:
    await conn.execute(update(email_accounts).where(*_mailbox(row)).values(imap_error=error))


_ANSWERED = (
    messages.c.id,
    messages.c.campaign_id,
    messages.c.lead_id,
    messages.c.seq_number,
    messages.c.message_id,
    campaigns.c.stop_lead_settings,
    campaigns.c.track_settings,
)


def _with_campaign(query):  # type: ignore[no-untyped-def]
    return query.join(
        campaigns,
        and_(
            campaigns.c.account_id == messages.c.account_id,
            campaigns.c.id == messages.c.campaign_id,
        ),
    )


async def emails_named(conn: AsyncConnection, account_id: int, message_ids: list[str]) -> list[Row]:
    """The account's emails that went out with these Message-IDs, with their campaigns'
    settings."""
    query = _with_campaign(select(*_ANSWERED).select_from(messages)).where(
        messages.c.account_id == account_id,
        messages.c.message_id.in_(message_ids),
        messages.c.state.in_(_SENT_STATES),
    )
    return list((await conn.execute(query)).all())


async def last_email_to(
    conn: AsyncConnection, account_id: int, mailbox_id: int, address: str, before: datetime
) -> Row | None:
    """The latest email this mailbox sent to the lead with this address before ``before``."""
    query = (
        _with_campaign(
            select(*_ANSWERED)
            .select_from(leads)
            .join(
                campaign_leads,
                and_(
                    campaign_leads.c.account_id == leads.c.account_id,
                    campaign_leads.c.lead_id == leads.c.id,
                ),
            )
            .join(
                messages,
                and_(
                    messages.c.account_id == campaign_leads.c.account_id,
                    messages.c.campaign_id == campaign_leads.c.campaign_id,
                    messages.c.lead_id == campaign_leads.c.lead_id,
                ),
            )
        )
        .where(
            leads.c.account_id == account_id,
            leads.c.email_domain == domain_of(address),
            leads.c.email == address,
            messages.c.email_account_id == mailbox_id,
            messages.c.state.in_(_SENT_STATES),
            messages.c.created_at <= before,
        )
        .order_by(messages.c.created_at.desc(), messages.c.id.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()
