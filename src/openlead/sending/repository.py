"""SQL for mailboxes and for the dispatcher's work. Scoped by account, except where noted.

The dispatcher serves every account, so two statements look across accounts: the list of
running campaigns and the campaigns' completion, and nothing else. From a campaign on, every
statement names its account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db import driver
from openlead.db.dialect import insert_for, is_postgres, timestamp_text, timestamp_value
from openlead.db.jsoncodec import dumps
from openlead.db.tables import (
    FRESH_LEAD,
    FRESH_LEAD_INDEX,
    MEMBERS_BY_STATUS_INDEX,
    SCHEDULED_LEAD,
    SCHEDULED_LEAD_INDEX,
    SCHEDULED_LEAD_ORDER,
    campaign_email_accounts,
    campaign_leads,
    campaigns,
    email_accounts,
    leads,
    messages,
)
from openlead.leads.lifecycle import LeadStatus
from openlead.leads.schemas import PROFILE_FIELDS
from openlead.sending.tally import Tally
from openlead.web.pagination import Page

ACTIVE = "ACTIVE"
COMPLETED = "COMPLETED"
SENDABLE = (LeadStatus.NOT_CONTACTED.value, LeadStatus.IN_PROGRESS.value)
# Message states. "sending" is written before the content goes to the SMTP server; a worker
# that dies leaves it behind, and it becomes "uncertain" (never sent again) once its lease
# runs out.
SENDING, SENT, UNCERTAIN, BOUNCED = "sending", "sent", "uncertain", "bounced"
DELIVERED = (SENT, UNCERTAIN)

# --- mailboxes ------------------------------------------------------------------------------


async def insert_email_account(
    conn: AsyncConnection, account_id: int, values: dict[str, Any], now: datetime
) -> Row:
    statement = (
        insert(email_accounts)
        .values(account_id=account_id, created_at=now, updated_at=now, **values)
        .returning(email_accounts)
    )
    return (await conn.execute(statement)).one()


async def update_email_account(
    conn: AsyncConnection, account_id: int, mailbox_id: int, values: dict[str, Any], now: datetime
) -> Row | None:
    statement = (
        update(email_accounts)
        .where(email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id)
        .values(updated_at=now, **values)
        .returning(email_accounts)
    )
    return (await conn.execute(statement)).first()


async def email_account_by_address(
    conn: AsyncConnection, account_id: int, from_email: str
) -> Row | None:
    query = select(email_accounts.c.id).where(
        email_accounts.c.account_id == account_id, email_accounts.c.from_email == from_email
    )
    return (await conn.execute(query)).first()


async def get_email_account(conn: AsyncConnection, account_id: int, mailbox_id: int) -> Row | None:
    query = select(email_accounts).where(
        email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id
    )
    return (await conn.execute(query)).first()


async def list_email_accounts(conn: AsyncConnection, account_id: int, page: Page) -> list[Row]:
    query = select(email_accounts).where(email_accounts.c.account_id == account_id)
    return list((await conn.execute(page.of(query, email_accounts.c.id))).all())


async def delete_email_account(conn: AsyncConnection, account_id: int, mailbox_id: int) -> bool:
    result = await conn.execute(
        delete(email_accounts).where(
            email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id
        )
    )
    return result.rowcount == 1


async def existing_email_accounts(
    conn: AsyncConnection, account_id: int, mailbox_ids: Iterable[int]
) -> set[int]:
    query = select(email_accounts.c.id).where(
        email_accounts.c.account_id == account_id, email_accounts.c.id.in_(list(mailbox_ids))
    )
    return set((await conn.execute(query)).scalars())


async def attach_email_accounts(
    conn: AsyncConnection, account_id: int, campaign_id: int, mailbox_ids: list[int], now: datetime
) -> None:
    rows = [
        {
            "account_id": account_id,
            "campaign_id": campaign_id,
            "email_account_id": mailbox_id,
            "created_at": now,
        }
        for mailbox_id in mailbox_ids
    ]
    statement = insert_for(conn, campaign_email_accounts).on_conflict_do_nothing(
        index_elements=["account_id", "campaign_id", "email_account_id"]
    )
    await conn.execute(statement, rows)


async def detach_email_accounts(
    conn: AsyncConnection, account_id: int, campaign_id: int, mailbox_ids: list[int]
) -> None:
    await conn.execute(
        delete(campaign_email_accounts).where(
            campaign_email_accounts.c.account_id == account_id,
            campaign_email_accounts.c.campaign_id == campaign_id,
            campaign_email_accounts.c.email_account_id.in_(mailbox_ids),
        )
    )


async def unassign_leads(
    conn: AsyncConnection, account_id: int, mailbox_ids: list[int], campaign_id: int | None = None
) -> None:
    """Leads whose mailbox left (the campaign, or the account) are given another one at their
    next send; the thread headers go on, from the new sender."""
    conditions = [
        campaign_leads.c.account_id == account_id,
        campaign_leads.c.email_account_id.in_(mailbox_ids),
    ]
    if campaign_id is not None:
        conditions.append(campaign_leads.c.campaign_id == campaign_id)
    await conn.execute(update(campaign_leads).where(*conditions).values(email_account_id=None))


def _campaign_mailboxes(account_id: int, campaign_id: int) -> Any:
    return (
        select(email_accounts)
        .join(
            campaign_email_accounts,
            and_(
                campaign_email_accounts.c.account_id == email_accounts.c.account_id,
                campaign_email_accounts.c.email_account_id == email_accounts.c.id,
            ),
        )
        .where(
            campaign_email_accounts.c.account_id == account_id,
            campaign_email_accounts.c.campaign_id == campaign_id,
        )
    )


async def campaign_email_accounts_of(
    conn: AsyncConnection, account_id: int, campaign_id: int, page: Page | None = None
) -> list[Row]:
    """The campaign's mailboxes in id order (a page of them, when ``page`` is given)."""
    query = _campaign_mailboxes(account_id, campaign_id)
    if page is None:
        query = query.order_by(email_accounts.c.id)
    else:
        query = page.of(query, email_accounts.c.id)
    return list((await conn.execute(query)).all())


