"""SQL for leads, their campaign memberships and their activity. Scoped by account."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.sqlite import dialect as _sqlite_dialect_class
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.addresses import domain_of
from openlead.db.dialect import is_postgres
from openlead.db.driver import fetch_rows
from openlead.db.jsoncodec import dumps
from openlead.db.tables import campaign_leads, leads
from openlead.leads.importer import Candidate
from openlead.leads.schemas import PROFILE_FIELDS, LeadIn
from openlead.suppression.repository import DOMAIN, EMAIL

# Imports of one account are serialised on PostgreSQL (SQLite has one writer anyway), so
# that the checks an import reads stay true until it commits: two overlapping imports can
# never both add the same address, nor add one address to two campaigns.
_IMPORT_LOCK_SPACE = 0x0_1EAD
# The same statement names the tables the import reads that hold rows but on which PostgreSQL
# has never gathered statistics (relpages is still 0). Without them its planner takes any index
# that starts with account_id for a perfect match: it looked addresses up in
# (account_id, email_domain), reading every lead of the account per address, and after five
# runs of a prepared statement settled on plans that read the account's whole block list.
# Autovacuum would gather them only a minute or more later, so an import does it: once per
# table, when it first holds rows; from then on autovacuum keeps them current.
_PLANNED_TABLES = ("leads", "campaign_leads", "block_list", "unsubscribes")
_IMPORT_LOCK_POSTGRES = f"""
SELECT pg_advisory_xact_lock($1::integer, $2::integer),
       ARRAY(SELECT relname::text FROM pg_class
             WHERE oid IN ({", ".join(f"'{t}'::regclass" for t in _PLANNED_TABLES)})
               AND relpages = 0 AND pg_relation_size(oid) > 0)
"""


async def lock_for_import(conn: AsyncConnection, account_id: int) -> None:
    """Take the account's import lock (PostgreSQL; SQLite's one writer is lock enough).

    It is its own statement, before the checks: a statement reads what was committed when it
    began, so checks in the statement that waited for the lock could miss an import that
    committed in the meantime.
    """
    if not is_postgres(conn):
        return
    result = await conn.exec_driver_sql(
        _IMPORT_LOCK_POSTGRES, (_IMPORT_LOCK_SPACE, account_id % 2_147_483_647)
    )
    without_statistics = result.one()[1]
    unplanned = [table for table in _PLANNED_TABLES if table in without_statistics]
    if unplanned:
        await conn.exec_driver_sql(f"ANALYZE {', '.join(unplanned)}")


@dataclass(frozen=True)
class ImportChecks:
    """What the database knows about a batch's addresses before it is imported."""

    in_campaign: frozenset[str]
    in_other_campaign: frozenset[str]
    blocked_addresses: frozenset[str]
    blocked_domains: frozenset[str]
    unsubscribed: frozenset[str]
    # Every address that is a lead already, in a campaign or not.
    known_leads: frozenset[str]


# Everything an import must know before it writes, in one statement (one round trip, one
# hand-off to SQLite's thread): whether the campaign exists, which addresses are leads in this
# or another campaign, and which addresses and domains are on the block list or the
# unsubscribe list (the same lookups as ``suppression.repository``'s). Each row is
# (what, value): what 0 is the campaign (value null); 8 plus 0, 1, 2 or 3 an existing lead in
# no campaign, in this one, in another, or in both; 4 a blocked address, 5 a blocked domain, 6
# an unsubscribed address. Every existing lead is reported: PostgreSQL's write inserts the new
# ones plainly (``_ADD_LEADS_POSTGRES``), and only a lead that exists can be merged past the
# custom-field limit (``custom_fields_over``).
_IN_CAMPAIGN, _IN_OTHER, _KNOWN_LEAD = 1, 2, 8
_BLOCKED_ADDRESS, _BLOCKED_DOMAIN, _UNSUBSCRIBED = 4, 5, 6

# Each statement is spelled for its database so that the plan is right even before the
# planner has statistics (a new install importing its first list): both planners then guess,
# and guessed wrong, scanning the account's whole part of an index once per request.
_OTHER_CAMPAIGN_INDEX = next(
    index.name
    for index in campaign_leads.indexes
    if [c.name for c in index.columns] == ["account_id", "lead_id"]
)

