"""Campaign rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaigns import repository
from openlead.campaigns.schemas import CampaignSchedule, CampaignSettings
from openlead.clock import utcnow
from openlead.sending import repository as sending
from openlead.sending.schedule import known_timezone, parse_clock
from openlead.sequences import service as sequences
from openlead.sequences.repository import steps as sequence_steps
from openlead.web.errors import ApiError, BadRequest, NotFound
from openlead.web.pagination import Page

DRAFTED = "DRAFTED"
ACTIVE = "ACTIVE"
STOPPED = "STOPPED"
CAMPAIGN_STATUSES = ("DRAFTED", "ACTIVE", "PAUSED", "STOPPED", "COMPLETED")


async def create(conn: AsyncConnection, account_id: int, name: str) -> Row:
    return await repository.insert_campaign(conn, account_id, name, DRAFTED, utcnow())


async def get(conn: AsyncConnection, account_id: int, campaign_id: int) -> Row:
    row = await repository.get_campaign(conn, account_id, campaign_id)
    if row is None:
        raise NotFound("Campaign")
    return row


async def list_page(conn: AsyncConnection, account_id: int, page: Page) -> list[Row]:
    return await repository.list_campaigns(conn, account_id, page)


async def delete(conn: AsyncConnection, account_id: int, campaign_id: int) -> None:
    if not await repository.delete_campaign(conn, account_id, campaign_id):
        raise NotFound("Campaign")


# --- schedule, settings and status ---------------------------------------------------------


def _start_time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise BadRequest(
            "invalid_schedule",
            f"schedule_start_time {raw!r} is not an ISO-8601 moment with an offset or Z.",
        )
    return moment.astimezone(UTC)


def schedule_values(body: CampaignSchedule) -> dict[str, Any]:
    if not known_timezone(body.timezone):
        raise BadRequest(
            "invalid_timezone",
            f"Unknown time zone {body.timezone[:64]!r}; use an IANA name such as "
            "'America/New_York' or 'Europe/Berlin'.",
        )
    start, end = parse_clock(body.start_hour), parse_clock(body.end_hour)
    if end <= start:
        raise BadRequest(
            "invalid_schedule",
            f"end_hour {body.end_hour} must be later than start_hour {body.start_hour}.",
        )
    return {
        "schedule_timezone": body.timezone,
        "schedule_days": sorted(set(body.days_of_the_week)),
        "schedule_start_minute": start,
        "schedule_end_minute": end,
        "min_time_btw_emails": body.min_time_btw_emails,
        "max_new_leads_per_day": body.max_new_leads_per_day,
        "schedule_starts_at": _start_time(body.schedule_start_time),
    }


async def _update(
    conn: AsyncConnection, account_id: int, campaign_id: int, values: dict[str, Any]
) -> Row:
    row = await repository.update_campaign(conn, account_id, campaign_id, values, utcnow())
    if row is None:
        raise NotFound("Campaign")
    return row


async def set_schedule(
    conn: AsyncConnection, account_id: int, campaign_id: int, body: CampaignSchedule
) -> Row:
    return await _update(conn, account_id, campaign_id, schedule_values(body))


async def set_settings(
    conn: AsyncConnection, account_id: int, campaign_id: int, body: CampaignSettings
) -> Row:
    given = body.model_dump(
        include={"track_settings", "stop_lead_settings", "unsubscribe_text", "send_as_plain_text"},
        exclude_unset=True,
    )
    if given.get("track_settings") is not None:
        given["track_settings"] = sorted(set(given["track_settings"]))
    values = {k: v for k, v in given.items() if v is not None or k == "unsubscribe_text"}
    if not values:
        return await get(conn, account_id, campaign_id)
    return await _update(conn, account_id, campaign_id, values)


def _reason(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **details}


async def start_problems(conn: AsyncConnection, account_id: int, campaign: Row) -> list[dict]:
    """Every reason the campaign cannot start sending now; none when it can."""
    problems: list[dict[str, Any]] = []
    report = await sequences.check(conn, account_id, campaign.id, still_to_send=True)
    steps = await sequence_steps(conn, account_id, campaign.id)
    if not steps:
        problems.append(_reason("no_sequence", "The campaign has no steps: save a sequence."))
    if not await sending.campaign_email_accounts_of(conn, account_id, campaign.id):
        problems.append(
            _reason("no_email_account", "The campaign has no email account to send from.")
        )
    if campaign.schedule_timezone is None:
        problems.append(_reason("no_schedule", "The campaign has no sending schedule."))
    if report.errors:
        problems.append(
            _reason(
                "template_errors",
                f"{len(report.errors)} template(s) have syntax errors.",
                errors=report.errors,
            )
        )
    missing = {v.name: v.leads_missing for v in report.variables if v.leads_missing}
    if missing:
        described = ", ".join(f"{count} without {name}" for name, count in sorted(missing.items()))
        problems.append(
            _reason(
                "leads_missing_variables",
                f"Some leads have no value for a variable the templates need: {described}. "
                'Give them a value, add a default (`{{ name | default: "..." }}`), or remove '
                "them from the campaign.",
                leads_missing=missing,
                sample_lead_ids={
                    v.name: v.sample_lead_ids for v in report.variables if v.leads_missing
                },
            )
        )
    return problems


async def change_status(
    conn: AsyncConnection, account_id: int, campaign_id: int, requested: str
) -> tuple[str, str]:
    """START, PAUSED or STOPPED; returns (previous, new) campaign status."""
    campaign = await repository.lock_campaign(conn, account_id, campaign_id)
    if campaign is None:
        raise NotFound("Campaign")
    previous = campaign.status
    if previous == STOPPED and requested != STOPPED:
        raise ApiError(
            409,
            "campaign_stopped",
            "A stopped campaign is finished and cannot be started or paused again; create a "
            "new campaign (PAUSED stops sending for a while).",
        )
    if requested == "START":
        problems = await start_problems(conn, account_id, campaign)
        if problems:
            raise BadRequest(
                "campaign_not_ready",
                "The campaign cannot start: " + " ".join(p["message"] for p in problems),
                {"reasons": problems},
            )
        status = ACTIVE
    else:
        status = requested
    if status != previous:
        await _update(conn, account_id, campaign_id, {"status": status})
    return previous, status