async def set_mailbox_health(
    conn: AsyncConnection,
    account_id: int,
    mailbox_id: int,
    state: str,
    error: str | None,
    retry_at: datetime | None,
    failures: int,
) -> None:
    await conn.execute(
        update(email_accounts)
        .where(email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id)
        .values(state=state, last_error=error, retry_at=retry_at, failures=failures)
    )


# --- claiming -------------------------------------------------------------------------------


async def running_campaigns(conn: AsyncConnection) -> list[Row]:
    """Every account's ACTIVE campaigns (across accounts: the dispatcher serves them all)."""
    query = (
        select(campaigns.c.account_id, campaigns.c.id)
        .where(campaigns.c.status == ACTIVE)
        .order_by(campaigns.c.account_id, campaigns.c.id)
    )
    return list((await conn.execute(query)).all())


def _completion_sql(postgres: bool) -> str:
    sqlite = not postgres

    def has_leads(index: str, order: str, condition: str = "") -> str:
        """Whether campaign ``c`` has a lead meeting ``condition``, read from an index:
        ``index`` on SQLite, one in ``order`` on PostgreSQL. Each planner is held to it: with the
        statistics of one large campaign both scanned the table (SQLite even read past every
        lead held at step 1 to find a fresh one), and a campaign completed since the last
        ANALYZE would be read whole at every claim. SQLite is told the index; PostgreSQL is
        asked for the first row in the index's order, which a scan would have to sort for."""
        where = (
            "campaign_leads.account_id = c.account_id AND campaign_leads.campaign_id = c.id"
            + condition
        )
        if sqlite:
            return f"EXISTS (SELECT 1 FROM campaign_leads INDEXED BY {index} WHERE {where})"
        return f"(SELECT 1 FROM campaign_leads WHERE {where} ORDER BY {order} LIMIT 1) IS NOT NULL"

    by_lead = "account_id, campaign_id, lead_id"
    waiting = (
        f"({has_leads(FRESH_LEAD_INDEX, by_lead, f' AND {FRESH_LEAD}')}"
        f" OR {has_leads(SCHEDULED_LEAD_INDEX, SCHEDULED_LEAD_ORDER, f' AND {SCHEDULED_LEAD}')})"
    )
    any_lead = has_leads(MEMBERS_BY_STATUS_INDEX, by_lead)
    p = ["?1", "?2", "?3"] if sqlite else ["$1", "$2", "$3"]
    lock = "" if sqlite else " FOR NO KEY UPDATE SKIP LOCKED"
    return f"""
UPDATE campaigns
SET status = CASE WHEN status = {p[0]} THEN {p[1]} ELSE {p[0]} END, updated_at = {p[2]}
WHERE id IN (
  SELECT c.id FROM campaigns AS c
  WHERE (c.status = {p[0]} AND {any_lead} AND NOT {waiting})
     OR (c.status = {p[1]} AND {waiting}){lock})
RETURNING account_id, id, status"""