# A batch's addresses travel to SQLite as one JSON array. A row value IN a subquery is one
# probe of the unique (account_id, email_domain, email) index per address; against a list of
# literal row values SQLite 3.40 scans the account's part of it instead. The domain is cut
# at the address's one "@" (``addresses.normalise_email`` refuses quoted local parts and
# domain literals): [address, domain] pairs read with json_extract made the statement half
# as fast again.
_DOMAIN_SQLITE = "substr(value, instr(value, '@') + 1)"
_ADDRESS_IN_SQLITE = (
    f"(l.email_domain, l.email) IN (SELECT {_DOMAIN_SQLITE}, value FROM json_each({{addresses}}))"
)

# SQLite gets IN subqueries over the unique indexes and one named index.
_IMPORT_CHECKS_SQLITE = f"""
SELECT 0, NULL FROM campaigns WHERE account_id = ?1 AND id = ?2
UNION ALL
SELECT {_KNOWN_LEAD} + here + 2 * other, email FROM (
    SELECT l.email,
           EXISTS (SELECT 1 FROM campaign_leads AS here
                   WHERE here.account_id = l.account_id AND here.campaign_id = ?2
                     AND here.lead_id = l.id) AS here,
           -- Without ANALYZE statistics SQLite prefers scanning the account's part of the
           -- unique (account_id, campaign_id, lead_id) index, because it covers the query.
           EXISTS (SELECT 1 FROM campaign_leads AS other INDEXED BY {_OTHER_CAMPAIGN_INDEX}
                   WHERE other.account_id = l.account_id AND other.lead_id = l.id
                     AND other.campaign_id <> ?2) AS other
    FROM leads AS l
    WHERE l.account_id = ?1 AND {_ADDRESS_IN_SQLITE.format(addresses="?3")}
)
UNION ALL
-- One lookup per kind: given one OR of the two, SQLite read the account's whole block list.
SELECT {_BLOCKED_ADDRESS}, value FROM block_list
WHERE account_id = ?1 AND kind = '{EMAIL}' AND value IN (SELECT value FROM json_each(?3))
UNION ALL
SELECT {_BLOCKED_DOMAIN}, value FROM block_list
WHERE account_id = ?1 AND kind = '{DOMAIN}'
  AND value IN (SELECT {_DOMAIN_SQLITE} FROM json_each(?3))
UNION ALL
SELECT {_UNSUBSCRIBED}, email FROM unsubscribes
WHERE account_id = ?1 AND email IN (SELECT value FROM json_each(?3))
"""

# PostgreSQL gets the addresses as an array and a LATERAL ``LIMIT 1`` probe per address, and
# scalar subqueries: plans it cannot turn into hashed or filtered scans of a whole table. With
# ``value = ANY($n)`` over the block list it settled, after five runs of the prepared
# statement, on a generic plan that compared every entry with every address (5-9 ms a request
# at 2,000 entries). The campaign row is held (FOR SHARE) until the import commits.
_IMPORT_CHECKS_POSTGRES = f"""
WITH campaign AS (
    SELECT id FROM campaigns WHERE account_id = $1 AND id = $2 FOR SHARE
), given AS (
    SELECT email, domain FROM unnest($3::text[], $4::text[]) AS given (email, domain)
), known AS (
    SELECT given.email,
           (SELECT true FROM campaign_leads AS here
            WHERE here.account_id = $1 AND here.campaign_id = $2 AND here.lead_id = l.id
            LIMIT 1) IS NOT NULL AS here,
           (SELECT true FROM campaign_leads AS other
            WHERE other.account_id = $1 AND other.lead_id = l.id AND other.campaign_id <> $2
            LIMIT 1) IS NOT NULL AS other
    FROM given CROSS JOIN LATERAL (
        SELECT id FROM leads
        WHERE account_id = $1 AND email_domain = given.domain AND email = given.email LIMIT 1
    ) AS l
)
SELECT 0, NULL FROM campaign
UNION ALL
SELECT {_KNOWN_LEAD} + here::integer + 2 * other::integer, email FROM known
UNION ALL
SELECT {_BLOCKED_ADDRESS}, hit.value FROM given CROSS JOIN LATERAL (
    SELECT value FROM block_list
    WHERE account_id = $1 AND kind = '{EMAIL}' AND value = given.email LIMIT 1
) AS hit
UNION ALL
SELECT {_BLOCKED_DOMAIN}, hit.value FROM (SELECT DISTINCT domain FROM given) AS given
CROSS JOIN LATERAL (
    SELECT value FROM block_list
    WHERE account_id = $1 AND kind = '{DOMAIN}' AND value = given.domain LIMIT 1
) AS hit
UNION ALL
SELECT {_UNSUBSCRIBED}, hit.email FROM given CROSS JOIN LATERAL (
    SELECT email FROM unsubscribes WHERE account_id = $1 AND email = given.email LIMIT 1
) AS hit
"""


