"""SQL for sequence steps, the preview's lead and the missing-variable check. Every statement
is scoped by account.

The check answers from the database: one aggregate pass over the campaign's leads counts, for
every variable at once, the leads that have no value for it (a ``SUM(CASE ...)`` each), and a
second statement reads up to ten sample ids per variable that some lead misses, each sample
subquery stopping at its tenth row. "No value" is the renderer's rule (``templates.is_blank``):
no such field, JSON null, or a string of nothing but spaces, tabs and line breaks; a standard
field falls back to a custom field of the same name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.dialect import is_postgres
from openlead.db.tables import campaign_leads, campaigns, leads, sequence_steps
from openlead.leads.schemas import PROFILE_FIELDS

# --- steps ----------------------------------------------------------------------------------


async def lock_campaign(conn: AsyncConnection, account_id: int, campaign_id: int) -> bool:
    """Whether the campaign exists; on PostgreSQL its row is held until commit, so two
    replacements of its steps run one after the other (SQLite has one writer anyway)."""
    query = select(campaigns.c.id).where(
        campaigns.c.account_id == account_id, campaigns.c.id == campaign_id
    )
    if is_postgres(conn):
        query = query.with_for_update()
    return (await conn.execute(query)).first() is not None


async def campaign_exists(conn: AsyncConnection, account_id: int, campaign_id: int) -> bool:
    query = select(campaigns.c.id).where(
        campaigns.c.account_id == account_id, campaigns.c.id == campaign_id
    )
    return (await conn.execute(query)).first() is not None


async def replace_steps(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    rows: Sequence[dict[str, Any]],
    now: datetime,
) -> None:
    await conn.execute(
        delete(sequence_steps).where(
            sequence_steps.c.account_id == account_id, sequence_steps.c.campaign_id == campaign_id
        )
    )
    if rows:
        await conn.execute(
            insert(sequence_steps),
            [
                {**row, "account_id": account_id, "campaign_id": campaign_id, "created_at": now}
                for row in rows
            ],
        )


async def steps(conn: AsyncConnection, account_id: int, campaign_id: int) -> list[Row]:
    """The campaign's rows, by step, each step's own variant first, then as they were sent."""
    query = (
        select(
            sequence_steps.c.seq_number,
            sequence_steps.c.variant_label,
            sequence_steps.c.subject,
            sequence_steps.c.email_body,
            sequence_steps.c.delay_in_days,
            sequence_steps.c.distribution_percentage,
        )
        .where(
            sequence_steps.c.account_id == account_id, sequence_steps.c.campaign_id == campaign_id
        )
        .order_by(sequence_steps.c.seq_number, sequence_steps.c.id)
    )
    return list((await conn.execute(query)).all())


async def campaign_lead(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int
) -> Row | None:
    """A lead's profile, when it is in the campaign."""
    query = (
        select(
            leads.c.id, leads.c.email, *(leads.c[f] for f in PROFILE_FIELDS), leads.c.custom_fields
        )
        .select_from(
            campaign_leads.join(
                leads,
                (leads.c.account_id == campaign_leads.c.account_id)
                & (leads.c.id == campaign_leads.c.lead_id),
            )
        )
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.campaign_id == campaign_id,
            campaign_leads.c.lead_id == lead_id,
        )
    )
    return (await conn.execute(query)).first()


# --- the missing-variable check -------------------------------------------------------------

# What counts as blank, in each dialect's spelling (templates.BLANK_CHARS).
_SQLITE_BLANK = "char(32, 9, 10, 13)"
_POSTGRES_BLANK = "E' \\t\\n\\r'"

_FROM = """
FROM campaign_leads AS cl
JOIN leads AS l ON l.account_id = cl.account_id AND l.id = cl.lead_id
WHERE cl.account_id = :account_id AND cl.campaign_id = :campaign_id
"""
# Only the leads the sender would still write to: a finished or stopped lead missing a value
# holds nothing up.
_STILL_TO_SEND = " AND cl.status IN ('NOT_CONTACTED', 'IN_PROGRESS') AND cl.next_seq IS NOT NULL"