async def settle_completion(conn: AsyncConnection, now: datetime) -> list[Row]:
    """An ACTIVE campaign with leads of which none has anything left to send becomes
    COMPLETED; a COMPLETED one that has again (leads imported since, a hold lifted, a lead
    set back to a status that sends) becomes ACTIVE. Returns (account, id, new status) of
    those changed.

    A lead has something left to send when it waits for its first email (the fresh-lead
    index) or has a time set (the scheduled-lead index: follow-ups, retries, and claims in
    flight, whose lease is their time): two probes of partial indexes a campaign. On
    PostgreSQL a campaign another transaction holds (a claim, a status change) is skipped
    until the next time; one whose leads arrive while this runs is opened again the next."""
    params = (ACTIVE, COMPLETED, timestamp_value(conn, now))
    sql = _prebuilt(conn, ("completion",), _completion_sql)
    return list((await conn.exec_driver_sql(sql, params)).all())


async def lock_running_campaign(
    conn: AsyncConnection, account_id: int, campaign_id: int
) -> Row | None:
    """The campaign, when it still runs; on PostgreSQL held until commit, so that one worker
    at a time hands out its leads and its daily budget."""
    query = select(campaigns).where(
        campaigns.c.account_id == account_id,
        campaigns.c.id == campaign_id,
        campaigns.c.status == ACTIVE,
    )
    if is_postgres(conn):
        # NO KEY UPDATE excludes every other claim and status change as FOR UPDATE did, but
        # not the foreign-key checks of rows that name the campaign: the marks and events
        # written while a claim runs would otherwise wait for it.
        query = query.with_for_update(key_share=True)
    return (await conn.execute(query)).first()


async def lock_campaign_mailboxes(
    conn: AsyncConnection, account_id: int, campaign_id: int
) -> list[Row]:
    """The campaign's mailboxes, held (in id order, as every writer takes them) on PostgreSQL."""
    query = _campaign_mailboxes(account_id, campaign_id).order_by(email_accounts.c.id)
    if is_postgres(conn):
        query = query.with_for_update(of=email_accounts)
    return list((await conn.execute(query)).all())


def _skip_locked(conn: AsyncConnection, query: Any) -> Any:
    if is_postgres(conn):
        return query.with_for_update(skip_locked=True)
    return query


async def due_leads(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    mailbox_id: int | None,
    now: datetime,
    limit: int,
) -> list[Row]:
    """Leads of one mailbox (or of none) whose time has come, soonest first, by the
    scheduled-lead index: the cost does not grow with the campaign."""
    if limit <= 0:
        return []
    mailbox = (
        campaign_leads.c.email_account_id.is_(None)
        if mailbox_id is None
        else campaign_leads.c.email_account_id == mailbox_id
    )
    query = (
        select(campaign_leads.c.lead_id, campaign_leads.c.next_seq)
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.campaign_id == campaign_id,
            mailbox,
            campaign_leads.c.next_send_at.is_not(None),
            campaign_leads.c.next_send_at <= now,
        )
        .order_by(campaign_leads.c.next_send_at)
        .limit(limit)
    )
    return list((await conn.execute(_skip_locked(conn, query))).all())


async def fresh_leads(
    conn: AsyncConnection, account_id: int, campaign_id: int, limit: int
) -> list[Row]:
    """Leads waiting for their first email, in lead order, by the fresh-lead index.

    The index is partial: its condition is written out here as SQL, not as bound values,
    because neither planner can tell that ``next_seq = ?`` matches ``next_seq = 1`` (SQLite
    never, PostgreSQL not in a prepared statement's generic plan). SQLite is also told to use
    it: with statistics it preferred the (account, campaign, status, lead) index, which reads
    past every NOT_CONTACTED lead held at step 1 before it finds a fresh one."""
    if limit <= 0:
        return []
    if not is_postgres(conn):
        params = {"account_id": account_id, "campaign_id": campaign_id, "limit": limit}
        return list((await conn.execute(_FRESH_SQLITE, params)).all())
    query = (
        select(campaign_leads.c.lead_id, campaign_leads.c.next_seq)
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.campaign_id == campaign_id,
            text(FRESH_LEAD),
        )
        .order_by(campaign_leads.c.lead_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await conn.execute(query)).all())


