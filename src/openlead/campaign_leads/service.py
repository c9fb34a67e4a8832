"""Rules for the leads of a campaign: statuses, unsubscribes, activity and statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import datetime

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaign_leads import export, repository
from openlead.campaigns import service as campaigns
from openlead.clock import utcnow
from openlead.db.engine import Database
from openlead.leads import service as leads
from openlead.leads.lifecycle import EventType, LeadStatus
from openlead.suppression import service as suppression
from openlead.web.errors import BadRequest, NotFound
from openlead.web.pagination import Page

VALID_STATUSES = [s.value for s in LeadStatus]
# A lead in one of these has finished with the campaign: an account-wide unsubscribe leaves
# its status as it is (the list entry alone keeps it from being contacted again).
FINISHED = frozenset(
    {LeadStatus.COMPLETED, LeadStatus.BOUNCED, LeadStatus.UNSUBSCRIBED, LeadStatus.DO_NOT_CONTACT}
)
# Setting one of these also changes the lead's memberships in every campaign (its address goes
# on a list, its other sequences stop).
ACCOUNT_WIDE = frozenset({LeadStatus.UNSUBSCRIBED, LeadStatus.DO_NOT_CONTACT})


def parse_status(raw: str) -> LeadStatus:
    try:
        return LeadStatus(raw)
    except ValueError:
        raise BadRequest(
            "invalid_status",
            f"Unknown lead status {raw[:40]!r}; valid statuses are {', '.join(VALID_STATUSES)}.",
            {"valid": VALID_STATUSES},
        ) from None


async def list_page(
    conn: AsyncConnection, account_id: int, campaign_id: int, status: str | None, page: Page
) -> tuple[list[Row], int]:
    wanted = parse_status(status) if status is not None else None
    await campaigns.get(conn, account_id, campaign_id)
    rows = await repository.page(
        conn, account_id, campaign_id, wanted, page.offset, page.fetched, page.after
    )
    total = await repository.count(conn, account_id, campaign_id, wanted)
    return rows, total


async def membership(conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int) -> Row:
    row = await repository.one(conn, account_id, campaign_id, lead_id)
    if row is None:
        raise NotFound("Lead in this campaign")
    return row


async def _record_change(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    previous: str,
    status: LeadStatus,
    source: str,
    now: datetime | None = None,
    unsubscribed_event: bool = True,
) -> None:
    now = now or utcnow()
    await repository.set_status(conn, account_id, [campaign_id], lead_id, status, now)
    change = {"from": previous, "to": status.value, "source": source}
    events = [(lead_id, campaign_id, EventType.STATUS_CHANGED.value, change)]
    if status is LeadStatus.UNSUBSCRIBED and unsubscribed_event:
        events.append((lead_id, campaign_id, EventType.UNSUBSCRIBED.value, {"source": source}))
    await repository.record_events(conn, account_id, events, now)


async def change_status(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    raw_status: str,
    source: str = "api",
    now: datetime | None = None,
) -> tuple[str, LeadStatus]:
    """Set a lead's status in a campaign; return (previous, new). ``now`` is the moment of
    what caused it, when that is not the request's.

    UNSUBSCRIBED also puts the address on the unsubscribe list and DO_NOT_CONTACT on the block
    list; a later change of status lifts neither.
    """
    status = parse_status(raw_status)
    if status in ACCOUNT_WIDE:
        # Lock every membership of the lead, in campaign order, before this one alone: two such
        # changes in two campaigns would otherwise each hold one and wait for the other's.
        await repository.memberships(conn, account_id, lead_id)
    row = await membership(conn, account_id, campaign_id, lead_id)
    changed = row.status != status
    if changed:
        # The account-wide unsubscribe below records the UNSUBSCRIBED event in each campaign.
        await _record_change(
            conn,
            account_id,
            campaign_id,
            lead_id,
            row.status,
            status,
            source,
            now,
            unsubscribed_event=False,
        )
    if status is LeadStatus.UNSUBSCRIBED:
        _, added = await unsubscribe_everywhere(conn, account_id, lead_id, source)
        if changed and not added:
            # The address was listed already (the lead was imported despite it, or set back
            # since): this campaign's unsubscribe is recorded all the same.
            event = (lead_id, campaign_id, EventType.UNSUBSCRIBED.value, {"source": source})
            await repository.record_events(conn, account_id, [event], now or utcnow())
    elif status is LeadStatus.DO_NOT_CONTACT:
        await suppression.block(conn, account_id, [row.email], [], source="do_not_contact")
    return row.status, status


async def unsubscribe_from_campaign(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int, source: str = "api"
) -> tuple[str, LeadStatus]:
    """This campaign only: the address stays off the account's unsubscribe list."""
    row = await membership(conn, account_id, campaign_id, lead_id)
    if row.status != LeadStatus.UNSUBSCRIBED:
        await _record_change(
            conn, account_id, campaign_id, lead_id, row.status, LeadStatus.UNSUBSCRIBED, source
        )
    return row.status, LeadStatus.UNSUBSCRIBED


