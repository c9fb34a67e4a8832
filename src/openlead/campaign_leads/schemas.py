"""Request and response shapes for the leads of a campaign."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from openlead.leads.lifecycle import LeadStatus
from openlead.web.text import line


class CampaignLead(BaseModel):
    id: int
    email: str
    first_name: str | None
    last_name: str | None
    company_name: str | None
    location: str | None
    phone_number: str | None
    website: str | None
    linkedin_profile: str | None
    company_url: str | None
    custom_fields: dict[str, Any]
    status: str
    is_unsubscribed: bool
    is_blocked: bool
    created_at: str
    updated_at: str


class CampaignLeadPage(BaseModel):
    leads: list[CampaignLead]
    total_leads: int
    offset: int
    limit: int
    next_cursor: str | None


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # A plain string to the validator, so that an unknown status gets the contract's
    # invalid_status error listing the valid ones; the schema still publishes the choices.
    status: Annotated[line(32), Field(json_schema_extra={"enum": [s.value for s in LeadStatus]})]


class StatusChanged(BaseModel):
    ok: bool = True
    lead_id: int
    campaign_id: int
    status: str
    previous_status: str


class ActivityEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    timestamp: str


class Activity(BaseModel):
    lead_id: int
    campaign_id: int
    events: list[ActivityEvent]


class CampaignUnsubscribed(BaseModel):
    ok: bool = True
    lead_id: int
    campaign_id: int
    status: str
    previous_status: str


class Unsubscribed(BaseModel):
    ok: bool = True
    lead_id: int
    email: str
    already_unsubscribed: bool


class Statistics(BaseModel):
    campaign_id: int
    total_leads: int
    by_status: dict[str, int]
    by_event: dict[str, int]


class Removed(BaseModel):
    ok: bool = True