_FRESH_SQLITE = text(
    f"SELECT lead_id, next_seq FROM campaign_leads INDEXED BY {FRESH_LEAD_INDEX} "
    f"WHERE account_id = :account_id AND campaign_id = :campaign_id AND {FRESH_LEAD} "
    "ORDER BY lead_id LIMIT :limit"
)


async def claim_leads(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    assignments: Sequence[tuple[int, int]],
    lease_until: datetime,
) -> None:
    """Give each (lead, mailbox) to this worker until ``lease_until``: the lead is due again
    then, so a worker that dies loses nothing. One statement, the pairs as a JSON array (a
    1,600-row ``executemany`` was most of a claim's time on PostgreSQL)."""
    if not assignments:
        return
    given = _rows(conn, ["lead_id", "email_account_id"], ["bigint", "bigint"])
    pairs = dumps([{"lead_id": lead, "email_account_id": box} for lead, box in assignments])
    if is_postgres(conn):
        sql = f"""
UPDATE campaign_leads SET email_account_id = g.email_account_id, next_send_at = $2
FROM {given}
WHERE campaign_leads.account_id = $3 AND campaign_leads.campaign_id = $4
  AND campaign_leads.lead_id = g.lead_id"""
        params: tuple[Any, ...] = (pairs, lease_until, account_id, campaign_id)
    else:
        # SQLite numbers its parameters in the order they are written.
        sql = f"""
UPDATE campaign_leads SET email_account_id = g.email_account_id, next_send_at = ?
FROM {given}
WHERE campaign_leads.account_id = ? AND campaign_leads.campaign_id = ?
  AND campaign_leads.lead_id = g.lead_id"""
        params = (timestamp_value(conn, lease_until), pairs, account_id, campaign_id)
    await conn.exec_driver_sql(sql, params)


async def reserve_mailbox(
    conn: AsyncConnection,
    account_id: int,
    mailbox_id: int,
    sent_log: list[list[int]],
    claimed_at: datetime,
) -> None:
    await conn.execute(
        update(email_accounts)
        .where(email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id)
        .values(sent_log=sent_log, last_claimed_at=claimed_at)
    )


async def reserve_new_leads(
    conn: AsyncConnection, account_id: int, campaign_id: int, day: str, started_today: int
) -> None:
    await conn.execute(
        update(campaigns)
        .where(campaigns.c.account_id == account_id, campaigns.c.id == campaign_id)
        .values(new_leads_day=day, new_leads_today=started_today)
    )


async def return_to_mailbox(
    conn: AsyncConnection, account_id: int, mailbox_id: int, quarter: int, count: int
) -> None:
    """Give back sends reserved in ``quarter`` and not made (once that quarter has left the
    tally, it has gone from every day's count anyway)."""
    mailbox = (email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id)
    query = select(email_accounts.c.sent_log).where(*mailbox)
    if is_postgres(conn):
        query = query.with_for_update()
    stored = (await conn.execute(query)).scalar()
    tally = Tally.read(stored).remove(quarter, count)
    await conn.execute(update(email_accounts).where(*mailbox).values(sent_log=tally.stored()))


def _larger(conn: AsyncConnection) -> Any:
    """The larger of two values: SQLite's two-argument max() is PostgreSQL's greatest()."""
    return func.greatest if is_postgres(conn) else func.max


async def return_new_leads(
    conn: AsyncConnection, account_id: int, campaign_id: int, day: str, count: int
) -> None:
    await conn.execute(
        update(campaigns)
        .where(
            campaigns.c.account_id == account_id,
            campaigns.c.id == campaign_id,
            campaigns.c.new_leads_day == day,
        )
        .values(new_leads_today=_larger(conn)(campaigns.c.new_leads_today - count, 0))
    )


async def leads_to_send(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_ids: list[int]
) -> list[Row]:
    """The claimed leads' profiles and memberships, for rendering."""
    query = (
        select(
            leads.c.id,
            leads.c.email,
            *(leads.c[f] for f in PROFILE_FIELDS),
            leads.c.custom_fields,
            campaign_leads.c.status,
            campaign_leads.c.next_seq,
            campaign_leads.c.attempts,
        )
        .select_from(
            campaign_leads.join(
                leads,
                and_(
                    leads.c.account_id == campaign_leads.c.account_id,
                    leads.c.id == campaign_leads.c.lead_id,
                ),
            )
        )
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.campaign_id == campaign_id,
            campaign_leads.c.lead_id.in_(lead_ids),
        )
    )
    return list((await conn.execute(query)).all())


