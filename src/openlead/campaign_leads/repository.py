"""SQL for the leads of a campaign. Every statement is scoped by account.

Pages are read by the ``(account_id, campaign_id[, status], lead_id)`` indexes, so a page at
any depth by cursor costs what the first page costs. ``is_unsubscribed`` and ``is_blocked``
are computed when read, from the lists, so a new block shows at once on every lead it hits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    Text,
    and_,
    bindparam,
    case,
    cast,
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
from sqlalchemy.types import NullType

from openlead.db import driver
from openlead.db.dialect import is_postgres, timestamp_value
from openlead.db.jsoncodec import dumps, loads
from openlead.db.tables import block_list, campaign_leads, lead_events, leads, unsubscribes
from openlead.leads import repository as lead_repository
from openlead.leads.lifecycle import EventType, LeadStatus
from openlead.leads.schemas import PROFILE_FIELDS
from openlead.web.pagination import Page

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
        campaign_leads.c.next_seq,
        campaign_leads.c.next_send_at,
        campaign_leads.c.hold,
        campaign_leads.c.email_account_id,
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
    if offset:
        # Skip by the index alone, then read the page from there as a cursor would: an
        # offset then costs a walk over index entries, not over joined and computed rows.
        skipped = select(campaign_leads.c.lead_id).where(
            *_in_campaign(account_id, campaign_id, status)
        )
        if after is not None:
            skipped = skipped.where(campaign_leads.c.lead_id > after)
        skipped = skipped.order_by(campaign_leads.c.lead_id).offset(offset).limit(1)
        first = (await conn.execute(skipped)).scalar()
        if first is None:
            return []
        after = first - 1
    query = (
        select(*_columns())
        .select_from(campaign_leads.join(leads, _membership))
        .where(*_in_campaign(account_id, campaign_id, status))
    )
    if after is not None:
        query = query.where(*_after(after))
    query = query.order_by(campaign_leads.c.lead_id).limit(limit)
    return list((await conn.execute(query)).all())


def _after(lead_id: int) -> list[Any]:
    # On both sides of the join: PostgreSQL does not carry a range across a join, and
    # without it merge-joins ``leads`` from its first row however deep the cursor is.
    return [campaign_leads.c.lead_id > lead_id, leads.c.id > lead_id]


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
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status in (LeadStatus.NOT_CONTACTED, LeadStatus.IN_PROGRESS):
        # Set back to a status that sends: a follow-up the sender had let go of (it found the
        # lead in another status) is due again. A lead at step 1 needs nothing: it is fresh.
        stopped = and_(
            campaign_leads.c.next_seq > 1,
            campaign_leads.c.next_send_at.is_(None),
            campaign_leads.c.hold.is_(None),
        )
        values["next_send_at"] = case((stopped, now), else_=campaign_leads.c.next_send_at)
    await conn.execute(
        update(campaign_leads)
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.lead_id == lead_id,
            campaign_leads.c.campaign_id.in_(list(campaign_ids)),
        )
        .values(values)
    )


async def remove(conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int) -> bool:
    result = await conn.execute(
        delete(campaign_leads).where(
            *_in_campaign(account_id, campaign_id, None), campaign_leads.c.lead_id == lead_id
        )
    )
    return result.rowcount == 1


async def events(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int, page: Page
) -> list[Row]:
    """A page of the lead's events in this campaign and its account-wide ones, oldest first,
    and one more (``Page.fetched``)."""
    query = select(
        lead_events.c.id, lead_events.c.type, lead_events.c.data, lead_events.c.created_at
    ).where(
        lead_events.c.account_id == account_id,
        lead_events.c.lead_id == lead_id,
        or_(lead_events.c.campaign_id == campaign_id, lead_events.c.campaign_id.is_(None)),
    )
    return list((await conn.execute(page.of(query, lead_events.c.id))).all())


async def record_events(
    conn: AsyncConnection,
    account_id: int,
    events: list[tuple[int, int | None, str, dict[str, Any] | None]],
    now: datetime,
) -> None:
    """Record (lead_id, campaign_id, type, data) events in one statement."""
    await record_events_of(conn, [(account_id, *event, now) for event in events])


_INSERT_EVENTS = {
    "sqlite": "INSERT INTO lead_events (account_id, lead_id, campaign_id, type, data, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "postgresql": "INSERT INTO lead_events (account_id, lead_id, campaign_id, type, data,"
    " created_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6)",
}


async def record_events_of(
    conn: AsyncConnection,
    events: list[tuple[int, int, int | None, str, dict[str, Any] | None, datetime]],
) -> None:
    """Record (account_id, lead_id, campaign_id, type, data, created_at) events, of any
    accounts, in one statement (on the driver: the sender records every email it sends)."""
    if events:
        rows = [
            (account_id, lead_id, campaign_id, kind, dumps(data), timestamp_value(conn, moment))
            for account_id, lead_id, campaign_id, kind, data, moment in events
        ]
        await driver.execute_many(conn, _INSERT_EVENTS[conn.dialect.name], rows)


def _at_addresses(
    conn: AsyncConnection, emails: Sequence[str], domains: Sequence[str]
) -> ColumnElement[bool] | None:
    """Leads at one of these addresses or domains (each an index probe); None for neither."""
    matches = []
    if emails:
        matches.append(lead_repository.address_is_one_of(conn, list(emails)))
    if domains:
        matches.append(leads.c.email_domain.in_(list(domains)))
    return or_(*matches) if matches else None


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
    matching = _at_addresses(conn, emails, domains)
    if matching is None:
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
        .where(leads.c.account_id == account_id, matching)
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


# Custom-field keys are found by probing rather than by listing every key of every lead: a
# probe asks for the first lead after a position that has a key not yet known, so a campaign
# whose leads share a few key sets is read once, cheaply (no JSON rows to sort and count).
# After this many probes, or a probe that cannot name a key, the rest are listed outright.
KEY_PROBES = 32
# SQLite's json_remove() takes each key as a path argument, up to its limit on arguments.
_SQLITE_PATH_KEYS = 100


async def custom_field_keys(conn: AsyncConnection, account_id: int, campaign_id: int) -> list[str]:
    """Every custom-field key used by the campaign's leads, computed in the database."""
    known: set[str] = set()
    after = 0
    for _ in range(KEY_PROBES):
        if not is_postgres(conn) and (
            len(known) > _SQLITE_PATH_KEYS or any('"' in key for key in known)
        ):
            break  # SQLite's paths cannot name these keys
        found = await _lead_with_other_keys(conn, account_id, campaign_id, after, known)
        if found is None:
            return sorted(known)
        lead_id, custom_fields = found
        new = set(loads(custom_fields) or ()) - known
        if not new:
            break  # a key the probe cannot tell from another (an escape in the stored text)
        known |= new
        after = lead_id
    return sorted(known | set(await _listed_keys(conn, account_id, campaign_id, after)))


