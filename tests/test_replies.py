"""Replies: a lead's answer read from the mailbox's inbox (a real IMAP server, pymap) on both
backends, what it records and what it stops; automatic answers, delivery reports, strangers,
another account's emails, a failing login, and reading each message once."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from openlead.config import Settings
from openlead.db.engine import create_database
from openlead.replies.reader import ReplyReader
from tests.imap_server import ImapServer, delivery_report, message, plain_bounce
from tests.sending_support import (
    campaign,
    events,
    later,
    lead_id,
    leads,
    mailbox,
    membership,
    statuses,
    tick,
    utc,
    vault_of,
)
from tests.smtp_sink import Received, SmtpSink
from tests.support import Api, Server, create_account, free_port, serving

MONDAY = utc(2031, 3, 3, 12, 0)
LEAD = "lead0@example.com"


@pytest.fixture
def imap(tmp_path) -> Iterator[ImapServer]:  # type: ignore[no-untyped-def]
    server = ImapServer(tmp_path / "pymap.log").start()
    yield server
    server.stop()


def read_replies(server: Server, now: datetime, readers: int = 1) -> int:
    """One pass of ``readers`` reply readers at once (each on its own engine, as separate
    workers are) at ``now`` against the server's database; the replies they recorded."""

    async def run() -> int:
        settings = Settings(
            database_url=server.database_url, reply_check_seconds=60, smtp_timeout_seconds=10
        )
        databases = [create_database(server.database_url, pool_size=2) for _ in range(readers)]
        try:
            passes = [
                ReplyReader(database, vault_of(server), settings, clock=lambda: now).tick()
                for database in databases
            ]
            return sum(await asyncio.gather(*passes))
        finally:
            for database in databases:
                await database.dispose()

    return asyncio.run(run())


def _first_step(api: Api, sink: SmtpSink, imap: ImapServer, **settings) -> tuple[int, Received]:  # type: ignore[no-untyped-def]
    box = mailbox(api, sink, **imap.inbox_settings())
    campaign_id = campaign(api, [box], leads(1), settings=settings or None)
    assert tick(api.server, MONDAY) == 1
    (sent,) = sink.received()
    return campaign_id, sent


def _events_of(api: Api, campaign_id: int, kind: str) -> list[dict]:
    timeline = events(api, campaign_id, lead_id(api, LEAD))
    return [e for e in timeline if e["type"] == kind]


def _replied(api: Api, campaign_id: int) -> list[dict]:
    return _events_of(api, campaign_id, "EMAIL_REPLIED")


def _reply_to(sent: Received, **headers: str) -> bytes:
    return message(LEAD, in_reply_to=sent.message_id, references=[sent.message_id], **headers)


def test_a_reply_is_recorded_and_stops_the_sequence(quiet, sink, imap):
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(_reply_to(sent))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    (replied,) = _replied(quiet, campaign_id)
    assert replied["seq_number"] == 1 and replied["automatic"] is False
    assert replied["from"] == LEAD and replied["subject"] == "Re: Quick question"
    stats = quiet.get(f"/campaigns/{campaign_id}/statistics").json()
    assert stats["by_event"]["EMAIL_REPLIED"] == 1
    # Step 2 is due two days later; the reply stopped it. The status is left as it was.
    assert tick(quiet.server, later(MONDAY, days=3)) == 0
    assert len(sink.received()) == 1
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}


def test_each_message_is_read_once(quiet, sink, imap):
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(_reply_to(sent))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    assert read_replies(quiet.server, later(MONDAY, minutes=10)) == 0
    imap.deliver(_reply_to(sent, body="And one more thing."))
    assert read_replies(quiet.server, later(MONDAY, minutes=15)) == 1
    assert len(_replied(quiet, campaign_id)) == 2


def test_readers_side_by_side_record_a_reply_once(quiet, sink, imap):
    """Three readers at once, as three workers would (on SQLite they take turns with the
    one writer; on PostgreSQL the claim and the cursor keep them apart)."""
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(_reply_to(sent))
    imap.deliver(delivery_report("nobody@example.com", sent.message_id))
    assert read_replies(quiet.server, later(MONDAY, minutes=5), readers=3) == 1
    assert len(_replied(quiet, campaign_id)) == 1


