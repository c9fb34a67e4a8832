"""Request and response shapes for the leads of a campaign."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from openlead.leads.lifecycle import LeadStatus
from openlead.leads.schemas import LeadView
from openlead.web.text import line


class CampaignLead(LeadView):
    """A lead as one campaign sees it: the shared view plus its status there."""

    status: str


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