async def _lead_with_other_keys(
    conn: AsyncConnection, account_id: int, campaign_id: int, after: int, known: set[str]
) -> tuple[int, str] | None:
    """The first lead past ``after`` with a custom-field key not in ``known``, or None."""
    where = (
        "WHERE cl.account_id = :account_id AND cl.campaign_id = :campaign_id "
        "AND cl.lead_id > :after AND l.id > :after "
    )
    params: dict[str, Any] = {"account_id": account_id, "campaign_id": campaign_id, "after": after}
    if is_postgres(conn):
        unknown = "l.custom_fields - CAST(:known AS text[]) <> '{}'::jsonb "
        params["known"] = sorted(known)
    else:
        paths = [f":path{n}" for n in range(len(known))]
        unknown = f"json_remove({', '.join(['l.custom_fields', *paths])}) <> '{{}}' "
        params |= {f"path{n}": f'$."{key}"' for n, key in enumerate(sorted(known))}
    statement = sql_text(
        "SELECT cl.lead_id, CAST(l.custom_fields AS TEXT) FROM campaign_leads cl "
        "JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id "
        f"{where}AND {unknown}ORDER BY cl.lead_id LIMIT 1"
    )
    row = (await conn.execute(statement, params)).first()
    return None if row is None else (row[0], row[1])


async def _listed_keys(
    conn: AsyncConnection, account_id: int, campaign_id: int, after: int
) -> list[str]:
    """Every key of every lead past ``after``."""
    if is_postgres(conn):
        statement = sql_text(
            "SELECT DISTINCT jsonb_object_keys(l.custom_fields) FROM campaign_leads cl "
            "JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id "
            "WHERE cl.account_id = :account_id AND cl.campaign_id = :campaign_id "
            "AND cl.lead_id > :after AND l.id > :after"
        )
    else:
        statement = sql_text(
            "SELECT DISTINCT j.key FROM campaign_leads cl "
            "JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id, "
            "json_each(l.custom_fields) AS j "
            "WHERE cl.account_id = :account_id AND cl.campaign_id = :campaign_id "
            "AND cl.lead_id > :after AND l.id > :after"
        )
    params = {"account_id": account_id, "campaign_id": campaign_id, "after": after}
    return list((await conn.execute(statement, params)).scalars())


# PostgreSQL writes the export's timestamps itself, as ``clock.iso`` does (milliseconds,
# truncated, UTC, ``Z``); SQLite hands back the text SQLAlchemy stored.
_ISO_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'


