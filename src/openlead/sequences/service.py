"""Sequence rules: saving steps, previewing them for a lead, checking a campaign's leads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaign_leads import repository as campaign_leads
from openlead.clock import utcnow
from openlead.leads.lifecycle import TEMPLATE_HOLDS
from openlead.leads.schemas import PROFILE_FIELDS
from openlead.sequences import repository
from openlead.sequences.schemas import (
    BY_PERCENTAGE,
    MAIN_VARIANT,
    MAX_VARIANTS_PER_STEP,
    SequencesIn,
    StepIn,
)
from openlead.sequences.templates import (
    CompiledTemplate,
    Rendered,
    RenderError,
    TemplateSyntaxError,
    compile_template,
    lead_values,
    render,
    render_subject,
    variant_for,
)
from openlead.web.errors import BadRequest, NotFound

# The templates of one request, all steps and variants together: compiling is linear in their
# length, and this keeps one save well under a second.
MAX_TEMPLATE_CHARS_PER_CAMPAIGN = 1_000_000
MAX_VARIABLES_PER_CAMPAIGN = 250
MAX_SAMPLES = 10
THREAD_PREFIX = "Re: "
MAX_REPORTED_ERRORS = 50


@dataclass(frozen=True)
class Variant:
    label: str
    subject: str
    email_body: str
    # Its share of the step's leads in percent; None when the variants share them evenly.
    share: int | None = None


@dataclass
class Step:
    seq_number: int
    delay_in_days: int
    variants: list[Variant] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [v.label for v in self.variants]

    @property
    def shares(self) -> list[int] | None:
        """Each variant's percentage of the step's leads; None for an even split."""
        if all(v.share is None for v in self.variants):
            return None
        return [v.share or 0 for v in self.variants]

    def variant_for(self, lead_id: int) -> Variant:
        """The variant this lead is sent: the same every time."""
        label = variant_for(lead_id, self.seq_number, self.labels, self.shares)
        return next(v for v in self.variants if v.label == label)


def group(rows: Iterable[Row]) -> list[Step]:
    """Stored rows (ordered by step, main variant first) as steps."""
    steps: list[Step] = []
    for row in rows:
        if not steps or steps[-1].seq_number != row.seq_number:
            steps.append(Step(row.seq_number, row.delay_in_days))
        variant = Variant(
            row.variant_label, row.subject, row.email_body, row.distribution_percentage
        )
        steps[-1].variants.append(variant)
    return steps


# --- saving ---------------------------------------------------------------------------------


def _where(seq_number: int, label: str) -> str:
    return f"Step {seq_number}" + (f", variant {label}" if label != MAIN_VARIANT else "")


def _problem(seq_number: int, label: str, name: str, err: TemplateSyntaxError) -> dict[str, Any]:
    return {
        "seq_number": seq_number,
        "variant_label": None if label == MAIN_VARIANT else label,
        "field": name,
        "message": err.message,
        "line": err.line,
        "column": err.column,
    }


def _steps_of(body: SequencesIn) -> list[Step]:
    numbers = [s.seq_number for s in body.sequences]
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise BadRequest(
            "invalid_sequence",
            f"Steps must be numbered 1 to {len(numbers)}, each once; got "
            f"{', '.join(map(str, numbers))}.",
            {"seq_numbers": numbers},
        )
    return [_step_of(given) for given in sorted(body.sequences, key=lambda s: s.seq_number)]


def _step_of(given: StepIn) -> Step:
    # Step 1 goes as soon as the campaign may send, whatever delay it names: SmartLead's own
    # example gives it 1 day.
    delay = 0 if given.seq_number == 1 else given.seq_delay_details.delay_in_days
    step = Step(given.seq_number, delay)
    others = list(given.seq_variants)
    if given.email_body is not None:
        share = given.variant_distribution_percentage
        step.variants.append(Variant(MAIN_VARIANT, given.subject, given.email_body, share))
    else:
        # SmartLead's shape: no body of the step's own, variant "A" among the others.
        main = next((v for v in others if v.variant_label == MAIN_VARIANT), None)
        if main is None:
            raise BadRequest(
                "missing_email_body",
                f"Step {given.seq_number}: no email_body; give the step its own subject and "
                f"body, or a variant labelled {MAIN_VARIANT!r} in seq_variants.",
            )
        others.remove(main)
        share = main.variant_distribution_percentage
        step.variants.append(Variant(MAIN_VARIANT, main.subject, main.email_body, share))
    for variant in others:
        if variant.variant_label in step.labels:
            raise BadRequest(
                "invalid_variant",
                f"Step {step.seq_number}: variant label {variant.variant_label!r} is used "
                f"twice ({MAIN_VARIANT!r} is the step's own subject and body).",
            )
        share = variant.variant_distribution_percentage
        step.variants.append(
            Variant(variant.variant_label, variant.subject, variant.email_body, share)
        )
    if len(step.variants) > MAX_VARIANTS_PER_STEP:
        raise BadRequest(
            "too_many_variants",
            f"Step {step.seq_number} has {len(step.variants)} variants; at most "
            f"{MAX_VARIANTS_PER_STEP}, its own subject and body included.",
        )
    return _split(step, given.variant_distribution_type)


def _split(step: Step, kind: str | None) -> Step:
    """The step with its variants' shares: their percentages when it is split by them, none
    for an even split (SmartLead sends percentages with MANUAL_EQUAL too: they are unused)."""
    if kind != BY_PERCENTAGE or len(step.variants) == 1:
        step.variants = [replace(v, share=None) for v in step.variants]
        return step
    step.variants = [replace(v, share=v.share or 0) for v in step.variants]
    total = sum(v.share or 0 for v in step.variants)
    if total != 100:
        shares = ", ".join(f"{v.label} {v.share}" for v in step.variants)
        raise BadRequest(
            "invalid_distribution",
            f"Step {step.seq_number} is split {BY_PERCENTAGE}: its variants' "
            f"variant_distribution_percentage must add up to 100, not {total} ({shares}).",
        )
    return step


def _check_rules(steps: Sequence[Step]) -> None:
    size = 0
    for step in steps:
        for variant in step.variants:
            where = _where(step.seq_number, variant.label)
            if step.seq_number == 1 and not variant.subject.strip():
                raise BadRequest(
                    "missing_subject",
                    f"{where}: the first email needs a subject (an empty subject is for "
                    "follow-ups: a reply in the same thread).",
                )
            if not variant.email_body.strip():
                raise BadRequest("empty_body", f"{where}: email_body is empty.")
            size += len(variant.subject) + len(variant.email_body)
    if size > MAX_TEMPLATE_CHARS_PER_CAMPAIGN:
        raise BadRequest(
            "templates_too_large",
            f"The templates add up to {size} characters; at most "
            f"{MAX_TEMPLATE_CHARS_PER_CAMPAIGN} are accepted per campaign.",
        )


def _compile_all(steps: Sequence[Step]) -> None:
    problems: list[dict[str, Any]] = []
    variables: set[str] = set()
    for step in steps:
        for variant in step.variants:
            for name in ("subject", "email_body"):
                source = getattr(variant, name)
                try:
                    variables |= compile_template(source).variables
                except TemplateSyntaxError as err:
                    problems.append(_problem(step.seq_number, variant.label, name, err))
    if problems:
        first = problems[0]
        label = first["variant_label"] or MAIN_VARIANT
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise BadRequest(
            "template_syntax_error",
            f"{_where(first['seq_number'], label)}, {first['field']}: line {first['line']}, "
            f"column {first['column']}: {first['message'].rstrip('.')}{more}.",
            problems[:MAX_REPORTED_ERRORS],
        )
    if len(variables) > MAX_VARIABLES_PER_CAMPAIGN:
        raise BadRequest(
            "too_many_variables",
            f"The templates use {len(variables)} different variables; at most "
            f"{MAX_VARIABLES_PER_CAMPAIGN} are accepted per campaign.",
        )


async def save(
    conn: AsyncConnection, account_id: int, campaign_id: int, body: SequencesIn
) -> list[Step]:
    """Replace the campaign's steps. Every template is checked before anything is stored."""
    if not await repository.lock_campaign(conn, account_id, campaign_id):
        raise NotFound("Campaign")
    steps = _steps_of(body)
    _check_rules(steps)
    _compile_all(steps)
    rows = [
        {
            "seq_number": step.seq_number,
            "variant_label": variant.label,
            "subject": variant.subject,
            "email_body": variant.email_body,
            "delay_in_days": step.delay_in_days,
            "distribution_percentage": variant.share,
        }
        for step in steps
        for variant in step.variants
    ]
    now = utcnow()
    await repository.replace_steps(conn, account_id, campaign_id, rows, now)
    # Leads that waited for a template they could not fill are tried with the new ones.
    await campaign_leads.lift_holds(conn, account_id, TEMPLATE_HOLDS, now, campaign_id=campaign_id)
    return steps


