"""HTTP endpoints for a campaign's sequence: its steps, a lead's preview and the check."""

from __future__ import annotations

from fastapi import APIRouter

from openlead.sequences import service
from openlead.sequences.schemas import (
    BY_PERCENTAGE,
    EVENLY,
    MAIN_VARIANT,
    Delay,
    Preview,
    SequenceCheck,
    Sequences,
    SequencesIn,
    SequencesSaved,
    Step,
    StepPreview,
    TemplateProblem,
    VariableCheck,
    Variant,
    VariantPreview,
)
from openlead.web.deps import AccountId, ReadConn, WriteConn
from openlead.web.ids import ObjectId

router = APIRouter(tags=["sequences"])


def _step(step: service.Step) -> Step:
    main = step.variants[0]
    return Step(
        seq_number=step.seq_number,
        seq_delay_details=Delay(delay_in_days=step.delay_in_days),
        subject=main.subject,
        email_body=main.email_body,
        seq_variants=[
            Variant(
                variant_label=v.label,
                subject=v.subject,
                email_body=v.email_body,
                variant_distribution_percentage=v.share,
            )
            for v in step.variants
            if v.label != MAIN_VARIANT
        ],
        variant_distribution_type=EVENLY if step.shares is None else BY_PERCENTAGE,
        variant_distribution_percentage=main.share,
    )


@router.post("/campaigns/{campaign_id:int}/sequences", response_model=SequencesSaved)
async def save_sequences(
    campaign_id: ObjectId, body: SequencesIn, account_id: AccountId, conn: WriteConn
) -> SequencesSaved:
    """Replace the campaign's steps. Every template is checked first: a syntax error is a 400
    that names the step, the variant, the field, the line and the column."""
    steps = await service.save(conn, account_id, campaign_id, body)
    return SequencesSaved(campaign_id=campaign_id, sequences=[_step(s) for s in steps])


@router.get("/campaigns/{campaign_id:int}/sequences", response_model=Sequences)
async def get_sequences(campaign_id: ObjectId, account_id: AccountId, conn: ReadConn) -> Sequences:
    steps = await service.get(conn, account_id, campaign_id)
    return Sequences(campaign_id=campaign_id, sequences=[_step(s) for s in steps])


@router.get("/campaigns/{campaign_id:int}/sequences/check", response_model=SequenceCheck)
async def check_sequences(
    campaign_id: ObjectId, account_id: AccountId, conn: ReadConn
) -> SequenceCheck:
    """Template errors, the variables the templates use, and for each the number of the
    campaign's leads without a value for it, with a few of their ids. Counted in the
    database in one pass."""
    report = await service.check(conn, account_id, campaign_id)
    return SequenceCheck(
        campaign_id=campaign_id,
        ok=report.ok,
        total_leads=report.total_leads,
        errors=[TemplateProblem(**e) for e in report.errors],
        variables=[
            VariableCheck(
                name=v.name,
                required=v.required,
                leads_missing=v.leads_missing,
                sample_lead_ids=v.sample_lead_ids,
            )
            for v in report.variables
        ],
    )


@router.get("/campaigns/{campaign_id:int}/leads/{lead_id:int}/preview", response_model=Preview)
async def preview_lead(
    campaign_id: ObjectId, lead_id: ObjectId, account_id: AccountId, conn: ReadConn
) -> Preview:
    """Every step and variant rendered for this lead, exactly as it would be sent, or the
    variables the lead has no value for."""
    steps = await service.preview(conn, account_id, campaign_id, lead_id)
    answer = [
        StepPreview(
            seq_number=s.seq_number,
            delay_in_days=s.delay_in_days,
            sent_variant=s.sent_variant,
            variants=[
                VariantPreview(
                    variant_label=v.label,
                    subject=v.subject,
                    email_body=v.email_body,
                    missing=list(v.missing),
                    error=v.error,
                )
                for v in s.variants
            ],
        )
        for s in steps
    ]
    ok = all(v.subject is not None for s in answer for v in s.variants)
    return Preview(campaign_id=campaign_id, lead_id=lead_id, ok=ok, steps=answer)
