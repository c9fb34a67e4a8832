"""Request and response shapes of the sequence endpoints (SmartLead's shape)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openlead.sequences.templates import MAX_BODY_CHARS, MAX_SUBJECT_CHARS
from openlead.web.numbers import Integer
from openlead.web.text import NAME, line, text

MAX_STEPS = 20
MAX_VARIANTS_PER_STEP = 10  # the step's own subject and body (variant "A") included
MAX_DELAY_DAYS = 365
MAIN_VARIANT = "A"


VariantLabel = Annotated[str, StringConstraints(min_length=1, max_length=20, pattern=NAME)]


class DelayDetails(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    delay_in_days: Integer = Field(ge=0, le=MAX_DELAY_DAYS)


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    variant_label: VariantLabel
    # Empty in a follow-up: a reply in the thread ("Re: " + step 1's subject).
    subject: line(MAX_SUBJECT_CHARS) = ""
    email_body: text(MAX_BODY_CHARS)


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    seq_number: Integer = Field(ge=1, le=MAX_STEPS)
    seq_delay_details: DelayDetails
    subject: line(MAX_SUBJECT_CHARS) = ""
    email_body: text(MAX_BODY_CHARS)
    seq_variants: list[VariantIn] = Field(default=[], max_length=MAX_VARIANTS_PER_STEP - 1)


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


class Step(BaseModel):
    seq_number: int
    seq_delay_details: Delay
    subject: str
    email_body: str
    seq_variants: list[Variant]


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
