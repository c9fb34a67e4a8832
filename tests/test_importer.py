"""The pure import planner, without a database."""

from __future__ import annotations

from openlead.leads.importer import Known, SkipReason, plan, probe_forms, screen
from openlead.leads.schemas import ImportSettings


def _leads(*emails: str | None) -> list[str | None]:
    return list(emails)


def test_screen_invalid_then_duplicates_in_order():
    screened = screen(_leads("a@x.com", None, "bad", "A@X.com ", "b@x.com"))
    assert screened.emails == ["a@x.com", "b@x.com"]
    assert [(s.position, s.reason) for s in screened.skips] == [
        (1, SkipReason.INVALID_EMAIL),
        (2, SkipReason.INVALID_EMAIL),
        (3, SkipReason.DUPLICATE_IN_REQUEST),
    ]


def test_invalid_duplicate_counts_as_invalid_not_duplicate():
    screened = screen(_leads("bad", "bad"))
    assert [s.reason for s in screened.skips] == [SkipReason.INVALID_EMAIL] * 2


def test_plan_order_and_settings():
    leads = _leads("here@x.com", "blocked@x.com", "unsub@x.com", "other@x.com", "new@x.com")
    known = Known(
        in_campaign=frozenset({"here@x.com"}),
        in_other_campaign=frozenset({"here@x.com", "blocked@x.com", "unsub@x.com", "other@x.com"}),
        blocked=frozenset({"here@x.com", "blocked@x.com", "unsub@x.com"}),
        unsubscribed=frozenset({"here@x.com", "unsub@x.com"}),
    )
    strict = plan(screen(leads), known, ImportSettings(), total=5)
    assert [s.reason for s in strict.skips] == [
        SkipReason.ALREADY_IN_CAMPAIGN,
        SkipReason.BLOCKED,
        SkipReason.BLOCKED,
        SkipReason.IN_OTHER_CAMPAIGN,
    ]
    assert [a.email for a in strict.adds] == ["new@x.com"]

    lenient = plan(
        screen(leads),
        known,
        ImportSettings(
            ignore_global_block_list=True,
            ignore_unsubscribe_list=True,
            ignore_duplicate_leads_in_other_campaign=True,
        ),
        total=5,
    )
    assert [s.reason for s in lenient.skips] == [SkipReason.ALREADY_IN_CAMPAIGN]
    assert len(lenient.adds) == 4


def test_result_counters():
    result = plan(
        screen(_leads("a@x.com", "a@x.com", "bad")), Known(), ImportSettings(), 3
    ).result()
    assert result.added_count == 1
    assert result.skipped_count == 2
    assert result.duplicate_count == 1
    assert result.invalid_emails == ["bad"]
    assert [s.reason for s in result.skipped_leads] == [
        "Duplicate in this request",
        "Invalid email",
    ]


def test_probe_forms_are_trimmed_lower_cased_printable_ascii_once() -> None:
    addresses = [
        " Alex@Acme.com",
        "alex@acme.com\t",
        None,
        "",
        "a@müller.de",
        "nul\x00@x.com",
        "bell\x07@x.com",
        "plain@x.com",
    ]
    assert probe_forms(addresses) == ["alex@acme.com", "plain@x.com"]


def test_every_fast_path_address_is_found_by_its_probe_form() -> None:
    """The lookups start on the probe forms; an address screened to another form costs a
    second lookup, so the common shapes must not."""
    addresses = [" Alex.B+tag@Sub.Acme.co.uk ", "o'neil@example.org", "X_Y@EXAMPLE.IO"]
    assert set(probe_forms(addresses)) == set(screen(addresses).emails)
