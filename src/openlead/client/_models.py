"""What the SDK returns.

The answers of the API are the server's own response schemas (pydantic models), imported from
the domain packages, so the SDK and the server cannot disagree about a field. The sequence
schemas are mirrored here instead: the server's module loads the template engine, which a
client has no use for (a test holds the mirror to the server's fields).

``ImportSummary`` and ``SkippedLead`` are the SDK's own: the outcome of a whole
``import_leads`` run over many requests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from openlead.campaign_leads.schemas import (
    Activity,
    ActivityEvent,
    CampaignLead,
    CampaignLeadPage,
    CampaignUnsubscribed,
    Removed,
    Statistics,
    StatusChanged,
    Unsubscribed,
)
from openlead.campaigns.schemas import (
    Campaign,
    CampaignCreated,
    CampaignSchedule,
    CampaignSettingsView,
    CampaignStatusChanged,
    Deleted,
    ScheduleSaved,
    SettingsSaved,
)
from openlead.leads.schemas import (
    ImportResult,
    ImportSettings,
    Lead,
    LeadCampaign,
    LeadIn,
    LeadProfile,
)
from openlead.leads.schemas import SkippedLead as SkippedLeadAnswer
from openlead.sending.schemas import (
    CampaignEmailAccountList,
    ConnectionTest,
    EmailAccount,
    EmailAccountPage,
    EmailAccountSaved,
)
from openlead.suppression.schemas import (
    BlockEntry,
    BlockListAdded,
    BlockListPage,
    UnsubscribeEntry,
    UnsubscribePage,
)

__all__ = [
    "Activity",
    "ActivityEvent",
    "BlockEntry",
    "BlockListAdded",
    "BlockListPage",
    "Campaign",
    "CampaignCreated",
    "CampaignEmailAccountList",
    "CampaignLead",
    "CampaignLeadPage",
    "CampaignList",
    "CampaignSchedule",
    "CampaignSettingsView",
    "CampaignStatusChanged",
    "CampaignUnsubscribed",
    "ConnectionTest",
    "Delay",
    "Deleted",
    "EmailAccount",
    "EmailAccountPage",
    "EmailAccountSaved",
    "ImportResult",
    "ImportSettings",
    "ImportSummary",
    "Lead",
    "LeadCampaign",
    "LeadIn",
    "LeadProfile",
    "Preview",
    "Removed",
    "ScheduleSaved",
    "SequenceCheck",
    "Sequences",
    "SequencesSaved",
    "SettingsSaved",
    "SkippedLead",
    "SkippedLeadAnswer",
    "Statistics",
    "StatusChanged",
    "Step",
    "StepPreview",
    "TemplateProblem",
    "UnsubscribeEntry",
    "UnsubscribePage",
    "Unsubscribed",
    "VariableCheck",
    "Variant",
    "VariantPreview",
]


class CampaignList(BaseModel):
    """``GET /campaigns`` answers a bare array (as SmartLead does); its cursor comes in the
    ``X-Next-Cursor`` header. The SDK puts the two together."""

    campaigns: list[Campaign]
    next_cursor: str | None = None


# --------------------------------------------------------------------------- sequences (mirror)


class Delay(BaseModel):
    delay_in_days: int


class Variant(BaseModel):
    variant_label: str
    subject: str
    email_body: str
    variant_distribution_percentage: int | None = None


class Step(BaseModel):
    seq_number: int
    seq_delay_details: Delay
    subject: str
    email_body: str
    seq_variants: list[Variant]
    variant_distribution_type: str = "MANUAL_EQUAL"
    variant_distribution_percentage: int | None = None


class Sequences(BaseModel):
    campaign_id: int
    sequences: list[Step]


class SequencesSaved(Sequences):
    ok: bool = True


class VariantPreview(BaseModel):
    variant_label: str
    subject: str | None
    email_body: str | None
    missing: list[str]
    error: str | None


class StepPreview(BaseModel):
    seq_number: int
    delay_in_days: int
    sent_variant: str
    variants: list[VariantPreview]


class Preview(BaseModel):
    campaign_id: int
    lead_id: int
    ok: bool
    steps: list[StepPreview]


class TemplateProblem(BaseModel):
    seq_number: int
    variant_label: str | None
    field: str
    message: str
    line: int
    column: int


class VariableCheck(BaseModel):
    name: str
    required: bool
    leads_missing: int
    sample_lead_ids: list[int] = Field(default_factory=list)


class SequenceCheck(BaseModel):
    campaign_id: int
    ok: bool
    total_leads: int
    errors: list[TemplateProblem]
    variables: list[VariableCheck]


# --------------------------------------------------------------------------- import summary


@dataclass(slots=True)
class SkippedLead:
    """One lead ``import_leads`` did not add, and why.

    ``index`` is the lead's position in the input (0-based); ``lead`` is the item exactly as it
    was given (a dict, a model...); ``email`` is its address as sent. ``reason`` is the
    server's reason (``"Already exists in this campaign"``, ...) or, for a lead the server
    refused as malformed when ``skip_invalid`` is on, ``"Invalid field value"`` with the
    server's explanation in ``detail``.
    """

    index: int
    email: str | None
    reason: str
    detail: str | None = None
    lead: Any = field(default=None, repr=False)


INVALID_FIELD_VALUE = "Invalid field value"


@dataclass
class ImportSummary:
    """The outcome of ``import_leads``: every lead read is either added or skipped.

    ``skipped_leads`` keeps the first ``keep_skipped`` skipped leads (10,000 by default);
    ``skipped_leads_omitted`` counts the others, which only ``on_skipped`` saw.
    ``unverified`` counts leads reported as added whose add could not be confirmed (a lost
    answer while another client changed the same campaign; see the SDK docs); normally 0.
    """

    campaign_id: int
    total: int = 0
    added: int = 0
    skipped: int = 0
    skipped_by_reason: Counter[str] = field(default_factory=Counter)
    skipped_leads: list[SkippedLead] = field(default_factory=list)
    skipped_leads_omitted: int = 0
    batches: int = 0
    requests: int = 0
    retries: int = 0
    reconciled_batches: int = 0
    unverified: int = 0
    elapsed: float = 0.0

    @property
    def leads_per_second(self) -> float:
        return self.total / self.elapsed if self.elapsed > 0 else 0.0

    def as_dict(self, with_skipped_leads: bool = True) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "campaign_id": self.campaign_id,
            "total": self.total,
            "added": self.added,
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "skipped_leads_omitted": self.skipped_leads_omitted,
            "batches": self.batches,
            "requests": self.requests,
            "retries": self.retries,
            "reconciled_batches": self.reconciled_batches,
            "unverified": self.unverified,
            "elapsed": round(self.elapsed, 3),
        }
        if with_skipped_leads:
            answer["skipped_leads"] = [
                {"index": s.index, "email": s.email, "reason": s.reason, "detail": s.detail}
                for s in self.skipped_leads
            ]
        return answer
