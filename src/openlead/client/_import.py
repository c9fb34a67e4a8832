"""``import_leads``: any number of leads, in batches, retried, counted exactly once.

The input is read lazily, ``batch_size`` leads at a time, so a generator of a million leads
is imported in constant memory. Each batch is one request, sent again (with the retry
policy's backoff) after a ``429``, a ``5xx``, a ``409`` race or a network failure.

**A lost answer is not counted twice.** When an attempt fails in a way that leaves its fate
unknown (the connection broke after the request went out, or a proxy's ``502``/``504``), the
server may have committed it. The retry then reports the leads that attempt added as
``Already exists in this campaign``. To tell them from leads that really were in the campaign
before, the import keeps the campaign's lead count: it reads it once before the first batch
(``GET /campaigns/{id}/leads?limit=1`` answers ``total_leads``) and adds what every batch
added. After such a retry it reads the count again: the difference from what it expected is
the number *d* of leads the lost attempt added.

- *d* = 0: the lost attempt stored nothing; every ``Already exists`` is a real skip.
- *d* = the number *k* of ``Already exists`` answers: all of them were the lost attempt's.
- 0 < *d* < *k*: some were there before. The import looks each of the *k* up (the lead's
  ``LEAD_ADDED`` event in this campaign) and takes the *d* added last as the lost attempt's.
- *d* outside [0, *k*]: something else changed the campaign meanwhile (another import, a
  removal), so the count proves nothing; the *k* leads are counted as added and reported in
  ``ImportSummary.unverified``.

The count is exact while this import is the campaign's only writer. Cost: one extra request
per import, one more per retried batch whose answer was lost, and two per lead only in the
mixed case.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Generator, Mapping
from typing import Any

import orjson
from pydantic import BaseModel

from openlead.client import _operations as ops
from openlead.client._errors import OpenleadError, error_body
from openlead.client._models import (
    INVALID_FIELD_VALUE,
    Activity,
    CampaignLeadPage,
    ImportResult,
    ImportSettings,
    ImportSummary,
    Lead,
    SkippedLead,
)
from openlead.client._protocol import (
    ApiRequest,
    Attempts,
    Instruction,
    Pull,
    RetryPolicy,
    check,
    parse,
    send,
)

MAX_BATCH = 400
ALREADY_IN_CAMPAIGN = "Already exists in this campaign"
LEAD_ADDED = "LEAD_ADDED"
SETTING_NAMES = frozenset(ImportSettings.model_fields)

ProgressCallback = Callable[[ImportSummary], Any]
SkippedCallback = Callable[[SkippedLead], Any]


def as_lead(item: Any) -> dict[str, Any]:
    """A lead as the JSON object to send: dicts as they are (subclasses included), models as
    their set fields, other mappings copied."""
    if isinstance(item, dict):
        return item
    if isinstance(item, BaseModel):
        return item.model_dump(mode="json", exclude_none=True)
    if isinstance(item, Mapping):
        return dict(item)
    return item  # the server will say what is wrong with it


def check_settings(settings: dict[str, Any] | None) -> None:
    unknown = sorted(set(settings or {}) - SETTING_NAMES)
    if unknown:
        raise ValueError(
            f"Unknown import setting(s) {', '.join(unknown)}; "
            f"the settings are {', '.join(sorted(SETTING_NAMES))}."
        )


def match_skips(entry_emails: list[Any], sent_emails: list[Any]) -> list[int]:
    """The position in the request of each skipped-lead entry.

    The server lists skipped leads in request order with the address exactly as sent. When
    an address string occurs once, that is its position. When it occurs *m* times, either
    all *m* were skipped, or only the first was processed further (added) and the later ones
    are ``Duplicate in this request``: a lead added means every later copy of the same
    string is a duplicate. So *k* = *m* - 1 entries take the later occurrences.
    """
    occurrences: dict[Any, list[int]] = {}
    for position, email in enumerate(sent_emails):
        occurrences.setdefault(email, []).append(position)
    wanted = Counter(entry_emails)
    queues: dict[Any, list[int]] = {}
    for email, k in wanted.items():
        found = occurrences.get(email, [])
        queues[email] = (
            found[len(found) - k :] if k <= len(found) else found + [-1] * (k - len(found))
        )
    cursor: Counter[Any] = Counter()
    positions = []
    for email in entry_emails:
        positions.append(queues[email][cursor[email]])
        cursor[email] += 1
    return positions


def invalid_leads(content: bytes, sent: int) -> dict[int, str] | None:
    """For a ``400 invalid_request`` that faults values of particular leads: position ->
    what is wrong. None when the refusal is about something else (an unknown field, the
    settings, the body): that is a mistake to raise, not a lead to skip."""
    error = error_body(content)
    if not error or error.get("code") != "invalid_request":
        return None
    details = error.get("details")
    if not isinstance(details, list) or not details:
        return None
    found: dict[int, str] = {}
    for detail in details:
        if not isinstance(detail, dict) or detail.get("type") == "extra_forbidden":
            return None
        parts = str(detail.get("loc", "")).split(".")
        if len(parts) < 2 or parts[0] != "lead_list" or not parts[1].isdigit():
            return None
        position = int(parts[1])
        if position >= sent:
            return None
        where = ".".join(parts[2:])
        message = str(detail.get("msg", "invalid value"))
        text = f"{where}: {message}" if where else message
        found[position] = f"{found[position]}; {text}" if position in found else text
    return found


class _Import:
    def __init__(
        self,
        policy: RetryPolicy,
        campaign_id: int,
        source: Any,
        settings: dict[str, Any] | None,
        batch_size: int,
        on_progress: ProgressCallback | None,
        on_skipped: SkippedCallback | None,
        keep_skipped: int | None,
        skip_invalid: bool,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        check_settings(settings)
        self.policy = policy
        self.campaign_id = int(campaign_id)
        self.path = f"/campaigns/{self.campaign_id}/leads"
        self.source = source
        self.settings = settings
        self.batch_size = batch_size
        self.on_progress = on_progress
        self.on_skipped = on_skipped
        self.keep_skipped = keep_skipped
        self.skip_invalid = skip_invalid
        self.summary = ImportSummary(campaign_id=self.campaign_id)
        self.expected_total = 0  # the campaign's lead count as this import believes it

    # ----------------------------------------------------------------------- the run

    def run(self) -> Generator[Instruction, Any, ImportSummary]:
        started = time.perf_counter()
        try:
            self.expected_total = yield from self._count()
            while True:
                items = yield Pull(self.source, self.batch_size)
                if not items:
                    break
                start = self.summary.total
                self.summary.total += len(items)
                yield from self._batch(items, start)
                self.summary.batches += 1
                self.summary.elapsed = time.perf_counter() - started
                if self.on_progress is not None:
                    self.on_progress(self.summary)
        except Exception as exc:
            self.summary.elapsed = time.perf_counter() - started
            if isinstance(exc, OpenleadError):
                exc.summary = self.summary
            else:  # an error from the input: say how far the import got, where possible
                with contextlib.suppress(AttributeError):
                    exc.summary = self.summary  # type: ignore[attr-defined]
            raise
        self.summary.elapsed = time.perf_counter() - started
        return self.summary

    def _count(self) -> Generator[Instruction, Any, int]:
        page: CampaignLeadPage = yield from ops.list_campaign_leads(
            self.policy, self.campaign_id, limit=1
        )
        return page.total_leads

    # ----------------------------------------------------------------------- one batch

    def _body(self, leads: list[Any]) -> bytes:
        body: dict[str, Any] = {"lead_list": leads}
        if self.settings is not None:
            body["settings"] = self.settings
        return orjson.dumps(body)

    def _batch(self, items: list[Any], start: int) -> Generator[Instruction, Any, None]:
        leads = [as_lead(item) for item in items]
        groups = [list(range(len(leads)))]  # positions still to send, in order
        while groups:
            positions = groups.pop(0)
            attempts = Attempts()
            request = ApiRequest(
                "POST",
                self.path,
                content=self._body([leads[p] for p in positions]),
                idempotent=True,  # see the module's docstring: a repeat is counted right
            )
            response = yield from send(request, self.policy, attempts)
            self.summary.requests += attempts.count
            self.summary.retries += attempts.count - 1
            if response.status == 413 and len(positions) > 1:
                half = len(positions) // 2  # too big a body: send it in two halves
                groups[:0] = [positions[:half], positions[half:]]
                continue
            if response.status == 400 and self.skip_invalid:
                bad = invalid_leads(response.content, len(positions))
                if bad:
                    for j in sorted(bad):
                        p = positions[j]
                        email = leads[p].get("email") if isinstance(leads[p], dict) else None
                        self._skip(start + p, email, INVALID_FIELD_VALUE, bad[j], items[p])
                    rest = [p for j, p in enumerate(positions) if j not in bad]
                    if rest:
                        groups.insert(0, rest)
                    continue
            result = parse(check(response, request), ImportResult)
            yield from self._account(result, items, leads, positions, start, attempts)

    def _account(
        self,
        result: ImportResult,
        items: list[Any],
        leads: list[Any],
        positions: list[int],
        start: int,
        attempts: Attempts,
    ) -> Generator[Instruction, Any, None]:
        entries = result.skipped_leads
        sent_emails = [
            leads[p].get("email") if isinstance(leads[p], dict) else None for p in positions
        ]
        where = match_skips([e.email for e in entries], sent_emails)
        ours: set[int] = set()
        if attempts.ambiguous:
            already = [i for i, e in enumerate(entries) if e.reason == ALREADY_IN_CAMPAIGN]
            if already:
                ours = yield from self._reconcile(result, entries, already)
        added = result.added_count + len(ours)
        self.expected_total += added
        self.summary.added += added
        for i, entry in enumerate(entries):
            if i in ours:
                continue
            j = where[i]
            if j < 0:  # not found in the request: keep the count right all the same
                self._skip(-1, entry.email, entry.reason, None, None)
            else:
                p = positions[j]
                self._skip(start + p, entry.email, entry.reason, None, items[p])

    def _reconcile(
        self, result: ImportResult, entries: list[Any], already: list[int]
    ) -> Generator[Instruction, Any, set[int]]:
        """Which of the ``Already exists`` answers of a retried batch the lost attempt added
        (see the module's docstring)."""
        self.summary.reconciled_batches += 1
        total = yield from self._count()
        lost_added = total - self.expected_total - result.added_count
        k = len(already)
        if lost_added == 0:
            return set()
        if lost_added == k:
            return set(already)
        if lost_added < 0 or lost_added > k:
            # Another writer changed the campaign meanwhile: the count proves nothing.
            self.summary.unverified += k
            return set(already)
        # Some were there before: the lost attempt's are the ones added last.
        added_at: dict[int, str] = {}
        for i in already:
            lead: Lead = yield from ops.find_lead(self.policy, entries[i].email)
            activity: Activity = yield from ops.get_lead_activity(
                self.policy, self.campaign_id, lead.id
            )
            stamps = [e.timestamp for e in activity.events if e.type == LEAD_ADDED]
            added_at[i] = max(stamps) if stamps else ""
        ranked = sorted(already, key=lambda i: added_at[i], reverse=True)
        ours = set(ranked[:lost_added])
        boundary = added_at[ranked[lost_added - 1]]
        if added_at[ranked[lost_added]] == boundary:  # a tie across the line: unprovable
            self.summary.unverified += sum(1 for i in already if added_at[i] == boundary)
        return ours

    def _skip(self, index: int, email: Any, reason: str, detail: str | None, item: Any) -> None:
        summary = self.summary
        summary.skipped += 1
        summary.skipped_by_reason[reason] += 1
        skipped = SkippedLead(index=index, email=email, reason=reason, detail=detail, lead=item)
        if self.keep_skipped is None or len(summary.skipped_leads) < self.keep_skipped:
            summary.skipped_leads.append(skipped)
        else:
            summary.skipped_leads_omitted += 1
        if self.on_skipped is not None:
            self.on_skipped(skipped)


def import_leads(
    policy: RetryPolicy,
    campaign_id: int,
    source: Any,
    *,
    settings: Any = None,
    batch_size: int = MAX_BATCH,
    on_progress: ProgressCallback | None = None,
    on_skipped: SkippedCallback | None = None,
    keep_skipped: int | None = 10_000,
    skip_invalid: bool = False,
) -> Generator[Instruction, Any, ImportSummary]:
    job = _Import(
        policy,
        campaign_id,
        source,
        ops.settings_body(settings),
        batch_size,
        on_progress,
        on_skipped,
        keep_skipped,
        skip_invalid,
    )
    return job.run()


# Referenced by the route-coverage test: import_leads sends to the same endpoint as add_leads.
ops.ROUTES["import_leads"] = ops.ROUTES["add_leads"]
__all__ = ["import_leads", "match_skips"]
