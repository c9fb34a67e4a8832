"""Request and response shapes for the leads of a campaign."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from openlead.leads.lifecycle import LeadStatus
from openlead.leads.schemas import LeadView
from openlead.web.text import line


class CampaignLead(LeadView):
    """A lead as one campaign sees it: the shared view plus its status there, and where its
    sequence stands (docs/sending.md)."""

    status: str
    next_seq_number: int | None = Field(
        description="The step the lead gets next; null once its sequence has ended."
    )
    next_send_at: str | None = Field(
        description="When that step is due. Null for a lead whose first email waits for its "
        "turn (the campaign's daily budget and its mailboxes' room), and while it is held."
    )
    hold: str | None = Field(
        description="Why its sequence waits or ended, when it does: suppressed (the address is "
        "on the block or unsubscribe list), missing_variables (a template needs a value the "
        "lead lacks), render_error; or stopped_on_email_opened, stopped_on_link_clicked, "
        "stopped_on_email_replied (the campaign's stop_lead_settings), bounced (a delivery "
        "report read from the inbox), rejected (the recipient's server kept refusing the "
        "message for a reason that is not the address's: a policy block, spam, its size)."
    )
    email_account_id: int | None = Field(
        description="The mailbox that sends its sequence, from its first email on."
    )


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
    offset: int
    limit: int
    next_cursor: str | None


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