async def import_checks(
    conn: AsyncConnection, account_id: int, campaign_id: int, emails: list[str]
) -> ImportChecks | None:
    """What the database knows about these addresses; None when the campaign does not exist.

    The statement goes to the driver (``db.driver``): one round trip, or one hand-off to
    SQLite's thread that runs and fetches it whole, so that it can run beside the body's
    validation (``db.overlap``).
    """
    postgres = is_postgres(conn)
    if postgres:
        domains = [domain_of(email) for email in emails]
        parameters: tuple[Any, ...] = (account_id, campaign_id, emails, domains)
        rows = await fetch_rows(conn, _IMPORT_CHECKS_POSTGRES, parameters)
    else:
        parameters = (account_id, campaign_id, dumps(emails))
        rows = await fetch_rows(conn, _IMPORT_CHECKS_SQLITE, parameters)
    campaign_exists = False
    found: dict[int, set[str]] = {
        what: set()
        for what in (
            _IN_CAMPAIGN,
            _IN_OTHER,
            _KNOWN_LEAD,
            _BLOCKED_ADDRESS,
            _BLOCKED_DOMAIN,
            _UNSUBSCRIBED,
        )
    }
    for what, value in rows:
        if what == 0:
            campaign_exists = True
        elif what in (_BLOCKED_ADDRESS, _BLOCKED_DOMAIN, _UNSUBSCRIBED):
            found[what].add(value)
        else:
            for flag in (_IN_CAMPAIGN, _IN_OTHER, _KNOWN_LEAD):
                if what & flag:
                    found[flag].add(value)
    if not campaign_exists:
        return None
    return ImportChecks(
        in_campaign=frozenset(found[_IN_CAMPAIGN]),
        in_other_campaign=frozenset(found[_IN_OTHER]),
        blocked_addresses=frozenset(found[_BLOCKED_ADDRESS]),
        blocked_domains=frozenset(found[_BLOCKED_DOMAIN]),
        unsubscribed=frozenset(found[_UNSUBSCRIBED]),
        known_leads=frozenset(found[_KNOWN_LEAD]),
    )


# Profile columns in table order; the statements below are written against this list.
_PROFILE = ", ".join(PROFILE_FIELDS)
_LEAD_COLUMNS = (
    f"account_id, email, email_domain, {_PROFILE}, custom_fields, created_at, updated_at"
)


def _merge_from(source: str) -> str:
    """The profile columns set from ``source``'s row: given values win, absent ones are kept
    (custom fields, merged key by key, are each statement's own)."""
    return ", ".join(f"{f} = COALESCE({source}.{f}, leads.{f})" for f in PROFILE_FIELDS)


_MERGE = _merge_from("excluded")

_UPSERT_SQLITE = f"""
INSERT INTO leads ({_LEAD_COLUMNS})
VALUES (?, ?, ?, {", ".join("?" * len(PROFILE_FIELDS))}, ?, ?, ?)
ON CONFLICT (account_id, email_domain, email) DO UPDATE SET {_MERGE},
    custom_fields = json_patch(leads.custom_fields, excluded.custom_fields),
    updated_at = excluded.updated_at
"""
# sqlite3 cannot return rows from executemany; the ids are read back in one statement.
_LEAD_IDS_SQLITE = f"""
SELECT l.email, l.id FROM leads AS l
WHERE l.account_id = ? AND {_ADDRESS_IN_SQLITE.format(addresses="?")}
"""