async def get(conn: AsyncConnection, account_id: int, campaign_id: int) -> list[Step]:
    if not await repository.campaign_exists(conn, account_id, campaign_id):
        raise NotFound("Campaign")
    return group(await repository.steps(conn, account_id, campaign_id))


# --- preview --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedVariant:
    label: str
    subject: str | None
    email_body: str | None
    missing: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class RenderedStep:
    seq_number: int
    delay_in_days: int
    sent_variant: str
    variants: list[RenderedVariant]


def _render_one(
    source: str, subject: bool, values: dict[str, object], lead_id: int, seq: int, label: str
) -> Rendered:
    try:
        compiled: CompiledTemplate = compile_template(source)
    except TemplateSyntaxError as err:
        raise RenderError(f"the template has an error at {err}") from None
    renderer = render_subject if subject else render
    return renderer(compiled, values, lead_id, seq, label)


def _values(lead: Row) -> dict[str, object]:
    standard = {"email": lead.email, **{f: getattr(lead, f) for f in PROFILE_FIELDS}}
    return lead_values(standard, lead.custom_fields)


def _thread_subject(
    steps: Sequence[Step], values: dict[str, object], lead_id: int
) -> Rendered | RenderError | None:
    """Step 1's subject as this lead gets it: what an empty follow-up subject replies to."""
    if not steps or steps[0].seq_number != 1:
        return None
    variant = steps[0].variant_for(lead_id)
    try:
        return _render_one(variant.subject, True, values, lead_id, 1, variant.label)
    except RenderError as err:
        return err


