"""Request and response shapes of the sequence endpoints (SmartLead's shape)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openlead.sequences.templates import MAX_BODY_CHARS, MAX_SUBJECT_CHARS
from openlead.web.numbers import Integer, integer
from openlead.web.text import NAME, line, text

MAX_STEPS = 20
MAX_VARIANTS_PER_STEP = 10  # the step's own subject and body (variant "A") included
MAX_DELAY_DAYS = 365
MAIN_VARIANT = "A"


VariantLabel = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=NAME)]
Percentage = integer(0, 100)
# SmartLead's ways of splitting a step's leads between its variants. MANUAL_PERCENTAGE follows
# the variants' percentages; the others share them evenly (openlead picks no winner by
# itself: AI_EQUAL is an even split, docs/decisions.md).
DistributionType = Literal["MANUAL_EQUAL", "MANUAL_PERCENTAGE", "AI_EQUAL"]
BY_PERCENTAGE = "MANUAL_PERCENTAGE"
EVENLY = "MANUAL_EQUAL"
# Taken so that SmartLead's bodies are accepted; openlead does not use them (docs/decisions.md).
WinningMetric = Literal["OPEN_RATE", "CLICK_RATE", "REPLY_RATE", "POSITIVE_REPLY_RATE"]


class DelayDetails(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    delay_in_days: Integer = Field(ge=0, le=MAX_DELAY_DAYS)


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    variant_label: VariantLabel
    # Empty in a follow-up: a reply in the thread ("Re: " + step 1's subject).
    subject: line(MAX_SUBJECT_CHARS) = ""
    email_body: text(MAX_BODY_CHARS)
    # Its share of the step's leads when the step is split MANUAL_PERCENTAGE.
    variant_distribution_percentage: Percentage | None = None
    # SmartLead's own id of the variant, and a field of its editor: taken, not used.
    id: Integer | None = None
    optional_email_body_1: text(MAX_BODY_CHARS) | None = None


class StepIn(BaseModel):
    """A step: its own subject and body are variant "A", ``seq_variants`` the others. As
    SmartLead's editor sends it, a step may instead leave out its own body and carry "A"
    among its ``seq_variants``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seq_number: Integer = Field(ge=1, le=MAX_STEPS)
    seq_delay_details: DelayDetails
    subject: line(MAX_SUBJECT_CHARS) = ""
    email_body: text(MAX_BODY_CHARS) | None = None
    seq_variants: list[VariantIn] = Field(default=[], max_length=MAX_VARIANTS_PER_STEP)
    variant_distribution_type: DistributionType | None = None
    # Variant A's share when the step's own body is variant A (what GET answers).
    variant_distribution_percentage: Percentage | None = None
    # SmartLead's: the step's id, its kind, and its automatic A/B test; taken, not used.
    id: Integer | None = None
    seq_type: Literal["EMAIL"] | None = None
    lead_distribution_percentage: Percentage | None = None
    winning_metric_property: WinningMetric | None = None


class SequencesIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # What GET answers, sent back whole, carries it; the path names the campaign, so a
    # sequence read from one campaign can be saved into another.
    campaign_id: Integer | None = None
    sequences: list[StepIn] = Field(max_length=MAX_STEPS)


class Delay(BaseModel):
    delay_in_days: int


class Variant(BaseModel):
    variant_label: str
    subject: str
    email_body: str
    variant_distribution_percentage: int | None = Field(
        description="Its share of the step's leads, when they are split by percentage"
    )


class Step(BaseModel):
    seq_number: int
    seq_delay_details: Delay
    subject: str
    email_body: str
    seq_variants: list[Variant]
    variant_distribution_type: DistributionType = Field(
        description="MANUAL_PERCENTAGE when the variants' percentages split the step's leads, "
        "MANUAL_EQUAL when the variants share them evenly"
    )
    variant_distribution_percentage: int | None = Field(
        description="Variant A's (the step's own subject and body) share, when split by percentage"
    )


class Sequences(BaseModel):
    campaign_id: int
    sequences: list[Step]


class SequencesSaved(Sequences):
    ok: bool = True


class VariantPreview(BaseModel):
    variant_label: str
    subject: str | None = Field(description="The rendered subject; null when it cannot be")
    email_body: str | None = Field(description="The rendered body; null when it cannot be")
    missing: list[str] = Field(description="Variables the lead has no value for")
    error: str | None = Field(description="Why the render stopped (a limit), if it did")


class StepPreview(BaseModel):
    seq_number: int
    delay_in_days: int
    sent_variant: str = Field(description="The variant of this step that the lead is sent")
    variants: list[VariantPreview]


class Preview(BaseModel):
    campaign_id: int
    lead_id: int
    ok: bool = Field(description="Every variant of every step renders for this lead")
    steps: list[StepPreview]


class TemplateProblem(BaseModel):
    seq_number: int
    variant_label: str | None = Field(description="Null for the step's own subject and body")
    field: str = Field(description="subject or email_body")
    message: str
    line: int
    column: int


class VariableCheck(BaseModel):
    name: str
    required: bool = Field(
        description="Written out somewhere without a default and not only under "
        "{% if name %}: only such variables are counted"
    )
    leads_missing: int
    sample_lead_ids: list[int]


class SequenceCheck(BaseModel):
    campaign_id: int
    ok: bool = Field(description="No template error and no lead missing a variable")
    total_leads: int
    errors: list[TemplateProblem]
    variables: list[VariableCheck]
