"""Request and response shapes of the campaign endpoints."""

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from openlead.web.numbers import Integer, integer
from openlead.web.text import CLOCK, NAME, line, text

# Checked as sent (so the published schema is exactly what is accepted), then trimmed.
CampaignName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=NAME), AfterValidator(str.strip)
]
Clock = Annotated[str, StringConstraints(pattern=CLOCK)]
TrackSetting = Literal[
    "DONT_TRACK_EMAIL_OPEN", "DONT_TRACK_LINK_CLICK", "DONT_TRACK_REPLY_TO_AN_EMAIL"
]
StopLeadSetting = Literal["REPLY_TO_AN_EMAIL", "CLICK_ON_A_LINK", "OPEN_AN_EMAIL"]


class CampaignCreate(BaseModel):
    # Strict, so that a client_id of true or "7" is refused rather than read as an integer.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: CampaignName
    client_id: Integer | None = None  # compat: SmartLead's agency client; accepted, not used yet


class CampaignSchedule(BaseModel):
    """When the campaign sends, in its own time zone (days: 0 = Sunday)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    timezone: line(64)
    days_of_the_week: list[integer(0, 6)] = Field(min_length=1, max_length=7)
    start_hour: Clock
    end_hour: Clock
    # Minutes between two emails of one mailbox.
    min_time_btw_emails: integer(0, 1440) = 10
    max_new_leads_per_day: integer(0, 1_000_000) = 100
    # No email before this moment (ISO-8601 with an offset or Z); null: as soon as started.
    schedule_start_time: line(40) | None = None


class CampaignSettings(BaseModel):
    """Fields left out keep their value."""

    model_config = ConfigDict(extra="forbid", strict=True)

    track_settings: list[TrackSetting] | None = Field(default=None, max_length=3)
    stop_lead_settings: StopLeadSetting | None = None
    unsubscribe_text: text(1000) | None = None
    send_as_plain_text: bool | None = None
    # SmartLead's, accepted and not used (docs/sending.md).
    follow_up_percentage: Integer | None = None
    client_id: Integer | None = None
    enable_ai_esp_matching: bool | None = None


class CampaignSettingsView(BaseModel):
    track_settings: list[str]
    stop_lead_settings: str
    unsubscribe_text: str | None
    send_as_plain_text: bool


class CampaignStatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    status: Literal["START", "PAUSED", "STOPPED"]


class Campaign(BaseModel):
    id: int
    name: str
    status: str
    created_at: str
    updated_at: str
    schedule: CampaignSchedule | None = None
    settings: CampaignSettingsView | None = None


class CampaignCreated(BaseModel):
    ok: bool = True
    id: int
    name: str
    created_at: str


class CampaignStatusChanged(BaseModel):
    ok: bool = True
    id: int
    status: str
    previous_status: str


class ScheduleSaved(BaseModel):
    ok: bool = True
    id: int
    schedule: CampaignSchedule


class SettingsSaved(BaseModel):
    ok: bool = True
    id: int
    settings: CampaignSettingsView


class Deleted(BaseModel):
    ok: bool = True
