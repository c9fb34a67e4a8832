"""The pure parts of reading replies: what an arrived message's headers say, and how an
inbox is reached."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest

from openlead.replies.answers import is_report, read_answer, read_report
from openlead.replies.imap import imap_date
from openlead.replies.reader import inbox_config
from openlead.vault import Vault
from tests.imap_server import delivery_report, plain_bounce

ARRIVED = datetime(2031, 3, 3, 12, 0, tzinfo=UTC)


def _answer(*lines: str):  # type: ignore[no-untyped-def]
    return read_answer(("\r\n".join(lines) + "\r\n\r\n").encode(), ARRIVED)


def test_the_nearest_email_named_comes_first():
    answer = _answer(
        "From: Alex Doe <Alex@AcmeCorp.com>",
        "Message-ID: <r@acmecorp.com>",
        "In-Reply-To: <two@sender.example>",
        "References: <one@sender.example>\r\n <two@sender.example>",
        "Subject: Re: Quick\r\n question",
    )
    assert answer.answers == ("<two@sender.example>", "<one@sender.example>")
    assert answer.sender == "alex@acmecorp.com" and answer.message_id == "<r@acmecorp.com>"
    assert answer.subject == "Re: Quick question"
    assert not answer.automatic and not answer.report and answer.received_at == ARRIVED


@pytest.mark.parametrize(
    ("header", "automatic"),
    [
        ("Auto-Submitted: auto-replied", True),
        ("Auto-Submitted: auto-generated", True),
        ("Auto-Submitted: no", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: Out of office", True),
        ("Precedence: bulk", True),
        ("Precedence: auto_reply", True),
        ("Precedence: first-class", False),
    ],
)
def test_automatic_answers_are_told_apart(header, automatic):
    assert _answer("From: a@b.example", header).automatic is automatic


@pytest.mark.parametrize(
    "lines",
    [
        ("From: MAILER-DAEMON@mx.example", "Subject: Undelivered"),
        ("From: postmaster@mx.example",),
        ("From: a@b.example", "Content-Type: multipart/report; report-type=delivery-status"),
    ],
)
def test_delivery_reports_are_not_replies(lines):
    assert _answer(*lines).report is True


def test_a_message_without_a_usable_sender_has_none():
    assert _answer("From: undisclosed-recipients:;", "Subject: x").sender is None
    assert _answer("Subject: x").sender is None


def test_imap_dates_are_english_whatever_the_locale():
    assert imap_date(date(2026, 3, 5)) == "5-Mar-2026"
    assert imap_date(date(2026, 12, 31)) == "31-Dec-2026"


def _row(**fields):  # type: ignore[no-untyped-def]
    base = {
        "imap_host": "imap.example.com",
        "imap_port": None,
        "imap_security": None,
        "imap_user_name": None,
        "imap_password_encrypted": None,
        "user_name": "sam@sender.example",
        "password_encrypted": "",
    }
    return SimpleNamespace(**{**base, **fields})


def test_an_inbox_is_reached_over_tls_unless_said_otherwise():
    vault = Vault(b"k" * 32)
    smtp_password = vault.encrypt("smtp-pw")
    config = inbox_config(_row(password_encrypted=smtp_password), vault, 5)
    assert (config.port, config.security) == (993, "SSL")
    assert (config.user_name, config.password) == ("sam@sender.example", "smtp-pw")
    assert inbox_config(_row(imap_port=143), vault, 5).security == "STARTTLS"
    assert inbox_config(_row(imap_port=993), vault, 5).security == "SSL"
    assert inbox_config(_row(imap_security="STARTTLS"), vault, 5).port == 143
    own = _row(imap_user_name="inbox", imap_password_encrypted=vault.encrypt("imap-pw"))
    config = inbox_config(own, vault, 5)
    assert (config.user_name, config.password) == ("inbox", "imap-pw")
    assert "imap-pw" not in repr(config)


@pytest.mark.parametrize("quoted", ["text/rfc822-headers", "message/rfc822"])
def test_a_delivery_report_names_the_email_and_the_failed_recipient(quoted):
    report = read_report(
        delivery_report("Alex@AcmeCorp.com", "<orig@sender.example>", quoted=quoted)
    )
    assert report.original_message_id == "<orig@sender.example>"
    (failure,) = report.failures
    assert (failure.recipient, failure.status) == ("alex@acmecorp.com", "5.1.1")
    assert failure.diagnostic.startswith("550 5.1.1")


@pytest.mark.parametrize(
    ("action", "status"), [("delayed", "4.4.1"), ("failed", "4.2.2"), ("relayed", "2.0.0")]
)
def test_only_a_permanent_failure_is_a_bounce(action, status):
    content = delivery_report("a@b.example", "<o@x.example>", action=action, status=status)
    assert read_report(content).failures == ()


def test_a_report_cut_short_still_says_who_failed():
    content = delivery_report("a@b.example", "<o@x.example>")
    cut = content[: content.index(b"Content-Type: text/rfc822-headers")]
    report = read_report(cut)
    assert report.original_message_id is None
    assert [f.recipient for f in report.failures] == ["a@b.example"]


def test_a_message_that_is_no_report_names_nobody():
    assert read_report(b"From: a@b.example\r\nSubject: hi\r\n\r\nHello\r\n").failures == ()


def test_a_plain_text_bounce_names_the_email_and_the_failed_recipient():
    content = plain_bounce("Alex@AcmeCorp.com", "<orig@sender.example>")
    assert is_report(content.split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    report = read_report(content)
    assert report.original_message_id == "<orig@sender.example>"
    (failure,) = report.failures
    assert (failure.recipient, failure.status) == ("alex@acmecorp.com", "5.1.1")
    assert failure.diagnostic == (
        "550 5.1.1 <Alex@AcmeCorp.com>: Recipient address rejected: User unknown"
    )


@pytest.mark.parametrize(
    ("reply", "status", "diagnostic"),
    [
        ("550 User unknown", "5.0.0", "550 User unknown"),
        ("550-5.7.1 Relaying denied", "5.7.1", "550-5.7.1 Relaying denied"),
        (None, "5.0.0", ""),  # "Unrouteable address": no server answered
    ],
)
def test_a_plain_text_bounce_without_an_enhanced_status(reply, status, diagnostic):
    (failure,) = read_report(plain_bounce("a@b.example", None, reply)).failures
    assert (failure.status, failure.diagnostic) == (status, diagnostic)


@pytest.mark.parametrize("reply", ["451 4.4.1 Connection timed out", "421 Try again later"])
def test_a_plain_text_bounce_that_ran_out_of_retries_is_no_verdict_on_the_address(reply):
    assert read_report(plain_bounce("a@b.example", "<o@x.example>", reply)).failures == ()


def test_a_plain_text_bounce_lists_each_failed_recipient_once():
    listed = b"X-Failed-Recipients: a@b.example, C@d.example,\r\n A@B.example"
    content = plain_bounce("a@b.example", None).replace(b"X-Failed-Recipients: a@b.example", listed)
    recipients = [f.recipient for f in read_report(content).failures]
    assert recipients == ["a@b.example", "c@d.example"]


def test_a_structured_report_is_read_by_its_status_part_alone():
    """A report with a delivery-status part that says "delayed" is no bounce, whatever its
    X-Failed-Recipients says."""
    content = delivery_report("a@b.example", "<o@x.example>", action="delayed", status="4.4.1")
    content = content.replace(b"To: sam@", b"X-Failed-Recipients: a@b.example\r\nTo: sam@", 1)
    assert b"X-Failed-Recipients" in content
    assert read_report(content).failures == ()


# Unknown; not a text codec; a codec that refuses "replace"; a name Python cannot look up.
@pytest.mark.parametrize("charset", [b"x-no-such-charset", b"base64", b"idna", b"utf-8\x00"])
def test_a_plain_text_bounce_in_a_charset_that_cannot_decode_it_is_still_read(charset):
    content = plain_bounce("a@b.example", None).replace(b"us-ascii", charset)
    assert [f.recipient for f in read_report(content).failures] == ["a@b.example"]
