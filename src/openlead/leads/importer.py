"""The import planner (pure: no I/O): a request's addresses in, adds and skips out.

Checks run in the contract's order and the first that applies is the lead's one reason.
The first two need nothing but the addresses as sent; the other four need what the database
knows, which the service looks up once for the whole batch and hands over as ``Known``. Only
addresses are planned on: an add is a position in the request, whose lead the writer reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from openlead.addresses import normalise_email
from openlead.leads.schemas import ImportResult, ImportSettings, SkippedLead


class SkipReason(StrEnum):
    INVALID_EMAIL = "Invalid email"
    DUPLICATE_IN_REQUEST = "Duplicate in this request"
    ALREADY_IN_CAMPAIGN = "Already exists in this campaign"
    BLOCKED = "On global block list"
    UNSUBSCRIBED = "Previously unsubscribed"
    IN_OTHER_CAMPAIGN = "Exists in another campaign"


@dataclass(frozen=True, slots=True)
class Candidate:
    position: int
    email: str
    given_email: str


@dataclass(frozen=True, slots=True)
class Skip:
    position: int
    given_email: str | None
    reason: SkipReason


@dataclass
class Screened:
    candidates: list[Candidate] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)

    @property
    def emails(self) -> list[str]:
        return [c.email for c in self.candidates]


@dataclass(frozen=True)
class Known:
    """What the database says about the candidate addresses, before this import."""

    in_campaign: frozenset[str] = frozenset()
    in_other_campaign: frozenset[str] = frozenset()
    blocked: frozenset[str] = frozenset()
    unsubscribed: frozenset[str] = frozenset()


@dataclass
class ImportPlan:
    total: int
    adds: list[Candidate]
    skips: list[Skip]

    def result(self) -> ImportResult:
        counts = Counter(skip.reason for skip in self.skips)
        return ImportResult(
            added_count=len(self.adds),
            skipped_count=len(self.skips),
            skipped_leads=[
                SkippedLead(email=skip.given_email, reason=skip.reason.value) for skip in self.skips
            ],
            upload_count=self.total,
            total_leads=self.total,
            already_added_to_campaign=counts[SkipReason.ALREADY_IN_CAMPAIGN],
            duplicate_count=counts[SkipReason.DUPLICATE_IN_REQUEST],
            invalid_email_count=counts[SkipReason.INVALID_EMAIL],
            invalid_emails=[
                s.given_email for s in self.skips if s.reason is SkipReason.INVALID_EMAIL
            ],
            unsubscribed_leads=counts[SkipReason.UNSUBSCRIBED],
            block_count=counts[SkipReason.BLOCKED],
        )


def screen(addresses: Sequence[str | None]) -> Screened:
    """Checks 1 and 2, over each lead's address as sent: valid, not seen earlier in it."""
    screened = Screened()
    seen: set[str] = set()
    for position, given in enumerate(addresses):
        email = normalise_email(given)
        if email is None or given is None:
            screened.skips.append(Skip(position, given, SkipReason.INVALID_EMAIL))
        elif email in seen:
            screened.skips.append(Skip(position, given, SkipReason.DUPLICATE_IN_REQUEST))
        else:
            seen.add(email)
            screened.candidates.append(Candidate(position, email, given))
    return screened


def probe_forms(addresses: Sequence[str | None]) -> list[str]:
    """Each address trimmed and lower-cased, once: its stored form when it is a plain ASCII
    address, which most are, found without the checks ``screen`` makes. Addresses that could
    not be stored in this form (other characters than printable ASCII) are left out."""
    forms = (a.strip().lower() for a in addresses if a)
    return list(dict.fromkeys(f for f in forms if f.isascii() and f.isprintable()))


def _reason(email: str, known: Known, settings: ImportSettings) -> SkipReason | None:
    if email in known.in_campaign:
        return SkipReason.ALREADY_IN_CAMPAIGN
    if email in known.blocked and not settings.ignore_global_block_list:
        return SkipReason.BLOCKED
    if email in known.unsubscribed and not settings.ignore_unsubscribe_list:
        return SkipReason.UNSUBSCRIBED
    if email in known.in_other_campaign and not settings.ignore_duplicate_leads_in_other_campaign:
        return SkipReason.IN_OTHER_CAMPAIGN
    return None


def plan(screened: Screened, known: Known, settings: ImportSettings, total: int) -> ImportPlan:
    """Checks 3 to 6 over the screened candidates; skips come back in request order."""
    adds: list[Candidate] = []
    skips = list(screened.skips)
    for candidate in screened.candidates:
        reason = _reason(candidate.email, known, settings)
        if reason is None:
            adds.append(candidate)
        else:
            skips.append(Skip(candidate.position, candidate.given_email, reason))
    skips.sort(key=lambda skip: skip.position)
    return ImportPlan(total=total, adds=adds, skips=skips)