def _reply_subject(thread: Callable[[], Rendered | RenderError | None]) -> Rendered:
    replied_to = thread()
    if isinstance(replied_to, RenderError):
        raise replied_to
    if replied_to is None or replied_to.text is None:
        return Rendered(None, replied_to.missing if replied_to else ())
    return Rendered(THREAD_PREFIX + replied_to.text)


def _render_variant(
    seq: int,
    variant: Variant,
    values: dict[str, object],
    lead_id: int,
    thread: Callable[[], Rendered | RenderError | None],
) -> RenderedVariant:
    label = variant.label
    try:
        subject = None
        if variant.subject.strip() or seq == 1:
            subject = _render_one(variant.subject, True, values, lead_id, seq, label)
        # A follow-up whose subject renders to nothing ({% if x %}...{% endif %} for a lead
        # without x) is a reply in the thread, as an empty one is: never a blank subject.
        if seq > 1 and (subject is None or (subject.text is not None and not subject.text.strip())):
            subject = _reply_subject(thread)
        body = _render_one(variant.email_body, False, values, lead_id, seq, label)
    except RenderError as err:
        return RenderedVariant(label, None, None, (), str(err))
    missing = tuple(sorted(set(subject.missing) | set(body.missing)))
    if missing:
        return RenderedVariant(label, None, None, missing)
    # Step 1's subject, or any body, that renders to nothing for this lead ({% if x %}...
    # {% endif %} around all of it, for a lead without x) is not sent blank: the lead is held
    # as for any template that cannot be rendered for it, until its profile or the sequence
    # changes.
    for part, text in (("subject", subject.text), ("body", body.text)):
        if text is not None and not text.strip():
            return RenderedVariant(label, None, None, (), f"the {part} renders to nothing")
    return RenderedVariant(label, subject.text, body.text)