def test_an_inbox_read_recently_waits_for_its_turn(quiet, sink, imap):
    _, sent = _first_step(quiet, sink, imap)
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    imap.deliver(_reply_to(sent))
    assert read_replies(quiet.server, later(MONDAY, minutes=5, seconds=30)) == 0
    assert read_replies(quiet.server, later(MONDAY, minutes=6, seconds=1)) == 1


@pytest.mark.parametrize(
    "header",
    [
        {"Auto_Submitted": "auto-replied"},
        {"X_Autoreply": "yes"},
        {"Precedence": "auto_reply"},
    ],
)
def test_an_automatic_answer_is_recorded_and_stops_nothing(quiet, sink, imap, header):
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(_reply_to(sent, subject="Out of office", **header))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    (replied,) = _replied(quiet, campaign_id)
    assert replied["automatic"] is True
    assert tick(quiet.server, later(MONDAY, days=3)) == 1
    assert len(sink.received()) == 2


def test_a_reply_stops_nothing_when_the_campaign_stops_on_something_else(quiet, sink, imap):
    campaign_id, sent = _first_step(quiet, sink, imap, stop_lead_settings="OPEN_AN_EMAIL")
    imap.deliver(_reply_to(sent))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    assert len(_replied(quiet, campaign_id)) == 1
    assert tick(quiet.server, later(MONDAY, days=3)) == 1


def test_a_campaign_that_does_not_track_replies_records_none(quiet, sink, imap):
    campaign_id, sent = _first_step(
        quiet, sink, imap, track_settings=["DONT_TRACK_REPLY_TO_AN_EMAIL"]
    )
    imap.deliver(_reply_to(sent))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    assert _replied(quiet, campaign_id) == []
    assert tick(quiet.server, later(MONDAY, days=3)) == 1


def test_an_answer_without_threading_headers_is_matched_by_its_sender(quiet, sink, imap):
    campaign_id, _ = _first_step(quiet, sink, imap)
    imap.deliver(message(LEAD, subject="Hello again"), received_at=later(MONDAY, hours=1))
    assert read_replies(quiet.server, later(MONDAY, hours=2)) == 1
    (replied,) = _replied(quiet, campaign_id)
    assert replied["seq_number"] == 1


def test_mail_from_before_the_first_email_is_not_a_reply(quiet, sink, imap):
    campaign_id, _ = _first_step(quiet, sink, imap)
    imap.deliver(message(LEAD, subject="Hello"), received_at=later(MONDAY, hours=-1))
    assert read_replies(quiet.server, later(MONDAY, hours=2)) == 0
    assert _replied(quiet, campaign_id) == []


def test_strangers_and_delivery_reports_are_not_replies(quiet, sink, imap):
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(message("someone@elsewhere.example", subject="Newsletter"))
    report = message(
        "mailer-daemon@example.com",
        subject="Undelivered Mail Returned to Sender",
        in_reply_to=sent.message_id,
    )
    imap.deliver(report)
    imap.deliver(
        message(
            "postmaster@example.org",
            in_reply_to=sent.message_id,
            Content_Type='multipart/report; report-type=delivery-status; boundary="b"',
        )
    )
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    assert _replied(quiet, campaign_id) == []
    assert tick(quiet.server, later(MONDAY, days=3)) == 1


def _bounced(api: Api, campaign_id: int) -> list[dict]:
    return _events_of(api, campaign_id, "EMAIL_BOUNCED")