_EARLIER_PG = """
SELECT m.id, m.lead_id, m.seq_number, m.message_id, m.state, m.lease_until
FROM unnest($3::bigint[]) AS k(lead_id)
CROSS JOIN LATERAL (
  SELECT id, lead_id, seq_number, message_id, state, lease_until FROM messages
  WHERE account_id = $1 AND campaign_id = $2 AND lead_id = k.lead_id
  OFFSET 0
) AS m
ORDER BY m.lead_id, m.seq_number"""


async def messages_of(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_ids: list[int]
) -> list[Row]:
    """The claimed leads' earlier emails in this campaign, by step.

    On PostgreSQL each lead is one probe of the (account, campaign, lead, step) index, whatever
    the statistics say: while ``messages`` grows faster than ANALYZE follows (a first campaign
    on a new install), the planner took the campaign as a handful of rows and read all of its
    messages for every claim, testing each against the whole list of leads (250 ms at 16,000
    messages, with the campaign held). ``OFFSET 0`` keeps the lateral query a probe per lead."""
    if is_postgres(conn):
        params = (account_id, campaign_id, lead_ids)
        return list((await conn.exec_driver_sql(_EARLIER_PG, params)).all())
    query = (
        select(
            messages.c.id,
            messages.c.lead_id,
            messages.c.seq_number,
            messages.c.message_id,
            messages.c.state,
            messages.c.lease_until,
        )
        .where(
            messages.c.account_id == account_id,
            messages.c.campaign_id == campaign_id,
            messages.c.lead_id.in_(lead_ids),
        )
        .order_by(messages.c.lead_id, messages.c.seq_number)
    )
    return list((await conn.execute(query)).all())


# --- the moment of sending ------------------------------------------------------------------

# The statements run once per message are built once per database kind and set of columns, and
# run with bound parameters: building one (and computing its cache key, which SQLAlchemy
# memoizes on the statement object) cost more than running it (docs/performance.md).
_STATEMENTS: dict[tuple[Any, ...], Any] = {}


def _prebuilt(conn: AsyncConnection, key: tuple[Any, ...], build: Callable[[bool], Any]) -> Any:
    """The statement ``build(postgres)`` makes, made once for ``key`` and this kind of database."""
    full = (conn.dialect.name, *key)
    statement = _STATEMENTS.get(full)
    if statement is None:
        statement = _STATEMENTS[full] = build(is_postgres(conn))
    return statement


def _param(name: str, column: Any) -> Any:
    return bindparam(name, type_=column.type)


def _bound_membership() -> list[Any]:
    """``_membership`` with its values bound at execution: ``_membership_params``."""
    return [
        campaign_leads.c.account_id == _param("w_account_id", campaign_leads.c.account_id),
        campaign_leads.c.campaign_id == _param("w_campaign_id", campaign_leads.c.campaign_id),
        campaign_leads.c.lead_id == _param("w_lead_id", campaign_leads.c.lead_id),
    ]


def _membership_params(account_id: int, campaign_id: int, lead_id: int) -> dict[str, int]:
    return {"w_account_id": account_id, "w_campaign_id": campaign_id, "w_lead_id": lead_id}


async def why_not_sendable(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int, seq_number: int
) -> Row | None:
    """What stopped a mark: the membership as it is now, or None if it is gone. The
    conditions are the mark's own (``_suppressed``)."""
    blocked, unsubscribed = _suppressed(conn)
    # $n on PostgreSQL; SQLite's ?NNN, numbered so that the order they are written in does
    # not matter.
    p = ["$1", "$2", "$3", "$4"] if is_postgres(conn) else ["?1", "?2", "?3", "?4"]
    sql = f"""
SELECT cl.next_seq, cl.status, c.status AS campaign_status,
       {blocked} AS blocked, {unsubscribed} AS unsubscribed,
       (SELECT m.state FROM messages AS m
        WHERE m.account_id = cl.account_id AND m.campaign_id = cl.campaign_id
          AND m.lead_id = cl.lead_id AND m.seq_number = {p[3]}) AS message_state
FROM campaign_leads AS cl
JOIN leads AS l ON l.account_id = cl.account_id AND l.id = cl.lead_id
JOIN campaigns AS c ON c.account_id = cl.account_id AND c.id = cl.campaign_id
WHERE cl.account_id = {p[0]} AND cl.campaign_id = {p[1]} AND cl.lead_id = {p[2]}"""
    params = (account_id, campaign_id, lead_id, seq_number)
    return (await conn.exec_driver_sql(sql, params)).first()


