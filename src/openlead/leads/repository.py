"""SQL for leads, their campaign memberships and their activity. Scoped by account."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.addresses import domain_of
from openlead.db.dialect import insert_for, is_postgres
from openlead.db.tables import campaign_leads, campaigns, lead_events, leads
from openlead.leads.importer import Candidate
from openlead.leads.schemas import PROFILE_FIELDS

# Imports of one account are serialised on PostgreSQL (SQLite has one writer anyway), so
# that the checks an import reads stay true until it commits: two overlapping imports can
# never both add the same address, nor add one address to two campaigns.
_IMPORT_LOCK_SPACE = 0x0_1EAD


async def lock_campaign_for_import(
    conn: AsyncConnection, account_id: int, campaign_id: int
) -> bool:
    """Take the account's import lock and hold the campaign; False when it does not exist."""
    query = select(campaigns.c.id).where(
        campaigns.c.account_id == account_id, campaigns.c.id == campaign_id
    )
    if is_postgres(conn):
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, CAST(:key AS integer))"),
            {"space": _IMPORT_LOCK_SPACE, "key": account_id % 2_147_483_647},
        )
        query = query.with_for_update(read=True)
    return (await conn.execute(query)).first() is not None


async def presence(
    conn: AsyncConnection, account_id: int, campaign_id: int, emails: list[str]
) -> tuple[set[str], set[str]]:
    """Of these addresses: those in this campaign, and those in another of the account's."""
    if not emails:
        return set(), set()
    this = case((campaign_leads.c.campaign_id == campaign_id, 1), else_=0)
    query = (
        select(leads.c.email, func.max(this), func.min(this))
        .join(
            campaign_leads,
            (campaign_leads.c.account_id == leads.c.account_id)
            & (campaign_leads.c.lead_id == leads.c.id),
        )
        .where(leads.c.account_id == account_id, leads.c.email.in_(emails))
        .group_by(leads.c.email)
    )
    in_campaign: set[str] = set()
    elsewhere: set[str] = set()
    for email, any_here, all_here in (await conn.execute(query)).all():
        if any_here:
            in_campaign.add(email)
        if not all_here:
            elsewhere.add(email)
    return in_campaign, elsewhere


def _lead_row(account_id: int, candidate: Candidate, now: datetime) -> dict[str, Any]:
    lead = candidate.lead
    row: dict[str, Any] = {field: getattr(lead, field) for field in PROFILE_FIELDS}
    row["custom_fields"] = {k: v for k, v in (lead.custom_fields or {}).items() if v is not None}
    row.update(
        account_id=account_id,
        email=candidate.email,
        email_domain=domain_of(candidate.email),
        created_at=now,
        updated_at=now,
    )
    return row


def _merge_custom_fields(conn: AsyncConnection, new: Any) -> Any:
    if is_postgres(conn):
        return leads.c.custom_fields.op("||")(new)
    return func.json_patch(leads.c.custom_fields, new)


async def upsert_leads(
    conn: AsyncConnection, account_id: int, candidates: list[Candidate], now: datetime
) -> list[int]:
    """Create new leads and merge the given fields into existing ones; return their ids.

    Given values win and absent ones are kept; custom fields merge key by key.
    """
    statement = insert_for(conn, leads)
    new = statement.excluded
    merged = {field: func.coalesce(new[field], leads.c[field]) for field in PROFILE_FIELDS}
    merged["custom_fields"] = _merge_custom_fields(conn, new.custom_fields)
    merged["updated_at"] = new.updated_at
    statement = statement.on_conflict_do_update(
        index_elements=["account_id", "email"], set_=merged
    ).returning(leads.c.id)
    rows = [_lead_row(account_id, c, now) for c in candidates]
    return list((await conn.execute(statement, rows)).scalars())


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
    rows = [
        {
            "account_id": account_id,
            "campaign_id": campaign_id,
            "lead_id": lead_id,
            "status": status,
            "ignore_block_list": ignore_block_list,
            "ignore_unsubscribe_list": ignore_unsubscribe_list,
            "created_at": now,
            "updated_at": now,
        }
        for lead_id in lead_ids
    ]
    if rows:
        await conn.execute(campaign_leads.insert(), rows)


async def record_events(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int | None,
    lead_ids: Iterable[int],
    event_type: str,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    rows = [
        {
            "account_id": account_id,
            "lead_id": lead_id,
            "campaign_id": campaign_id,
            "type": event_type,
            "data": data,
            "created_at": now,
        }
        for lead_id in lead_ids
    ]
    if rows:
        await conn.execute(lead_events.insert(), rows)


async def get_lead(conn: AsyncConnection, account_id: int, lead_id: int) -> Row | None:
    query = select(leads).where(leads.c.account_id == account_id, leads.c.id == lead_id)
    return (await conn.execute(query)).first()