@pytest.mark.parametrize("quoted", ["text/rfc822-headers", "message/rfc822"])
def test_a_late_bounce_bounces_the_lead(quiet, sink, imap, quoted):
    """The server took the email, then sent back a delivery report: BOUNCED, EMAIL_BOUNCED,
    the address on the block list (source bounce), no further step."""
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(delivery_report(LEAD, sent.message_id, quoted=quoted))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    (bounced,) = _bounced(quiet, campaign_id)
    assert bounced["seq_number"] == 1 and bounced["status"] == "5.1.1"
    assert bounced["reported"] is True and bounced["permanent"] is True
    assert "Recipient address rejected" in bounced["diagnostic"]
    assert statuses(quiet, campaign_id) == {LEAD: "BOUNCED"}
    timeline = events(quiet, campaign_id, lead_id(quiet, LEAD))
    changes = [(e["from"], e["to"], e["source"]) for e in timeline if e["type"] == "STATUS_CHANGED"]
    assert changes[-1] == ("IN_PROGRESS", "BOUNCED", "bounce")
    # The bounce, then what it caused, at the bounce's moment, as for a refusal at RCPT TO.
    assert [e["type"] for e in timeline[-3:]] == ["EMAIL_BOUNCED", "STATUS_CHANGED", "BLOCKED"]
    assert timeline[-3]["timestamp"] == timeline[-2]["timestamp"]
    listed = quiet.get("/leads/block-list").json()["block_list"]
    assert [(e["value"], e["source"]) for e in listed] == [(LEAD, "bounce")]
    assert _replied(quiet, campaign_id) == []  # a report is not a reply
    assert tick(quiet.server, later(MONDAY, days=3)) == 0
    assert len(sink.received()) == 1


def test_a_late_bounce_without_the_original_is_matched_by_its_recipient(quiet, sink, imap):
    campaign_id, _ = _first_step(quiet, sink, imap)
    imap.deliver(delivery_report(LEAD, None))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    assert statuses(quiet, campaign_id) == {LEAD: "BOUNCED"}


def test_a_plain_text_bounce_bounces_the_lead(quiet, sink, imap):
    """Exim's kind: no delivery-status part, the address in X-Failed-Recipients, the server's
    answer and a copy of the email in the text."""
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(plain_bounce(LEAD, sent.message_id))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    (bounced,) = _bounced(quiet, campaign_id)
    assert (bounced["seq_number"], bounced["status"], bounced["reported"]) == (1, "5.1.1", True)
    assert "User unknown" in bounced["diagnostic"]
    assert statuses(quiet, campaign_id) == {LEAD: "BOUNCED"}
    listed = quiet.get("/leads/block-list").json()["block_list"]
    assert [(e["value"], e["source"]) for e in listed] == [(LEAD, "bounce")]
    assert _replied(quiet, campaign_id) == []
    assert tick(quiet.server, later(MONDAY, days=3)) == 0


def test_a_plain_text_bounce_after_the_retries_ran_out_changes_nothing(quiet, sink, imap):
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(plain_bounce(LEAD, sent.message_id, "451 4.4.1 Connection timed out"))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    assert _bounced(quiet, campaign_id) == []
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}
    assert tick(quiet.server, later(MONDAY, days=3)) == 1


@pytest.mark.parametrize(("action", "status"), [("delayed", "4.4.1"), ("failed", "4.2.2")])
def test_a_report_of_a_delay_changes_nothing(quiet, sink, imap, action, status):
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(delivery_report(LEAD, sent.message_id, action=action, status=status))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    assert _bounced(quiet, campaign_id) == []
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}
    assert tick(quiet.server, later(MONDAY, days=3)) == 1


@pytest.mark.parametrize("status", ["5.7.1", "5.7.26", "5.2.2"])
def test_a_late_report_that_blames_the_sender_or_the_content_blocks_nobody(
    quiet, sink, imap, status
):
    """A report of a failure for the sender's or the content's sake (spam, DMARC, a full
    mailbox): the lead's sequence stops, as after a rejection at RCPT TO, but its status
    stays and its address is not block-listed."""
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(delivery_report(LEAD, sent.message_id, status=status))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    (bounced,) = _bounced(quiet, campaign_id)
    assert bounced["status"] == status and bounced["reported"] is True
    assert bounced["permanent"] is False and bounced["rejected"] is True
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}
    state = membership(quiet.server, campaign_id, LEAD)
    assert (state["next_seq"], state["hold"]) == (None, "rejected")
    assert quiet.get("/leads/block-list").json()["block_list"] == []
    assert tick(quiet.server, later(MONDAY, days=3)) == 0