async def set_message_state(
    conn: AsyncConnection,
    account_id: int,
    message_row_id: int,
    state: str,
    now: datetime,
    error: str | None = None,
    from_states: Sequence[str] = (SENDING,),
) -> bool:
    """Move a message on from one of ``from_states``; False when someone else already did."""
    values: dict[str, Any] = {"state": state, "lease_until": None, "error": error}
    if state in DELIVERED:
        values["sent_at"] = now
    names, states = tuple(values), tuple(from_states)

    def build(_postgres: bool) -> Any:
        return (
            update(messages)
            .where(
                messages.c.account_id == _param("w_account_id", messages.c.account_id),
                messages.c.id == _param("w_id", messages.c.id),
                messages.c.state.in_(list(states)),
            )
            .values({k: _param(f"v_{k}", messages.c[k]) for k in names})
        )

    statement = _prebuilt(conn, ("set_message_state", names, states), build)
    params = {"w_account_id": account_id, "w_id": message_row_id}
    result = await conn.execute(statement, params | {f"v_{k}": v for k, v in values.items()})
    return result.rowcount == 1


async def insert_bounced(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    seq_number: int,
    values: dict[str, Any],
) -> None:
    """A step refused at the address (before any content went): recorded, never retried."""
    statement = (
        insert_for(conn, messages)
        .values(
            account_id=account_id,
            campaign_id=campaign_id,
            lead_id=lead_id,
            seq_number=seq_number,
            state=BOUNCED,
            **values,
        )
        .on_conflict_do_nothing(
            index_elements=["account_id", "campaign_id", "lead_id", "seq_number"]
        )
    )
    await conn.execute(statement)


async def forget_message(conn: AsyncConnection, account_id: int, message_row_id: int) -> None:
    """A "sending" row whose content the server refused for now: the step may go later."""
    await conn.execute(
        delete(messages).where(
            messages.c.account_id == account_id,
            messages.c.id == message_row_id,
            messages.c.state == SENDING,
        )
    )


async def expire_message(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    seq_number: int,
    now: datetime,
) -> Row | None:
    """A "sending" row whose worker's lease ran out becomes "uncertain"; returns it."""
    statement = (
        update(messages)
        .where(
            messages.c.account_id == account_id,
            messages.c.campaign_id == campaign_id,
            messages.c.lead_id == lead_id,
            messages.c.seq_number == seq_number,
            messages.c.state == SENDING,
            messages.c.lease_until < now,
        )
        .values(state=UNCERTAIN, lease_until=None, sent_at=now)
        .returning(
            messages.c.id,
            messages.c.variant_label,
            messages.c.email_account_id,
            messages.c.message_id,
        )
    )
    return (await conn.execute(statement)).first()


async def lock_membership(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int
) -> Row | None:
    def build(postgres: bool) -> Any:
        query = select(
            campaign_leads.c.status, campaign_leads.c.next_seq, campaign_leads.c.email_account_id
        ).where(*_bound_membership())
        return query.with_for_update() if postgres else query

    statement = _prebuilt(conn, ("lock_membership",), build)
    params = _membership_params(account_id, campaign_id, lead_id)
    return (await conn.execute(statement, params)).first()


async def move_on(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    from_seq: int,
    values: dict[str, Any],
) -> bool:
    """Update the membership only while it is still at ``from_seq`` (idempotent)."""
    names = tuple(values)

    def build(_postgres: bool) -> Any:
        return (
            update(campaign_leads)
            .where(
                *_bound_membership(),
                campaign_leads.c.next_seq == _param("w_from_seq", campaign_leads.c.next_seq),
            )
            .values({k: _param(f"v_{k}", campaign_leads.c[k]) for k in names})
        )

    statement = _prebuilt(conn, ("move_on", names), build)
    params = _membership_params(account_id, campaign_id, lead_id) | {"w_from_seq": from_seq}
    result = await conn.execute(statement, params | {f"v_{k}": v for k, v in values.items()})
    return result.rowcount == 1


async def release_mailbox_leads(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_ids: list[int],
    values: dict[str, Any],
) -> None:
    if lead_ids:
        await conn.execute(
            update(campaign_leads)
            .where(
                campaign_leads.c.account_id == account_id,
                campaign_leads.c.campaign_id == campaign_id,
                campaign_leads.c.lead_id.in_(lead_ids),
            )
            .values(values)
        )


