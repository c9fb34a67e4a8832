"""Lead rules: import into a campaign, look a lead up."""

from __future__ import annotations

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.addresses import normalise_email
from openlead.campaign_leads import repository as campaign_leads
from openlead.clock import utcnow
from openlead.db.overlap import runs_beside_python, started
from openlead.leads import importer, repository
from openlead.leads.lifecycle import TEMPLATE_HOLDS, EventType, LeadStatus
from openlead.leads.schemas import (
    MAX_CUSTOM_FIELDS,
    PROFILE_FIELDS,
    ImportBody,
    ImportRequest,
    ImportResult,
    ImportSettings,
    LeadProfile,
)
from openlead.suppression import service as suppression
from openlead.web.errors import BadRequest, NotFound


async def import_leads(
    conn: AsyncConnection,
    account_id: int,
    campaign_id: int,
    body: ImportBody | ImportRequest,
) -> ImportResult:
    """Add a batch of leads to a campaign in one transaction, a fixed number of statements.

    On PostgreSQL the database looks the addresses up while they are screened and the body is
    validated, which takes about as long. A bad body is refused before anything is written.
    """
    if isinstance(body, ImportRequest):
        body = ImportBody.of(body)
    await repository.lock_for_import(conn, account_id)
    # Read ahead of validation only where the lookups can run beside it (db.overlap).
    addresses = body.addresses() if runs_beside_python(conn.dialect.name) else None
    if addresses is None:
        request = body.request()
        screened = importer.screen(_addresses_of(request))
        checks = await repository.import_checks(conn, account_id, campaign_id, screened.emails)
    else:
        # The lookups start on each address in the form most addresses are stored in, so
        # that screening runs beside them too; an address stored otherwise is looked up again.
        probes = importer.probe_forms(addresses)
        async with started(
            repository.import_checks(conn, account_id, campaign_id, probes)
        ) as looking_up:
            screened = importer.screen(addresses)
            request = body.request()
        checks = looking_up.result()
        validated = _addresses_of(request)
        readings_disagree = validated != addresses
        if readings_disagree:
            # None known does, but then the plan must follow the validated reading.
            screened = importer.screen(validated)
        if readings_disagree or not set(probes).issuperset(screened.emails):
            checks = await repository.import_checks(conn, account_id, campaign_id, screened.emails)
    if checks is None:
        raise NotFound("Campaign")
    settings = request.settings or ImportSettings()
    emails = screened.emails
    known = importer.Known(
        in_campaign=checks.in_campaign,
        in_other_campaign=checks.in_other_campaign,
        blocked=suppression.blocked_among(emails, checks.blocked_addresses, checks.blocked_domains),
        unsubscribed=checks.unsubscribed,
    )
    plan = importer.plan(screened, known, settings, total=len(request.lead_list))
    if plan.adds:
        await repository.add_leads(
            conn,
            account_id,
            campaign_id,
            plan.adds,
            request.lead_list,
            checks.known_leads,
            LeadStatus.NOT_CONTACTED,
            settings.ignore_global_block_list,
            settings.ignore_unsubscribe_list,
            EventType.LEAD_ADDED,
            utcnow(),
        )
        await _refuse_merges_past_the_limit(conn, account_id, plan.adds, request, checks)
    return plan.result()


async def _refuse_merges_past_the_limit(
    conn: AsyncConnection,
    account_id: int,
    adds: list[importer.Candidate],
    request: ImportRequest,
    checks: repository.ImportChecks,
) -> None:
    """Refuse the import when a merge took an existing lead past the custom-field limit.

    A new lead is held to it by validation; an existing one can pass it only by gaining keys,
    so only those are counted, after the write, in what the database now holds. The request's
    transaction then rolls the whole import back, as for any refused request. The answer has
    the shape of a validation error that names each lead's position, so that a client which
    skips invalid leads and sends the rest (the SDK's ``skip_invalid``) handles it too.
    """
    merging = [
        c
        for c in adds
        if c.email in checks.known_leads and request.lead_list[c.position].custom_fields
    ]
    if not merging:
        return
    over = await repository.custom_fields_over(
        conn, account_id, [c.email for c in merging], MAX_CUSTOM_FIELDS
    )
    problems = [
        {
            "loc": f"lead_list.{c.position}.custom_fields",
            "type": "too_many_custom_fields",
            "msg": f"with these custom fields the lead {c.email} would have {over[c.email]}; "
            f"a lead has at most {MAX_CUSTOM_FIELDS}",
        }
        for c in merging
        if c.email in over
    ]
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise BadRequest(
            "invalid_request", f"'{problems[0]['loc']}': {problems[0]['msg']}{more}.", problems
        )


def _addresses_of(request: ImportRequest) -> list[str | None]:
    return [lead.email for lead in request.lead_list]


async def get(conn: AsyncConnection, account_id: int, lead_id: int) -> Row:
    row = await repository.get_lead(conn, account_id, lead_id)
    if row is None:
        raise NotFound("Lead")
    return row


async def find_by_email(conn: AsyncConnection, account_id: int, raw_email: str) -> Row:
    email = normalise_email(raw_email)
    if email is None:
        raise BadRequest("invalid_email", f"{raw_email[:320]!r} is not a valid email address.")
    row = await repository.find_by_email(conn, account_id, email)
    if row is None:
        raise NotFound("Lead")
    return row


async def update_profile(
    conn: AsyncConnection, account_id: int, lead_id: int, patch: LeadProfile
) -> Row:
    """Given fields win, absent (or null) ones are kept; custom fields merge key by key."""
    fields = {f: getattr(patch, f) for f in PROFILE_FIELDS if getattr(patch, f) is not None}
    custom = {k: v for k, v in (patch.custom_fields or {}).items() if v is not None}
    now = utcnow()
    row = await repository.update_profile(conn, account_id, lead_id, fields, custom, now)
    if row is None:
        raise NotFound("Lead")
    _refuse_too_many_custom_fields(row.custom_fields)
    # A sequence that waited for a value may go on; the sender renders it afresh. A template
    # that rendered to nothing for the lead may render now too.
    await campaign_leads.lift_holds(conn, account_id, TEMPLATE_HOLDS, now, lead_id=lead_id)
    return row


def _refuse_too_many_custom_fields(merged: dict) -> None:
    # The limit holds for what the lead keeps, not only for one request's part of it; the
    # request's transaction rolls the update back.
    if len(merged) > MAX_CUSTOM_FIELDS:
        raise BadRequest(
            "too_many_custom_fields",
            f"With these custom fields the lead would have {len(merged)}; a lead has at most "
            f"{MAX_CUSTOM_FIELDS}.",
            {"custom_fields": len(merged), "max": MAX_CUSTOM_FIELDS},
        )


async def standing(
    conn: AsyncConnection, account_id: int, lead: Row
) -> tuple[list[Row], suppression.Suppressed]:
    """Where a lead stands: its campaigns with their statuses, and the lists it is on."""
    memberships = await campaign_leads.memberships(conn, account_id, lead.id)
    return memberships, await suppression.suppressed(conn, account_id, [lead.email])
