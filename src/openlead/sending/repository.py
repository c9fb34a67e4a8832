"""SQL for mailboxes and for the dispatcher's work. Scoped by account, except where noted.

The dispatcher serves every account, so two statements look across accounts: the list of
running campaigns, and nothing else. From a campaign on, every statement names its account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.dialect import insert_for, is_postgres
from openlead.db.tables import (
    FRESH_LEAD,
    FRESH_LEAD_INDEX,
    block_list,
    campaign_email_accounts,
    campaign_leads,
    campaigns,
    email_accounts,
    leads,
    messages,
    unsubscribes,
)
from openlead.leads.lifecycle import LeadStatus
from openlead.leads.schemas import PROFILE_FIELDS
from openlead.web.pagination import Page

ACTIVE = "ACTIVE"
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
    if page.after is not None:
        query = query.where(email_accounts.c.id > page.after)
    query = query.order_by(email_accounts.c.id).offset(page.offset).limit(page.limit)
    return list((await conn.execute(query)).all())


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
        .order_by(email_accounts.c.id)
    )


async def campaign_email_accounts_of(
    conn: AsyncConnection, account_id: int, campaign_id: int, page: Page | None = None
) -> list[Row]:
    """The campaign's mailboxes in id order (a page of them, when ``page`` is given)."""
    query = _campaign_mailboxes(account_id, campaign_id)
    if page is not None:
        if page.after is not None:
            query = query.where(email_accounts.c.id > page.after)
        query = query.offset(page.offset).limit(page.limit)
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
        query = query.with_for_update()
    return (await conn.execute(query)).first()


async def lock_campaign_mailboxes(
    conn: AsyncConnection, account_id: int, campaign_id: int
) -> list[Row]:
    """The campaign's mailboxes, held (in id order, as every writer takes them) on PostgreSQL."""
    query = _campaign_mailboxes(account_id, campaign_id)
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
    then, so a worker that dies loses nothing."""
    if not assignments:
        return
    statement = (
        update(campaign_leads)
        .where(
            campaign_leads.c.account_id == account_id,
            campaign_leads.c.campaign_id == campaign_id,
            campaign_leads.c.lead_id == bindparam("lead"),
        )
        .values(email_account_id=bindparam("mailbox"), next_send_at=lease_until)
    )
    await conn.execute(statement, [{"lead": lead, "mailbox": box} for lead, box in assignments])


async def reserve_mailbox(
    conn: AsyncConnection,
    account_id: int,
    mailbox_id: int,
    day: str,
    sent_today: int,
    next_free_at: datetime | None,
) -> None:
    await conn.execute(
        update(email_accounts)
        .where(email_accounts.c.account_id == account_id, email_accounts.c.id == mailbox_id)
        .values(sent_day=day, sent_today=sent_today, next_free_at=next_free_at)
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
    conn: AsyncConnection, account_id: int, mailbox_id: int, day: str, count: int
) -> None:
    """Give back sends reserved today and not made (a reservation from an earlier day has
    gone with its day)."""
    await conn.execute(
        update(email_accounts)
        .where(
            email_accounts.c.account_id == account_id,
            email_accounts.c.id == mailbox_id,
            email_accounts.c.sent_day == day,
        )
        .values(sent_today=_larger(conn)(email_accounts.c.sent_today - count, 0))
    )


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


async def messages_of(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_ids: list[int]
) -> list[Row]:
    """The claimed leads' earlier emails in this campaign, by step."""
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



def _membership(account_id: int, campaign_id: int, lead_id: int) -> list[Any]:
    return [
        campaign_leads.c.account_id == account_id,
        campaign_leads.c.campaign_id == campaign_id,
        campaign_leads.c.lead_id == lead_id,
    ]


