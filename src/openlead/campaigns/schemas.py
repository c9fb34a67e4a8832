"""Request and response shapes of the campaign endpoints."""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from openlead.web.text import NAME

# Checked as sent (so the published schema is exactly what is accepted), then trimmed.
CampaignName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=NAME), AfterValidator(str.strip)
]


class CampaignCreate(BaseModel):
    # Strict, so that a client_id of true or "7" is refused rather than read as an integer.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: CampaignName
    client_id: int | None = None  # compat: SmartLead's agency client; accepted, not used yet


class Campaign(BaseModel):
    id: int
    name: str
    status: str
    created_at: str
    updated_at: str


class CampaignCreated(BaseModel):
    ok: bool = True
    id: int
    name: str
    created_at: str


class Deleted(BaseModel):
    ok: bool = True