def test_a_report_about_someone_else_bounces_nobody(quiet, sink, imap):
    """It names our email but another recipient (a forward that failed): the lead stays."""
    campaign_id, sent = _first_step(quiet, sink, imap)
    imap.deliver(delivery_report("colleague@example.com", sent.message_id))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}
    assert quiet.get("/leads/block-list").json()["block_list"] == []


def test_a_status_a_person_set_survives_a_late_bounce(quiet, sink, imap):
    campaign_id, sent = _first_step(quiet, sink, imap)
    lead = lead_id(quiet, LEAD)
    changed = quiet.patch(
        f"/campaigns/{campaign_id}/leads/{lead}/status", json={"status": "INTERESTED"}
    )
    assert changed.status_code == 200, changed.text
    imap.deliver(delivery_report(LEAD, sent.message_id))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    assert statuses(quiet, campaign_id) == {LEAD: "INTERESTED"}
    assert len(_bounced(quiet, campaign_id)) == 1
    listed = quiet.get("/leads/block-list").json()["block_list"]
    assert [e["value"] for e in listed] == [LEAD]


def test_another_accounts_email_is_not_answered_in_this_one(quiet, quiet_other, sink, imap):
    """The other account's inbox receives a reply naming this account's Message-ID: it is
    not recorded anywhere."""
    campaign_id, sent = _first_step(quiet, sink, imap)
    other_imap = ImapServer(imap.log_path.with_name("other.log"), user="other@x.example").start()
    try:
        mailbox(quiet_other, sink, "other@sender.example", **other_imap.inbox_settings())
        other_imap.deliver(_reply_to(sent))
        other_imap.deliver(delivery_report(LEAD, sent.message_id))
        assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    finally:
        other_imap.stop()
    assert _replied(quiet, campaign_id) == [] and _bounced(quiet, campaign_id) == []
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}


def test_an_inbox_that_refuses_the_login_says_why(quiet, sink, imap):
    box = mailbox(quiet, sink, **imap.inbox_settings(imap_password="not-the-password"))
    campaign(quiet, [box], leads(1))
    assert tick(quiet.server, MONDAY) == 1
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    shown = quiet.get(f"/email-accounts/{box}").json()
    assert shown["imap_error"].startswith("login:")
    assert "not-the-password" not in str(shown)
    assert shown["state"] == "OK"  # sending is not the inbox's business
    # Saving the right password clears the error and has the inbox read at the next pass.
    body = sink.mailbox("sam@sender.example", id=box, **imap.inbox_settings())
    saved = quiet.post("/email-accounts/save", json=body).json()
    assert saved["imap_error"] is None and saved["imap_checked_at"] is None


def test_the_login_test_tries_the_inbox_too(quiet, sink, imap):
    good = mailbox(quiet, sink, **imap.inbox_settings())
    tested = quiet.post(f"/email-accounts/{good}/test").json()
    assert tested["ok"] is True
    assert tested["imap"] == {"ok": True, "stage": None, "message": "Connected and logged in."}
    wrong = mailbox(
        quiet, sink, "wrong@sender.example", **imap.inbox_settings(imap_password="nope")
    )
    tested = quiet.post(f"/email-accounts/{wrong}/test").json()
    assert tested["ok"] is True  # the SMTP login
    assert tested["imap"]["ok"] is False and tested["imap"]["stage"] == "login"
    closed = mailbox(
        quiet, sink, "closed@sender.example", **imap.inbox_settings(imap_port=free_port())
    )
    tested = quiet.post(f"/email-accounts/{closed}/test").json()
    assert tested["imap"]["ok"] is False and tested["imap"]["stage"] == "connect"


def test_the_inbox_login_is_the_smtp_one_unless_given(quiet, sink, imap):
    body = sink.mailbox(
        "sam@sender.example",
        user_name=imap.user,
        password=imap.password,
        imap_host="127.0.0.1",
        imap_port=imap.port,
        imap_security="NONE",
    )
    saved = quiet.post("/email-accounts/save", json=body).json()
    assert saved["imap_user_name"] is None and saved["has_imap_password"] is False
    assert "password" not in saved and "imap_password" not in saved
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 0
    assert quiet.get(f"/email-accounts/{saved['id']}").json()["imap_error"] is None
    given = quiet.post(
        "/email-accounts/save", json={**body, "id": saved["id"], **imap.inbox_settings()}
    ).json()
    assert given["imap_user_name"] == imap.user and given["has_imap_password"] is True
    assert imap.password not in str(given)


