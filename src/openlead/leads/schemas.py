"""Request and response shapes of the lead endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openlead.web.text import NO_CONTROL, line, text

MAX_LEADS_PER_REQUEST = 400
MAX_CUSTOM_FIELDS = 200

CustomFieldKey = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL)]
CustomFieldValue = (
    text(5000)
    | bool
    | Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | None
)
CustomFields = Annotated[
    dict[CustomFieldKey, CustomFieldValue], Field(max_length=MAX_CUSTOM_FIELDS)
]


class LeadProfile(BaseModel):
    """The fields a lead carries besides its address."""

    model_config = ConfigDict(extra="forbid")

    first_name: line(500) | None = None
    last_name: line(500) | None = None
    company_name: line(500) | None = None
    location: line(500) | None = None
    phone_number: line(500) | None = None
    website: line(2000) | None = None
    linkedin_profile: line(2000) | None = None
    company_url: line(2000) | None = None
    custom_fields: CustomFields | None = None


PROFILE_FIELDS = tuple(f for f in LeadProfile.model_fields if f != "custom_fields")


class LeadIn(LeadProfile):
    # Not constrained beyond length: a missing or malformed address is a skip reason, not a 400.
    email: line(1000) | None = None


class ImportSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ignore_global_block_list: bool = False
    ignore_unsubscribe_list: bool = False
    ignore_duplicate_leads_in_other_campaign: bool = False


class ImportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lead_list: list[LeadIn] = Field(min_length=1, max_length=MAX_LEADS_PER_REQUEST)
    settings: ImportSettings | None = None


class SkippedLead(BaseModel):
    email: str | None
    reason: str


class ImportResult(BaseModel):
    ok: bool = True
    added_count: int
    skipped_count: int
    skipped_leads: list[SkippedLead]
    upload_count: int
    total_leads: int
    already_added_to_campaign: int
    duplicate_count: int
    invalid_email_count: int
    invalid_emails: list[str | None]
    unsubscribed_leads: int
    block_count: int