# --- many messages at once: the dispatcher's hot path ---------------------------------------
# A group of the journal marks, and records the outcome of, every mailbox's current message in
# a few statements whatever their number: the rows travel as one JSON array, read by
# json_each on SQLite and jsonb_to_recordset on PostgreSQL. Plain SQL, run on the driver, as
# the import's hot statements are.


def _rows(conn: AsyncConnection, names: Sequence[str], types: Sequence[str]) -> str:
    """A relation ``g`` of the batch's objects, with these names and PostgreSQL types."""
    if is_postgres(conn):
        spec = ", ".join(f"{n} {t}" for n, t in zip(names, types, strict=True))
        return f"jsonb_to_recordset($1::jsonb) AS g({spec})"
    fields = ", ".join(f"json_extract(value, '$.{n}') AS {n}" for n in names)
    return f"(SELECT {fields} FROM json_each(?)) AS g"


def _suppressed(conn: AsyncConnection) -> tuple[str, str]:
    """SQL for "the address of ``l`` is blocked" and "… is unsubscribed", as the sender reads
    the lists for membership ``cl``: an import override covers only entries older than it.
    Each is one probe of a unique index."""
    false = "false" if is_postgres(conn) else "0"
    blocked = f"""(EXISTS (
        SELECT 1 FROM block_list AS b
        WHERE b.account_id = cl.account_id AND b.kind = 'email' AND b.value = l.email
          AND (cl.ignore_block_list = {false} OR b.created_at > cl.created_at))
     OR EXISTS (
        SELECT 1 FROM block_list AS b
        WHERE b.account_id = cl.account_id AND b.kind = 'domain' AND b.value = l.email_domain
          AND (cl.ignore_block_list = {false} OR b.created_at > cl.created_at)))"""
    unsubscribed = f"""EXISTS (
        SELECT 1 FROM unsubscribes AS u
        WHERE u.account_id = cl.account_id AND u.email = l.email
          AND (cl.ignore_unsubscribe_list = {false} OR u.created_at > cl.created_at))"""
    return blocked, unsubscribed


def _sendable_now(conn: AsyncConnection) -> str:
    """The conditions of the moment of sending, on ``cl`` (membership), ``l`` and ``c``."""
    blocked, unsubscribed = _suppressed(conn)
    return f"""
    cl.next_seq = g.seq_number
    AND cl.status IN ('{SENDABLE[0]}', '{SENDABLE[1]}')
    AND c.status = '{ACTIVE}'
    AND NOT {blocked}
    AND NOT {unsubscribed}"""


_MARK_FIELDS = (
    ("account_id", "bigint"),
    ("campaign_id", "bigint"),
    ("lead_id", "bigint"),
    ("seq_number", "integer"),
    ("variant_label", "text"),
    ("email_account_id", "bigint"),
    ("message_id", "text"),
    ("lease_until", "timestamptz"),
    ("links", "jsonb"),
    ("created_at", "timestamptz"),
)
_MARK_STATEMENTS: dict[str, str] = {}


def _mark_many_sql(conn: AsyncConnection) -> str:
    sql = _MARK_STATEMENTS.get(conn.dialect.name)
    if sql is None:
        names = [n for n, _ in _MARK_FIELDS]
        given = _rows(conn, names, [t for _, t in _MARK_FIELDS])
        sql = f"""
INSERT INTO messages (account_id, campaign_id, lead_id, seq_number, variant_label,
                      email_account_id, message_id, state, lease_until, links, created_at)
SELECT g.account_id, g.campaign_id, g.lead_id, g.seq_number, g.variant_label,
       g.email_account_id, g.message_id, '{SENDING}', g.lease_until, g.links, g.created_at
FROM {given}
JOIN campaign_leads AS cl
  ON cl.account_id = g.account_id AND cl.campaign_id = g.campaign_id AND cl.lead_id = g.lead_id
JOIN leads AS l ON l.account_id = cl.account_id AND l.id = cl.lead_id
JOIN campaigns AS c ON c.account_id = cl.account_id AND c.id = cl.campaign_id
WHERE {_sendable_now(conn)}
ON CONFLICT (account_id, campaign_id, lead_id, seq_number) DO NOTHING
RETURNING campaign_id, lead_id, seq_number, id
"""
        _MARK_STATEMENTS[conn.dialect.name] = sql
    return sql


