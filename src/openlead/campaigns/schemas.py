"""Request and response shapes of the campaign endpoints."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from openlead.web.text import NO_CONTROL

CampaignName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True, pattern=NO_CONTROL)
]


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

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