def render_steps(steps: Sequence[Step], lead: Row) -> list[RenderedStep]:
    """Every step and variant for one lead, as the sender would write them. Pure."""
    values = _values(lead)
    thread = _thread_subject(steps, values, lead.id)
    answer = []
    for step in steps:
        rendered = [
            _render_variant(step.seq_number, variant, values, lead.id, lambda: thread)
            for variant in step.variants
        ]
        sent = step.variant_for(lead.id).label
        answer.append(RenderedStep(step.seq_number, step.delay_in_days, sent, rendered))
    return answer


def render_for_send(steps: Sequence[Step], lead: Row, seq_number: int) -> RenderedVariant | None:
    """The one variant of a step this lead is sent, exactly as the preview shows it; None when
    the campaign has no such step. Pure."""
    step = next((s for s in steps if s.seq_number == seq_number), None)
    if step is None:
        return None
    values = _values(lead)
    variant = step.variant_for(lead.id)
    return _render_variant(
        seq_number, variant, values, lead.id, lambda: _thread_subject(steps, values, lead.id)
    )


async def preview(
    conn: AsyncConnection, account_id: int, campaign_id: int, lead_id: int
) -> list[RenderedStep]:
    if not await repository.campaign_exists(conn, account_id, campaign_id):
        raise NotFound("Campaign")
    lead = await repository.campaign_lead(conn, account_id, campaign_id, lead_id)
    if lead is None:
        raise NotFound("Lead in this campaign")
    steps = group(await repository.steps(conn, account_id, campaign_id))
    return render_steps(steps, lead)


# --- the check ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariableReport:
    name: str
    required: bool
    leads_missing: int
    sample_lead_ids: list[int]


@dataclass(frozen=True)
class CheckReport:
    total_leads: int
    errors: list[dict[str, Any]]
    variables: list[VariableReport]

    @property
    def ok(self) -> bool:
        return not self.errors and not any(v.leads_missing for v in self.variables)


async def check(
    conn: AsyncConnection, account_id: int, campaign_id: int, still_to_send: bool = False
) -> CheckReport:
    """Template errors, the variables used, and per variable the leads without a value (of
    the leads still to be sent to, if ``still_to_send``).

    A variable is counted when some template writes it out without a ``default`` filter and
    not only inside ``{% if it %}``; a variable used only in a spintax option or under another
    condition is counted for every lead (the preview and the sender decide exactly)."""
    if not await repository.campaign_exists(conn, account_id, campaign_id):
        raise NotFound("Campaign")
    steps = group(await repository.steps(conn, account_id, campaign_id))
    errors: list[dict[str, Any]] = []
    used: set[str] = set()
    required: set[str] = set()
    for step in steps:
        for variant in step.variants:
            for name in ("subject", "email_body"):
                try:
                    compiled = compile_template(getattr(variant, name))
                except TemplateSyntaxError as err:
                    errors.append(_problem(step.seq_number, variant.label, name, err))
                    continue
                used |= compiled.variables
                required |= compiled.required
    counted = sorted(required - {"email"})  # a lead always has its address
    total, counts = await repository.missing_counts(
        conn, account_id, campaign_id, counted, still_to_send
    )
    missing = {name: count for name, count in zip(counted, counts, strict=True)}
    sampled = [name for name in counted if missing[name]]
    samples = dict(
        zip(
            sampled,
            await repository.missing_samples(
                conn, account_id, campaign_id, sampled, MAX_SAMPLES, still_to_send
            ),
            strict=True,
        )
    )
    variables = [
        VariableReport(
            name=name,
            required=name in required,
            leads_missing=missing.get(name, 0),
            sample_lead_ids=samples.get(name, []),
        )
        for name in sorted(used)
    ]
    return CheckReport(total_leads=total, errors=errors, variables=variables)
