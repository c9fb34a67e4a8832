"""SQL for the leads of a campaign. Every statement is scoped by account.

Pages are read by the ``(account_id, campaign_id[, status], lead_id)`` indexes, so a page at
any depth by cursor costs what the first page costs. ``is_unsubscribed`` and ``is_blocked``
are computed when read, from the lists, so a new block shows at once on every lead it hits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.dialect import is_postgres
from openlead.db.tables import block_list, campaign_leads, lead_events, leads, unsubscribes
from openlead.leads.lifecycle import EventType, LeadStatus
from openlead.leads.schemas import PROFILE_FIELDS

_membership = and_(
    campaign_leads.c.account_id == leads.c.account_id, campaign_leads.c.lead_id == leads.c.id
)


def is_unsubscribed() -> ColumnElement[bool]:
    listed = exists().where(
        unsubscribes.c.account_id == leads.c.account_id, unsubscribes.c.email == leads.c.email
    )
    return or_(listed, campaign_leads.c.status == LeadStatus.UNSUBSCRIBED)


def is_blocked() -> ColumnElement[bool]:
    # Two EXISTS rather than one with an OR inside, so each is one probe of the unique index.
    by_address = exists().where(
        block_list.c.account_id == leads.c.account_id,
        block_list.c.kind == "email",
        block_list.c.value == leads.c.email,
    )
    by_domain = exists().where(
        block_list.c.account_id == leads.c.account_id,
        block_list.c.kind == "domain",
        block_list.c.value == leads.c.email_domain,
    )
    return or_(by_address, by_domain)


def _columns() -> list[Any]:
    return [
        leads.c.id,
        leads.c.email,
        *(leads.c[f] for f in PROFILE_FIELDS),
        leads.c.custom_fields,
        campaign_leads.c.status,
        is_unsubscribed().label("is_unsubscribed"),
        is_blocked().label("is_blocked"),
        campaign_leads.c.created_at,
        campaign_leads.c.updated_at,
        leads.c.updated_at.label("profile_updated_at"),
    ]


def _in_campaign(account_id: int, campaign_id: int, status: str | None) -> list[Any]:
    conditions = [
        campaign_leads.c.account_id == account_id,
        campaign_leads.c.campaign_id == campaign_id,
    ]
    if status is not None:
        conditions.append(campaign_leads.c.status == status)
    return conditions


async def page(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    status: str | None,
    offset: int,
    limit: int,
    after: int | None,
) -> list[Row]:
    # The page's lead ids first, from the index alone (an offset skips index entries, not
    # joined rows); then the page's rows, joined by key. The one join also keeps PostgreSQL
    # from merge-joining ``leads`` from its first row when the cursor is deep.
    chosen = select(campaign_leads.c.lead_id).where(
        *_in_campaign(account_id, campaign_id, status)
    )
    if after is not None:
        chosen = chosen.where(campaign_leads.c.lead_id > after)
    ids = chosen.order_by(campaign_leads.c.lead_id).offset(offset).limit(limit).subquery("page")
    rows = campaign_leads.join(
        ids,
        and_(
            *_in_campaign(account_id, campaign_id, None),
            campaign_leads.c.lead_id == ids.c.lead_id,
        ),
    ).join(leads, _membership)
    query = select(*_columns()).select_from(rows).order_by(campaign_leads.c.lead_id)
    return list((await conn.execute(query)).all())


async def count(
    conn: AsyncConnection, account_id: int, campaign_id: int, status: str | None
) -> int:
    query = select(func.count()).where(*_in_campaign(account_id, campaign_id, status))
    return (await conn.execute(query.select_from(campaign_leads))).scalar_one()


async def one(conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int) -> Row | None:
    query = (
        select(*_columns())
        .select_from(campaign_leads.join(leads, _membership))
        .where(*_in_campaign(account_id, campaign_id, None), campaign_leads.c.lead_id == lead_id)
    )
    if is_postgres(conn):
        query = query.with_for_update(of=campaign_leads)
    return (await conn.execute(query)).first()


async def memberships(conn: AsyncConnection, account_id: int, lead_id: int) -> list[Row]:
    query = (
        select(campaign_leads.c.campaign_id, campaign_leads.c.status)
        .where(campaign_leads.c.account_id == account_id, campaign_leads.c.lead_id == lead_id)
        .order_by(campaign_leads.c.campaign_id)
    )
    if is_postgres(conn):
        query = query.with_for_update()
    return list((await conn.execute(query)).all())


async def set_status(
    conn: AsyncConnection,
    account_id: int,
    campaign_ids: Iterable[int],
    lead_id: int,
    status: str,
    now: datetime,
) -> None:
    await conn.execute(
        update(campaign_leads)
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.lead_id == lead_id,
            campaign_leads.c.campaign_id.in_(list(campaign_ids)),
        )
        .values(status=status, updated_at=now)
    )


async def remove(conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int) -> bool:
    result = await conn.execute(
        delete(campaign_leads).where(
            *_in_campaign(account_id, campaign_id, None), campaign_leads.c.lead_id == lead_id
        )
    )
    return result.rowcount == 1


async def events(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int
) -> list[Row]:
    """The lead's events in this campaign and its account-wide ones, oldest first."""
    query = (
        select(lead_events.c.type, lead_events.c.data, lead_events.c.created_at)
        .where(
            lead_events.c.account_id == account_id,
            lead_events.c.lead_id == lead_id,
            or_(lead_events.c.campaign_id == campaign_id, lead_events.c.campaign_id.is_(None)),
        )
        .order_by(lead_events.c.id)
    )
    return list((await conn.execute(query)).all())