async def unsubscribe_everywhere(
    conn: AsyncConnection, account_id: int, lead_id: int, source: str = "api"
) -> tuple[Row, bool]:
    """Put the lead's address on the unsubscribe list and set UNSUBSCRIBED in every campaign
    where it has not finished. Returns the lead, and False when it was already on the list."""
    lead = await leads.get(conn, account_id, lead_id)
    added = await suppression.unsubscribe(conn, account_id, lead.email, source)
    now = utcnow()
    current = await repository.memberships(conn, account_id, lead_id)
    unfinished = [m for m in current if m.status not in FINISHED]
    if unfinished:
        await repository.set_status(
            conn,
            account_id,
            [m.campaign_id for m in unfinished],
            lead_id,
            LeadStatus.UNSUBSCRIBED,
            now,
        )
    events: list[tuple[int, int | None, str, dict | None]] = [
        (
            lead_id,
            m.campaign_id,
            EventType.STATUS_CHANGED.value,
            {"from": m.status, "to": LeadStatus.UNSUBSCRIBED.value, "source": source},
        )
        for m in unfinished
    ]
    if added:
        # One UNSUBSCRIBED event in each campaign's timeline (or one account-wide event for a
        # lead in no campaign), so every campaign's activity and statistics show it.
        scopes: list[int | None] = [m.campaign_id for m in current] or [None]
        events += [
            (lead_id, scope, EventType.UNSUBSCRIBED.value, {"scope": "account", "source": source})
            for scope in scopes
        ]
    await repository.record_events(conn, account_id, events, now)
    return lead, added


async def remove(conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int) -> None:
    if not await repository.remove(conn, account_id, campaign_id, lead_id):
        raise NotFound("Lead in this campaign")


async def activity(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int, page: Page
) -> list[Row]:
    await membership(conn, account_id, campaign_id, lead_id)
    return await repository.events(conn, account_id, campaign_id, lead_id, page)


async def statistics(
    conn: AsyncConnection, account_id: int, campaign_id: int
) -> tuple[dict[str, int], dict[str, int]]:
    await campaigns.get(conn, account_id, campaign_id)
    by_status = {s: 0 for s in VALID_STATUSES}
    by_status.update(dict(await repository.status_counts(conn, account_id, campaign_id)))
    by_event = {e.value: 0 for e in EventType}
    by_event.update(dict(await repository.event_counts(conn, account_id, campaign_id)))
    return by_status, by_event


# Rows per batch. Larger batches hand over between the database's thread and the event loop
# less often (on SQLite each hand-over can wait for the GIL): 10,000 exports a million leads
# about 15% faster than 5,000 (docs/performance.md). Smaller ones hold the event loop for
# less time at once (about 40 ms of formatting here) and take less memory (two batches,
# 35 to 50 MB here, whatever the campaign's size).
EXPORT_BATCH = 10_000


async def export_csv(database: Database, account_id: int, campaign_id: int) -> AsyncIterator[bytes]:
    """The campaign as CSV, a batch at a time, in one read transaction (one snapshot)."""
    async with database.read(snapshot=True) as conn:
        writer = export.CsvWriter(await repository.custom_field_keys(conn, account_id, campaign_id))
        yield writer.header()
        # Closed here, not when collected: it may have a query in flight on this connection.
        batches = repository.export_columns(conn, account_id, campaign_id, EXPORT_BATCH)
        async with aclosing(batches):
            async for columns in batches:
                yield writer.columns(columns)