async def export_columns(
    conn: AsyncConnection, account_id: int, campaign_id: int, size: int
) -> AsyncIterator[list[list[Any]]]:
    """The campaign's leads in lead id order, ``size`` at a time, each batch as columns.

    The columns, in this order: id, email, the profile fields, status, is_unsubscribed,
    is_blocked, created_at, updated_at (the later of the membership's and the profile's;
    ISO text on PostgreSQL, stored text on SQLite) and custom_fields (JSON text).

    Each batch is one keyset query whose single row holds one aggregate per column (a JSON
    array on SQLite, an array on PostgreSQL): the database does the per-row work, with no
    Python object per row on the way. The next batch is asked for before this one is handed
    over, so the database reads it while the caller formats this one.
    """
    postgres = is_postgres(conn)
    created: Any = campaign_leads.c.created_at
    updated: Any = (func.greatest if postgres else func.max)(
        campaign_leads.c.updated_at, leads.c.updated_at
    )
    if postgres:
        created = func.to_char(func.timezone("UTC", created), _ISO_FORMAT)
        updated = func.to_char(func.timezone("UTC", updated), _ISO_FORMAT)
    rows = (
        select(
            leads.c.id,
            leads.c.email,
            *(leads.c[f] for f in PROFILE_FIELDS),
            campaign_leads.c.status,
            is_unsubscribed(),
            is_blocked(),
            created,
            updated,
            cast(leads.c.custom_fields, Text),
        )
        .select_from(campaign_leads.join(leads, _membership))
        .where(*_in_campaign(account_id, campaign_id, None), *_after(bindparam("after")))
        .order_by(campaign_leads.c.lead_id)
        .limit(size)
        .subquery("batch")
    )
    # Aggregated in the subquery's order, the same for every column (checked below).
    aggregate = func.array_agg if postgres else func.json_group_array
    query = select(*(aggregate(column, type_=NullType()) for column in rows.c))
    # Run on the driver itself, one call a batch, so that the whole of a batch's work is
    # under way as soon as it is asked for (SQLAlchemy's adapters take several event-loop
    # turns to get a statement going).
    compiled = query.compile(dialect=conn.dialect)
    statement = str(compiled)
    values = {
        name: value.value if isinstance(value, Enum) else value
        for name, value in compiled.params.items()
    }
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    if postgres and not driver.is_in_transaction():
        await conn.exec_driver_sql("SELECT 1")  # SQLAlchemy begins at its first statement

    async def fetch(after: int) -> list[list[Any]]:
        values["after"] = after
        params = [values[name] for name in compiled.positiontup or ()]
        if postgres:
            row = await driver.fetchrow(statement, *params)
            return [list(column or ()) for column in row]
        (row,) = await driver.execute_fetchall(statement, params)
        return list(map(orjson.loads, row))

    pending = asyncio.ensure_future(fetch(0))
    try:
        while True:
            columns = await pending
            ids = columns[0]
            if not ids:
                return
            in_order = sorted(ids)
            if ids != in_order:
                order = sorted(range(len(ids)), key=ids.__getitem__)
                columns = [[column[i] for i in order] for column in columns]
            pending = asyncio.ensure_future(fetch(in_order[-1]))
            await asyncio.sleep(0)  # the next query is on its way before this batch is used
            yield columns
    finally:
        # Let a query in flight finish (cancelling it would break the connection's
        # transaction); its result, or error, is of no use any more.
        await asyncio.wait([pending])
        if not pending.cancelled():
            pending.exception()


# --- holds: a sequence that waits for a reason ----------------------------------------------


def _leads_at(
    conn: AsyncConnection, account_id: int, emails: Sequence[str], domains: Sequence[str]
) -> Any | None:
    """The ids of the account's leads at these addresses or domains; None for neither."""
    matching = _at_addresses(conn, emails, domains)
    if matching is None:
        return None
    return select(leads.c.id).where(leads.c.account_id == account_id, matching)


async def hold_addresses(
    conn: AsyncConnection, account_id: int, emails: list[str], domains: list[str], reason: str
) -> None:
    """Stop the unfinished sequences of these addresses (and domains) in every campaign."""
    hit = _leads_at(conn, account_id, emails, domains)
    if hit is None:
        return
    await conn.execute(
        update(campaign_leads)
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.lead_id.in_(hit),
            campaign_leads.c.next_seq.is_not(None),
        )
        .values(hold=reason, next_send_at=None)
    )


async def lift_holds(
    conn: AsyncConnection,
    account_id: int,
    reasons: str | Sequence[str],
    now: datetime,
    emails: Sequence[str] = (),
    domains: Sequence[str] = (),
    lead_id: int | None = None,
    campaign_id: int | None = None,
) -> None:
    """Make leads held for this reason (or these) due again (the sender then decides
    afresh)."""
    held_for = [reasons] if isinstance(reasons, str) else list(reasons)
    conditions = [
        campaign_leads.c.account_id == account_id,
        campaign_leads.c.hold.in_(held_for),
    ]
    if campaign_id is not None:
        conditions.append(campaign_leads.c.campaign_id == campaign_id)
    if lead_id is not None:
        conditions.append(campaign_leads.c.lead_id == lead_id)
    hit = _leads_at(conn, account_id, emails, domains)
    if hit is not None:
        conditions.append(campaign_leads.c.lead_id.in_(hit))
    await conn.execute(
        update(campaign_leads)
        .where(*conditions)
        .values(
            hold=None,
            # A lead that never had an email goes back among the fresh ones.
            next_send_at=case((campaign_leads.c.next_seq == 1, None), else_=now),
        )
    )