# On PostgreSQL the batch travels as one JSON array of rows ($3): asyncpg took ~2 ms of this
# process's CPU to encode eleven 400-element arrays, ~0.7 ms for the JSON, parsed once.
_TEXT_ITEMS = ("email", "email_domain", *PROFILE_FIELDS)
# The batch as rows; an item's last element, when it has one, says whether its address is a
# lead already (``_ADD_LEADS_POSTGRES``).
_BATCH_POSTGRES = f"""
given AS (
    SELECT {", ".join(f"item ->> {i} AS {name}" for i, name in enumerate(_TEXT_ITEMS))},
           item -> {len(_TEXT_ITEMS)} AS custom_fields,
           (item -> {len(_TEXT_ITEMS) + 1})::boolean AS known, position
    FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS batch (item, position)
)"""
_GIVEN_POSTGRES = f"""{_BATCH_POSTGRES}, upserted AS (
    INSERT INTO leads ({_LEAD_COLUMNS})
    SELECT $1, email, email_domain, {_PROFILE}, custom_fields, $2, $2
    FROM given ORDER BY position
    ON CONFLICT (account_id, email_domain, email) DO UPDATE SET {_MERGE},
        custom_fields = leads.custom_fields || excluded.custom_fields,
        updated_at = excluded.updated_at
    RETURNING id, email
), added AS (
    SELECT upserted.id, upserted.email FROM upserted JOIN given USING (email)
    ORDER BY given.position
)"""
_UPSERT_POSTGRES = f"WITH {_GIVEN_POSTGRES} SELECT email, id FROM added"
# PostgreSQL adds a batch in one statement: the leads, their memberships and their events,
# the new ids passed on inside the server and kept in the order of the batch. Each item says
# whether its address is a lead already (the lookups found it, under the account's import
# lock, and leads are created only by imports): new ones are inserted plainly, a tenth
# cheaper than the upsert's speculative insertion, and known ones merged by an UPDATE.
_ADD_LEADS_POSTGRES = f"""
WITH {_BATCH_POSTGRES}, inserted AS (
    INSERT INTO leads ({_LEAD_COLUMNS})
    SELECT $1, email, email_domain, {_PROFILE}, custom_fields, $2, $2
    FROM given WHERE NOT known ORDER BY position
    RETURNING id, email
), merged AS (
    UPDATE leads SET {_merge_from("given")},
        custom_fields = leads.custom_fields || given.custom_fields, updated_at = $2
    FROM given
    WHERE given.known AND leads.account_id = $1 AND leads.email_domain = given.email_domain
      AND leads.email = given.email
    RETURNING leads.id, leads.email
), added AS (
    SELECT lead.id FROM (SELECT * FROM inserted UNION ALL SELECT * FROM merged) AS lead
    JOIN given USING (email) ORDER BY given.position
), memberships AS (
    INSERT INTO campaign_leads (account_id, campaign_id, lead_id, status, ignore_block_list,
                                ignore_unsubscribe_list, created_at, updated_at)
    SELECT $1, $4, id, $5, $6, $7, $2, $2 FROM added
)
INSERT INTO lead_events (account_id, lead_id, campaign_id, type, data, created_at)
SELECT $1, id, $4, $8, $9::jsonb, $2 FROM added
"""

_profile_of = attrgetter(*PROFILE_FIELDS)


def _lead_values(
    candidates: list[Candidate],
    given: Sequence[LeadIn],
    known_leads: frozenset[str] | None = None,
) -> list[tuple[Any, ...]]:
    """Each candidate as (address, domain, *profile fields, custom fields without nulls), its
    fields read from the lead at its position in the request; with ``known_leads``, then
    whether the address is a lead already."""
    values = []
    for c in candidates:
        lead = given[c.position]
        custom = lead.custom_fields
        value = (
            c.email,
            domain_of(c.email),
            *_profile_of(lead),
            {k: v for k, v in custom.items() if v is not None} if custom else {},
        )
        values.append(value if known_leads is None else (*value, c.email in known_leads))
    return values


def _timestamp(conn: AsyncConnection, moment: datetime) -> Any:
    """The value SQLAlchemy would bind for a timestamp column (SQLite stores text)."""
    if is_postgres(conn):
        return moment
    return _sqlite_timestamp(moment)


_sqlite_dialect = _sqlite_dialect_class()
_sqlite_timestamp = leads.c.created_at.type.dialect_impl(_sqlite_dialect).bind_processor(
    _sqlite_dialect
)