def _listed_against_membership() -> tuple[Any, Any]:
    """Whether the lead's address is blocked, and whether it is unsubscribed, as the sender
    reads the lists: an import override covers only entries older than the membership."""
    blocked_entry = lambda kind, value: exists().where(  # noqa: E731
        block_list.c.account_id == campaign_leads.c.account_id,
        block_list.c.kind == kind,
        block_list.c.value == value,
        or_(
            not_(campaign_leads.c.ignore_block_list),
            block_list.c.created_at > campaign_leads.c.created_at,
        ),
    )
    blocked = or_(
        blocked_entry("email", leads.c.email), blocked_entry("domain", leads.c.email_domain)
    )
    unsubscribed = exists().where(
        unsubscribes.c.account_id == campaign_leads.c.account_id,
        unsubscribes.c.email == leads.c.email,
        or_(
            not_(campaign_leads.c.ignore_unsubscribe_list),
            unsubscribes.c.created_at > campaign_leads.c.created_at,
        ),
    )
    return blocked, unsubscribed


def _joined() -> Any:
    return campaign_leads.join(
        leads,
        and_(
            leads.c.account_id == campaign_leads.c.account_id,
            leads.c.id == campaign_leads.c.lead_id,
        ),
    ).join(
        campaigns,
        and_(
            campaigns.c.account_id == campaign_leads.c.account_id,
            campaigns.c.id == campaign_leads.c.campaign_id,
        ),
    )


async def mark_sending(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    seq_number: int,
    values: dict[str, Any],
) -> int | None:
    """Record that this step is about to go to this lead, if it may: the lead is still at
    this step in a sendable status, the campaign runs, and the address is neither blocked nor
    unsubscribed right now. Returns the message's id, or None (nothing written)."""
    names = tuple(values)
    statement = _prebuilt(
        conn, ("mark_sending", names), lambda postgres: _mark_statement(names, postgres)
    )
    params = {
        **_membership_params(account_id, campaign_id, lead_id),
        "w_seq_number": seq_number,
        **{f"v_{k}": v for k, v in values.items()},
    }
    return (await conn.execute(statement, params)).scalar()


def _mark_statement(names: tuple[str, ...], postgres: bool) -> Any:
    blocked, unsubscribed = _listed_against_membership()
    columns = ["account_id", "campaign_id", "lead_id", "seq_number", *names]
    key = ("account_id", "campaign_id", "lead_id", "seq_number")
    chosen = (
        select(
            *(_param(f"w_{k}", messages.c[k]) for k in key),
            *(_param(f"v_{k}", messages.c[k]) for k in names),
        )
        .select_from(_joined())
        .where(
            *_bound_membership(),
            campaign_leads.c.next_seq == _param("w_seq_number", campaign_leads.c.next_seq),
            campaign_leads.c.status.in_(SENDABLE),
            campaigns.c.status == ACTIVE,
            not_(blocked),
            not_(unsubscribed),
        )
    )
    return (
        (postgresql.insert if postgres else sqlite.insert)(messages)
        .from_select(columns, chosen)
        .on_conflict_do_nothing(
            index_elements=["account_id", "campaign_id", "lead_id", "seq_number"]
        )
        .returning(messages.c.id)
    )


async def why_not_sendable(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int, seq_number: int
) -> Row | None:
    """What stopped ``mark_sending``: the membership as it is now, or None if it is gone."""
    blocked, unsubscribed = _listed_against_membership()
    query = (
        select(
            campaign_leads.c.next_seq,
            campaign_leads.c.status,
            campaigns.c.status.label("campaign_status"),
            blocked.label("blocked"),
            unsubscribed.label("unsubscribed"),
            select(messages.c.state)
            .where(
                messages.c.account_id == account_id,
                messages.c.campaign_id == campaign_id,
                messages.c.lead_id == lead_id,
                messages.c.seq_number == seq_number,
            )
            .scalar_subquery()
            .label("message_state"),
        )
        .select_from(_joined())
        .where(*_membership(account_id, campaign_id, lead_id))
    )
    return (await conn.execute(query)).first()


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


async def release(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    lead_id: int,
    seq_number: int,
    values: dict[str, Any],
) -> None:
    await move_on(conn, account_id, campaign_id, lead_id, seq_number, values)


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