async def mark_many(
    conn: AsyncConnection, marks: Sequence[dict[str, Any]]
) -> dict[tuple[int, int, int], int]:
    """``mark_sending`` for many messages in one statement: each given as a dict of the
    ``_MARK_FIELDS``. Returns the new rows' ids by (campaign, lead, step); a message missing
    from the answer may not go (nothing was written for it)."""
    rows = [
        {
            **mark,
            "lease_until": timestamp_text(conn, mark["lease_until"]),
            "created_at": timestamp_text(conn, mark["created_at"]),
            # SQLite's json_extract hands an array back as its JSON text, which is what the
            # column stores; PostgreSQL reads it as jsonb.
        }
        for mark in marks
    ]
    given = (dumps(rows),)
    found = await driver.fetch_rows(conn, _mark_many_sql(conn), given)
    return {(c, lead, seq): id_ for c, lead, seq, id_ in found}


_SENT_STATEMENTS: dict[str, tuple[str, str]] = {}


def _sent_many_sql(conn: AsyncConnection) -> tuple[str, str]:
    """(mark the messages sent, read the memberships they move on)."""
    found = _SENT_STATEMENTS.get(conn.dialect.name)
    if found is None:
        sent = _rows(conn, ["id", "account_id", "sent_at"], ["bigint", "bigint", "timestamptz"])
        keys = _rows(conn, ["account_id", "campaign_id", "lead_id"], ["bigint", "bigint", "bigint"])
        lock = " FOR UPDATE OF cl" if is_postgres(conn) else ""
        found = (
            f"""
UPDATE messages SET state = '{SENT}', sent_at = g.sent_at, lease_until = NULL, error = NULL
FROM {sent}
WHERE messages.id = g.id AND messages.account_id = g.account_id
  AND messages.state = '{SENDING}'
RETURNING messages.id""",
            f"""
SELECT cl.account_id, cl.campaign_id, cl.lead_id, cl.status, cl.next_seq
FROM campaign_leads AS cl
JOIN {keys}
  ON cl.account_id = g.account_id AND cl.campaign_id = g.campaign_id AND cl.lead_id = g.lead_id
{lock}""",
        )
        _SENT_STATEMENTS[conn.dialect.name] = found
    return found


async def mark_many_sent(
    conn: AsyncConnection, sent: Sequence[tuple[int, int, datetime]]
) -> set[int]:
    """(account, message row id, sent at) of messages the server took: those still "sending"
    are now "sent"; returns their ids."""
    if not sent:
        return set()
    rows = [{"account_id": a, "id": m, "sent_at": timestamp_text(conn, t)} for a, m, t in sent]
    update_sql, _ = _sent_many_sql(conn)
    found = await driver.fetch_rows(conn, update_sql, (dumps(rows),))
    return {row[0] for row in found}


class Membership(NamedTuple):
    account_id: int
    campaign_id: int
    lead_id: int
    status: str
    next_seq: int | None


async def memberships_of(
    conn: AsyncConnection, keys: Sequence[tuple[int, int, int]]
) -> dict[tuple[int, int, int], Membership]:
    """The (account, campaign, lead) memberships as they are now (held on PostgreSQL)."""
    if not keys:
        return {}
    rows = [{"account_id": a, "campaign_id": c, "lead_id": lead} for a, c, lead in keys]
    _, select_sql = _sent_many_sql(conn)
    found = await driver.fetch_rows(conn, select_sql, (dumps(rows),))
    return {(r[0], r[1], r[2]): Membership(*r) for r in found}


_MOVE_ON_MANY = """
UPDATE campaign_leads
SET next_seq = {p}, next_send_at = {p}, last_sent_at = {p}, attempts = 0, hold = NULL,
    status = {p}, updated_at = {p}
WHERE account_id = {p} AND campaign_id = {p} AND lead_id = {p} AND next_seq = {p}
"""


async def move_many_on(conn: AsyncConnection, moves: Sequence[tuple[Any, ...]]) -> None:
    """Each (next_seq, next_send_at, now, status, account, campaign, lead, from_seq): the
    membership moved on after a send, while still at ``from_seq``."""
    if not moves:
        return
    if is_postgres(conn):
        marks = [f"${i}" for i in range(1, 10)]
        sql = _MOVE_ON_MANY.replace("{p}", "{}").format(*marks)
    else:
        sql = _MOVE_ON_MANY.replace("{p}", "?")
    rows = []
    for seq, due, now, status, a, c, lead, old in moves:
        stamp = timestamp_value(conn, now)
        rows.append((seq, timestamp_value(conn, due), stamp, status, stamp, a, c, lead, old))
    await driver.execute_many(conn, sql, rows)