async def upsert_leads(
    conn: AsyncConnection,
    account_id: int,
    candidates: list[Candidate],
    given: Sequence[LeadIn],
    now: datetime,
) -> list[int]:
    """Create new leads and merge the given fields into existing ones; return their ids.

    Given values win and absent ones are kept; custom fields merge key by key. The ids come
    back in the order of the candidates.
    """
    if not candidates:
        return []
    values = _lead_values(candidates, given)
    stamp = _timestamp(conn, now)
    if is_postgres(conn):
        result = await conn.exec_driver_sql(_UPSERT_POSTGRES, (account_id, stamp, dumps(values)))
    else:
        await conn.exec_driver_sql(
            _UPSERT_SQLITE,
            [(account_id, *lead[:-1], dumps(lead[-1]), stamp, stamp) for lead in values],
        )
        result = await conn.exec_driver_sql(
            _LEAD_IDS_SQLITE, (account_id, dumps([c.email for c in candidates]))
        )
    ids = dict(result.all())
    return [ids[c.email] for c in candidates]


async def add_leads(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    candidates: list[Candidate],
    given: Sequence[LeadIn],
    known_leads: frozenset[str],
    status: str,
    ignore_block_list: bool,
    ignore_unsubscribe_list: bool,
    event_type: str,
    now: datetime,
) -> None:
    """Upsert the leads, add them to the campaign and record an event for each.

    The same as ``upsert_leads``, ``add_to_campaign`` and ``record_events`` in turn, which is
    what SQLite does; PostgreSQL does it in one statement, and needs ``known_leads``, the
    candidates that are leads already (``ImportChecks.known_leads``).
    """
    if not candidates:
        return
    if not is_postgres(conn):
        lead_ids = await upsert_leads(conn, account_id, candidates, given, now)
        await add_to_campaign(
            conn,
            account_id,
            campaign_id,
            lead_ids,
            status,
            ignore_block_list,
            ignore_unsubscribe_list,
            now,
        )
        await record_events(conn, account_id, campaign_id, lead_ids, event_type, now)
        return
    await conn.exec_driver_sql(
        _ADD_LEADS_POSTGRES,
        (
            account_id,
            now,
            dumps(_lead_values(candidates, given, known_leads)),
            campaign_id,
            str(status),
            ignore_block_list,
            ignore_unsubscribe_list,
            str(event_type),
            dumps(None),
        ),
    )


_ADD_TO_CAMPAIGN_SQLITE = """
INSERT INTO campaign_leads (account_id, campaign_id, lead_id, status, ignore_block_list,
                            ignore_unsubscribe_list, created_at, updated_at)
SELECT ?, ?, value, ?, ?, ?, ?, ? FROM json_each(?)
"""
_ADD_TO_CAMPAIGN_POSTGRES = """
INSERT INTO campaign_leads (account_id, campaign_id, lead_id, status, ignore_block_list,
                            ignore_unsubscribe_list, created_at, updated_at)
SELECT $1, $2, unnest($3::bigint[]), $4, $5, $6, $7, $7
"""


async def add_to_campaign(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_ids: Iterable[int],
    status: str,
    ignore_block_list: bool,
    ignore_unsubscribe_list: bool,
    now: datetime,
) -> None:
    lead_ids = list(lead_ids)
    if not lead_ids:
        return
    stamp = _timestamp(conn, now)
    flags = (str(status), ignore_block_list, ignore_unsubscribe_list)
    if is_postgres(conn):
        await conn.exec_driver_sql(
            _ADD_TO_CAMPAIGN_POSTGRES, (account_id, campaign_id, lead_ids, *flags, stamp)
        )
    else:
        await conn.exec_driver_sql(
            _ADD_TO_CAMPAIGN_SQLITE,
            (account_id, campaign_id, *flags, stamp, stamp, dumps(lead_ids)),
        )


_RECORD_EVENTS_SQLITE = """
INSERT INTO lead_events (account_id, lead_id, campaign_id, type, data, created_at)
SELECT ?, value, ?, ?, ?, ? FROM json_each(?)
"""
_RECORD_EVENTS_POSTGRES = """
INSERT INTO lead_events (account_id, lead_id, campaign_id, type, data, created_at)
SELECT $1, unnest($2::bigint[]), $3, $4, $5::jsonb, $6
"""