def _leads(still_to_send: bool) -> str:
    return _FROM + (_STILL_TO_SEND if still_to_send else "")


def _custom_value(postgres: bool, key_param: str, key: str) -> str:
    if postgres:
        return f"(l.custom_fields ->> CAST(:{key_param} AS TEXT))"
    if '"' in key or "\\" in key:
        # SQLite's JSON paths cannot spell these keys; look the key up among the pairs.
        return (
            "(SELECT je.value FROM json_each(l.custom_fields) AS je"
            f" WHERE je.key = CAST(:{key_param} AS TEXT))"
        )
    return f"json_extract(l.custom_fields, CAST(:{key_param} AS TEXT))"


def _blank(postgres: bool, value: str) -> str:
    if postgres:
        return f"COALESCE(BTRIM({value}, {_POSTGRES_BLANK}), '') = ''"
    return f"COALESCE(TRIM({value}, {_SQLITE_BLANK}), '') = ''"


def missing_condition(postgres: bool, variable: str, key_param: str) -> tuple[str, Any]:
    """SQL that holds for a lead (``l``) without a value for ``variable``, and the value of
    its one bind parameter."""
    key = variable if postgres else None
    if not postgres:
        key = variable if ('"' in variable or "\\" in variable) else f'$."{variable}"'
    custom = _blank(postgres, _custom_value(postgres, key_param, variable))
    if variable in PROFILE_FIELDS:
        return f"({_blank(postgres, f'l.{variable}')} AND {custom})", key
    return f"({custom})", key


def _conditions(conn: AsyncConnection, variables: Sequence[str]) -> tuple[list[str], dict]:
    postgres = is_postgres(conn)
    conditions, params = [], {}
    for index, variable in enumerate(variables):
        condition, key = missing_condition(postgres, variable, f"k{index}")
        conditions.append(condition)
        params[f"k{index}"] = key
    return conditions, params


async def missing_counts(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    variables: Sequence[str],
    still_to_send: bool = False,
) -> tuple[int, list[int]]:
    """The campaign's number of leads (those still to be sent to, if ``still_to_send``), and
    for each variable how many have no value for it: one pass over the campaign's leads."""
    conditions, params = _conditions(conn, variables)
    sums = "".join(f", SUM(CASE WHEN {c} THEN 1 ELSE 0 END)" for c in conditions)
    statement = sql_text(f"SELECT COUNT(*){sums}{_leads(still_to_send)}")
    row = (
        await conn.execute(
            statement, {**params, "account_id": account_id, "campaign_id": campaign_id}
        )
    ).one()
    return int(row[0]), [int(v or 0) for v in row[1:]]


async def missing_samples(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    variables: Sequence[str],
    limit: int,
    still_to_send: bool = False,
) -> list[list[int]]:
    """Up to ``limit`` ids of leads without a value, per variable (ascending). Each subquery
    stops at its ``limit``-th row: fast where many leads miss a variable; where only a few
    do, it reads on until it has found them."""
    if not variables:
        return []
    conditions, params = _conditions(conn, variables)
    parts = [
        f"SELECT {i} AS variable, lead_id FROM "
        f"(SELECT cl.lead_id AS lead_id {_leads(still_to_send)} AND {c} LIMIT {int(limit)})"
        f" AS s{i}"
        for i, c in enumerate(conditions)
    ]
    statement = sql_text(" UNION ALL ".join(parts))
    result = await conn.execute(
        statement, {**params, "account_id": account_id, "campaign_id": campaign_id}
    )
    samples: list[list[int]] = [[] for _ in variables]
    for variable, lead_id in result.all():
        samples[variable].append(int(lead_id))
    return [sorted(s) for s in samples]