def test_a_running_server_reads_replies_as_they_come(
    fresh_database_url, tmp_path: Path, sink, imap
):
    """``openlead serve`` with its dispatcher and reply reader, on the real clock."""
    with serving(
        fresh_database_url,
        tmp_path,
        OPENLEAD_SENDER_INTERVAL_SECONDS="0.2",
        OPENLEAD_REPLY_CHECK_SECONDS="0.3",
    ) as server:
        api = Api(server, create_account(fresh_database_url))
        try:
            box = mailbox(api, sink, **imap.inbox_settings())
            campaign_id = campaign(api, [box], leads(1))
            (sent,) = sink.wait_for(1, timeout=30)
            imap.deliver(_reply_to(sent))
            deadline = time.monotonic() + 30
            while not _replied(api, campaign_id) and time.monotonic() < deadline:
                time.sleep(0.2)
            (replied,) = _replied(api, campaign_id)
            assert replied["seq_number"] == 1
            shown = api.get(f"/email-accounts/{box}").json()
            assert shown["imap_error"] is None and shown["imap_checked_at"] is not None
        finally:
            api.close()


def test_a_message_that_cannot_be_read_is_skipped_not_read_for_ever(quiet, sink, imap, monkeypatch):
    """Whatever a message holds, it must not stop the inbox's reading: one that cannot be read
    is logged and passed over, and the reply after it is recorded."""
    from openlead.replies import reader

    campaign_id, sent = _first_step(quiet, sink, imap)
    real_read_report = reader.read_report

    def read_report(content: bytes):  # type: ignore[no-untyped-def]
        if b"unreadable" in content:
            raise ValueError("a report this code cannot read")
        return real_read_report(content)

    monkeypatch.setattr(reader, "read_report", read_report)
    report = delivery_report(LEAD, sent.message_id)
    imap.deliver(report.replace(b"Your message could not be delivered.", b"unreadable"))
    imap.deliver(_reply_to(sent))
    assert read_replies(quiet.server, later(MONDAY, minutes=5)) == 1
    assert len(_replied(quiet, campaign_id)) == 1
    assert statuses(quiet, campaign_id) == {LEAD: "IN_PROGRESS"}  # the report was not read
    # The cursor moved past both: the next pass finds nothing.
    assert read_replies(quiet.server, later(MONDAY, minutes=10)) == 0
    (shown,) = quiet.get("/email-accounts").json()["email_accounts"]
    assert shown["imap_error"] is None


def test_stopping_does_not_wait_for_an_inbox_that_does_not_answer(
    fresh_database_url, tmp_path: Path, sink
):
    """An IMAP server that takes the connection and never greets holds a read until the
    timeout (30 s); ``openlead serve`` told to stop leaves that read behind and exits."""
    silent = socket.create_server(("127.0.0.1", 0))  # connections wait in its backlog, unread
    try:
        with serving(fresh_database_url, tmp_path, OPENLEAD_REPLY_CHECK_SECONDS="0.3") as server:
            api = Api(server, create_account(fresh_database_url))
            try:
                inbox = {"imap_host": "127.0.0.1", "imap_port": silent.getsockname()[1]}
                box = mailbox(api, sink, **inbox, imap_security="NONE")
                deadline = time.monotonic() + 30
                while api.get(f"/email-accounts/{box}").json()["imap_checked_at"] is None:
                    assert time.monotonic() < deadline, "the inbox was never read"
                    time.sleep(0.1)
                time.sleep(0.5)  # the read now waits for the server's greeting
            finally:
                api.close()
            started = time.monotonic()
            server.stop()
            took = time.monotonic() - started
            # It shut down on SIGTERM (uvicorn ends by raising that again), not killed after
            # the 10 s stop_process gives it.
            assert server.process is not None
            assert server.process.returncode == -signal.SIGTERM, server.log()[-2000:]
            assert "Application shutdown complete" in server.log()
            assert took < 8, f"stopping took {took:.1f} s"
    finally:
        silent.close()