async def record_events(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int | None,
    lead_ids: Iterable[int],
    event_type: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    lead_ids = list(lead_ids)
    if not lead_ids:
        return
    stamp = _timestamp(conn, now)
    # As the JSON column type stores it: no data is the JSON null, not SQL NULL.
    payload = dumps(data)
    if is_postgres(conn):
        await conn.exec_driver_sql(
            _RECORD_EVENTS_POSTGRES,
            (account_id, lead_ids, campaign_id, str(event_type), payload, stamp),
        )
    else:
        await conn.exec_driver_sql(
            _RECORD_EVENTS_SQLITE,
            (account_id, campaign_id, str(event_type), payload, stamp, dumps(lead_ids)),
        )


_CUSTOM_FIELDS_OVER_SQLITE = f"""
SELECT l.email, n FROM (
    SELECT l.email, (SELECT count(*) FROM json_each(l.custom_fields)) AS n FROM leads AS l
    WHERE l.account_id = ? AND {_ADDRESS_IN_SQLITE.format(addresses="?")}
) AS l WHERE n > ?
"""
_CUSTOM_FIELDS_OVER_POSTGRES = """
SELECT l.email, n FROM unnest($2::text[], $3::text[]) AS given (email, domain)
CROSS JOIN LATERAL (
    SELECT email, (SELECT count(*) FROM jsonb_object_keys(custom_fields)) AS n FROM leads
    WHERE account_id = $1 AND email_domain = given.domain AND email = given.email
) AS l
WHERE n > $4
"""


async def custom_fields_over(
    conn: AsyncConnection, account_id: int, emails: list[str], limit: int
) -> dict[str, int]:
    """The leads among these addresses that hold more than ``limit`` custom fields, with
    how many they hold."""
    if is_postgres(conn):
        domains = [domain_of(email) for email in emails]
        parameters: tuple[Any, ...] = (account_id, emails, domains, limit)
        rows = await fetch_rows(conn, _CUSTOM_FIELDS_OVER_POSTGRES, parameters)
    else:
        parameters = (account_id, dumps(emails), limit)
        rows = await fetch_rows(conn, _CUSTOM_FIELDS_OVER_SQLITE, parameters)
    return dict(rows)


def address_is_one_of(conn: AsyncConnection, emails: list[str]) -> ColumnElement[bool]:
    """Leads whose address is one of these. Beside ``leads.c.account_id == …`` it is one probe
    of the unique (account_id, email_domain, email) index per address."""
    if is_postgres(conn):
        given: Any = (
            func.unnest(
                bindparam("address_domains", [domain_of(e) for e in emails], type_=ARRAY(Text)),
                bindparam("addresses", emails, type_=ARRAY(Text)),
            )
            .table_valued("domain", "email")
            .render_derived()
        )
        pairs = select(given.c.domain, given.c.email)
    else:
        # As in _ADDRESS_IN_SQLITE: a JSON parameter, the domain cut at the "@".
        given = func.json_each(bindparam("addresses", dumps(emails))).table_valued("value")
        domain = func.substr(given.c.value, func.instr(given.c.value, "@") + 1)
        pairs = select(domain, given.c.value)
    return tuple_(leads.c.email_domain, leads.c.email).in_(pairs)


async def get_lead(conn: AsyncConnection, account_id: int, lead_id: int) -> Row | None:
    query = select(leads).where(leads.c.account_id == account_id, leads.c.id == lead_id)
    return (await conn.execute(query)).first()


async def find_by_email(conn: AsyncConnection, account_id: int, email: str) -> Row | None:
    query = select(leads).where(
        leads.c.account_id == account_id,
        leads.c.email_domain == domain_of(email),
        leads.c.email == email,
    )
    return (await conn.execute(query)).first()


async def update_profile(
    conn: AsyncConnection,
    account_id: int,
    lead_id: int,
    fields: dict[str, Any],
    custom_fields: dict[str, Any],
    now: datetime,
) -> Row | None:
    """Set the given profile fields and merge custom fields key by key; None if no such lead."""
    values: dict[str, Any] = {**fields, "updated_at": now}
    if custom_fields:
        new = bindparam("custom_fields_patch", custom_fields, type_=leads.c.custom_fields.type)
        values["custom_fields"] = (
            leads.c.custom_fields.op("||")(new)
            if is_postgres(conn)
            else func.json_patch(leads.c.custom_fields, new)
        )
    statement = (
        update(leads)
        .where(leads.c.account_id == account_id, leads.c.id == lead_id)
        .values(values)
        .returning(leads)
    )
    return (await conn.execute(statement)).first()