async def record_events(
    conn: AsyncConnection,
    account_id: int,
    events: list[tuple[int, int | None, str, dict[str, Any] | None]],
    now: datetime,
) -> None:
    """Record (lead_id, campaign_id, type, data) events in one statement."""
    if events:
        await conn.execute(
            insert(lead_events),
            [
                {
                    "account_id": account_id,
                    "lead_id": lead_id,
                    "campaign_id": campaign_id,
                    "type": kind,
                    "data": data,
                    "created_at": now,
                }
                for lead_id, campaign_id, kind, data in events
            ],
        )


async def record_blocked(
    conn: AsyncConnection,
    account_id: int,
    emails: list[str],
    domains: list[str],
    source: str,
    now: datetime,
) -> int:
    """A BLOCKED event on every campaign membership of the newly blocked addresses, in one
    INSERT … SELECT whatever their number."""
    matches = []
    if emails:
        matches.append(leads.c.email.in_(emails))
    if domains:
        matches.append(leads.c.email_domain.in_(domains))
    if not matches:
        return 0
    chosen = (
        select(
            campaign_leads.c.account_id,
            campaign_leads.c.lead_id,
            campaign_leads.c.campaign_id,
            literal(EventType.BLOCKED.value).label("type"),
            literal({"source": source}, type_=lead_events.c.data.type).label("data"),
            literal(now, type_=lead_events.c.created_at.type).label("created_at"),
        )
        .select_from(campaign_leads.join(leads, _membership))
        .where(leads.c.account_id == account_id, or_(*matches))
    )
    statement = insert(lead_events).from_select(
        ["account_id", "lead_id", "campaign_id", "type", "data", "created_at"], chosen
    )
    return (await conn.execute(statement)).rowcount


async def status_counts(conn: AsyncConnection, account_id: int, campaign_id: int) -> list[Row]:
    query = (
        select(campaign_leads.c.status, func.count())
        .where(*_in_campaign(account_id, campaign_id, None))
        .group_by(campaign_leads.c.status)
    )
    return list((await conn.execute(query)).all())


async def event_counts(conn: AsyncConnection, account_id: int, campaign_id: int) -> list[Row]:
    query = (
        select(lead_events.c.type, func.count())
        .where(lead_events.c.account_id == account_id, lead_events.c.campaign_id == campaign_id)
        .group_by(lead_events.c.type)
    )
    return list((await conn.execute(query)).all())


async def custom_field_keys(conn: AsyncConnection, account_id: int, campaign_id: int) -> list[str]:
    """Every custom-field key used by the campaign's leads, computed in the database."""
    if is_postgres(conn):
        statement = sql_text(
            "SELECT DISTINCT jsonb_object_keys(l.custom_fields) FROM campaign_leads cl "
            "JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id "
            "WHERE cl.account_id = :account_id AND cl.campaign_id = :campaign_id"
        )
    else:
        statement = sql_text(
            "SELECT DISTINCT j.key FROM campaign_leads cl "
            "JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id, "
            "json_each(l.custom_fields) AS j "
            "WHERE cl.account_id = :account_id AND cl.campaign_id = :campaign_id"
        )
    params = {"account_id": account_id, "campaign_id": campaign_id}
    return sorted((await conn.execute(statement, params)).scalars())


async def export_batch(
    conn: AsyncConnection, account_id: int, campaign_id: int, after: int, size: int
) -> list[Row]:
    """The next ``size`` leads after a lead id: export walks the campaign by keyset."""
    query = (
        select(*_columns())
        .select_from(campaign_leads.join(leads, _membership))
        .where(*_in_campaign(account_id, campaign_id, None), campaign_leads.c.lead_id > after)
        .order_by(campaign_leads.c.lead_id)
        .limit(size)
    )
    return list((await conn.execute(query)).all())
