"""Suppression rules: the one place that answers "may this address be contacted?"."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.addresses import domain_of, normalise_domain, normalise_email, searchable
from openlead.campaign_leads import repository as campaign_leads
from openlead.clock import utcnow
from openlead.suppression import repository
from openlead.suppression.repository import DOMAIN, EMAIL
from openlead.web.errors import NotFound
from openlead.web.pagination import Page

# Why a lead's sequence waits when its address is on a list (campaign_leads.hold).
HOLD = "suppressed"


@dataclass(frozen=True)
class Suppressed:
    """Which of some addresses are blocked, and which are unsubscribed, right now."""

    blocked: frozenset[str]
    unsubscribed: frozenset[str]


def blocked_among(
    emails: Iterable[str], listed_addresses: Collection[str], listed_domains: Collection[str]
) -> frozenset[str]:
    """The addresses the block list hits: listed themselves, or their domain is."""
    return frozenset(e for e in emails if e in listed_addresses or domain_of(e) in listed_domains)


async def suppressed(conn: AsyncConnection, account_id: int, emails: Iterable[str]) -> Suppressed:
    emails = list(emails)
    hits = await repository.block_hits(conn, account_id, emails, {domain_of(e) for e in emails})
    blocked = blocked_among(
        emails,
        {h.value for h in hits if h.kind == EMAIL},
        {h.value for h in hits if h.kind == DOMAIN},
    )
    unsubscribed = frozenset(await repository.unsubscribed_among(conn, account_id, emails))
    return Suppressed(blocked=blocked, unsubscribed=unsubscribed)


@dataclass(frozen=True)
class BlockOutcome:
    added_count: int
    already_blocked_count: int
    invalid: list[str]


def _classify(
    emails: Iterable[str], domains: Iterable[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    entries: dict[tuple[str, str], None] = {}
    invalid: list[str] = []
    for raw in emails:
        email = normalise_email(raw)
        if email is None:
            invalid.append(raw)
        else:
            entries[(EMAIL, email)] = None
    for raw in domains:
        domain = normalise_domain(raw)
        if domain is None:
            invalid.append(raw)
        else:
            entries[(DOMAIN, domain)] = None
    return list(entries), invalid


async def block(
    conn: AsyncConnection,
    account_id: int,
    emails: Iterable[str],
    domains: Iterable[str],
    source: str = "api",
) -> BlockOutcome:
    """Add entries to the block list; every lead they newly hit gets a BLOCKED event in each
    of its campaigns (its ``is_blocked`` is read from the list, so it shows at once)."""
    entries, invalid = _classify(emails, domains)
    now = utcnow()
    added = await repository.insert_blocks(conn, account_id, entries, source, now)
    emails = [value for kind, value in added if kind == EMAIL]
    domains = [value for kind, value in added if kind == DOMAIN]
    await campaign_leads.record_blocked(conn, account_id, emails, domains, source, now)
    # Their unfinished sequences stop; the sender checks the list again before every email.
    await campaign_leads.hold_addresses(conn, account_id, emails, domains, HOLD)
    return BlockOutcome(len(added), len(entries) - len(added), invalid)


def split_mixed(values: Iterable[str]) -> tuple[list[str], list[str]]:
    """SmartLead's domain block list mixes addresses and domains: an ``@`` tells them apart."""
    values = list(values)
    return [v for v in values if "@" in v.strip().lstrip("@")], [
        v for v in values if "@" not in v.strip().lstrip("@")
    ]


async def list_blocks(
    conn: AsyncConnection, account_id: int, search: str | None, page: Page
) -> list[Row]:
    return await repository.list_blocks(conn, account_id, _stored_form(search), page)


async def list_unsubscribes(
    conn: AsyncConnection, account_id: int, search: str | None, page: Page
) -> list[Row]:
    return await repository.list_unsubscribes(conn, account_id, _stored_form(search), page)


def _stored_form(search: str | None) -> str | None:
    return searchable(search) if search else None


async def unblock(conn: AsyncConnection, account_id: int, entry_id: int) -> None:
    """Take an entry off the block list; sequences it held may go on (the sender looks at the
    lists again before every email)."""
    entry = await repository.delete_block(conn, account_id, entry_id)
    if entry is None:
        raise NotFound("Block list entry")
    kind, value = entry
    emails, domains = ([value], []) if kind == EMAIL else ([], [value])
    await campaign_leads.lift_holds(
        conn, account_id, HOLD, utcnow(), emails=emails, domains=domains
    )


async def unsubscribe(conn: AsyncConnection, account_id: int, email: str, source: str) -> bool:
    """Put an address on the unsubscribe list; False when it was already there."""
    return await repository.insert_unsubscribe(conn, account_id, email, source, utcnow())


async def resubscribe(conn: AsyncConnection, account_id: int, entry_id: int) -> None:
    email = await repository.delete_unsubscribe(conn, account_id, entry_id)
    if email is None:
        raise NotFound("Unsubscribe entry")
    await campaign_leads.lift_holds(conn, account_id, HOLD, utcnow(), emails=[email])
