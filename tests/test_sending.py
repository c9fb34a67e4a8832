"""Sending: the dispatcher against a real SMTP server (aiosmtpd) and a real server on both
backends. Most tests run the dispatcher's ticks themselves, at moments they choose
(``quiet_server`` has no dispatcher of its own); one runs the server's own."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from itertools import pairwise

import pytest

from openlead.sending.dispatcher import MAX_ATTEMPTS
from tests.sending_support import (
    ALWAYS,
    TWO_STEPS,
    campaign,
    dispatcher_at,
    events,
    later,
    lead_id,
    leads,
    listed,
    mailbox,
    membership,
    statuses,
    tick,
    utc,
)
from tests.smtp_sink import SmtpSink
from tests.support import Api, query

# A Monday, in the middle of a UTC working day.
MONDAY = utc(2031, 3, 3, 12, 0)


def _run(api: Api, now, ticks: int = 3) -> int:  # type: ignore[no-untyped-def]
    return sum(tick(api.server, now) for _ in range(ticks))


def test_the_servers_own_dispatcher_sends_a_whole_sequence(api, sink):
    """End to end: the dispatcher inside ``openlead serve`` sends both steps, threaded."""
    steps = [TWO_STEPS[0], {**TWO_STEPS[1], "seq_delay_details": {"delay_in_days": 0}}]
    box = mailbox(api, sink)
    campaign_id = campaign(api, [box], leads(3), steps=steps)
    received = sink.wait_for(6)
    by_lead: dict[str, list] = {}
    for message in received:
        by_lead.setdefault(message.to, []).append(message)
    assert sorted(by_lead) == [f"lead{i}@example.com" for i in range(3)]
    for i, (first, second) in enumerate(by_lead[f"lead{n}@example.com"] for n in range(3)):
        assert first.message["Subject"] == f"Quick question, Name{i}"
        assert second.message["Subject"] == f"Re: Quick question, Name{i}"
        assert second.message["In-Reply-To"] == first.message_id
        assert second.message["References"] == first.message_id
        assert first.message["From"] == "Sam Sender <sam@sender.example>"
        assert first.message["To"] == f"Name{i} Doe <lead{i}@example.com>"
        assert first.mail_from == "sam@sender.example"
        # OPENLEAD_PUBLIC_URL unset: the links lead to where the server listens.
        link = f"<http://127.0.0.1:{api.server.port}/u/"
        assert str(first.message["List-Unsubscribe"]).startswith(link)
    sink.wait_for(6)
    for _ in range(50):
        if set(statuses(api, campaign_id).values()) == {"COMPLETED"}:
            break
        import time

        time.sleep(0.1)
    assert set(statuses(api, campaign_id).values()) == {"COMPLETED"}
    # Its six emails, counted since 00:00 UTC (unless that passed while they went).
    sent_today = api.get(f"/email-accounts/{box}").json()["sent_today"]
    just_after_midnight = datetime.now(UTC).strftime("%H:%M") == "00:00"
    assert sent_today == 6 or (sent_today < 6 and just_after_midnight)
    timeline = events(api, campaign_id, lead_id(api, "lead0@example.com"))
    kinds = [(e["type"], e.get("to"), e.get("seq_number")) for e in timeline]
    assert kinds == [
        ("LEAD_ADDED", None, None),
        ("EMAIL_SENT", None, 1),
        ("STATUS_CHANGED", "IN_PROGRESS", None),
        ("EMAIL_SENT", None, 2),
        ("STATUS_CHANGED", "COMPLETED", None),
    ]
    sent = timeline[1]
    assert sent["email_account_id"] == box and sent["variant_label"] == "A"
    assert sent["message_id"] == by_lead["lead0@example.com"][0].message_id
    assert timeline[2]["source"] == "sender"


def _sequence_state(api: Api, campaign_id: int) -> dict[str, tuple]:
    """Where each lead's sequence stands, as the campaign's lead listing shows it."""
    return listed(api, campaign_id, "next_seq_number", "next_send_at", "hold", "email_account_id")


def test_follow_ups_wait_their_delay(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    # Not started yet: step 1 next, waiting for its turn, no mailbox yet.
    assert set(_sequence_state(quiet, campaign_id).values()) == {(1, None, None, None)}
    assert _run(quiet, MONDAY) == 2
    assert statuses(quiet, campaign_id) == {
        "lead0@example.com": "IN_PROGRESS",
        "lead1@example.com": "IN_PROGRESS",
    }
    due = "2031-03-05T12:00:00.000Z"  # two days after the first email
    assert set(_sequence_state(quiet, campaign_id).values()) == {(2, due, None, box)}
    assert _run(quiet, later(MONDAY, days=1, hours=23)) == 0
    assert _run(quiet, later(MONDAY, days=2, minutes=1)) == 2
    assert len(sink.received()) == 4
    assert set(statuses(quiet, campaign_id).values()) == {"COMPLETED"}
    assert set(_sequence_state(quiet, campaign_id).values()) == {(None, None, None, box)}
    assert _run(quiet, later(MONDAY, days=30)) == 0


def test_each_lead_keeps_one_mailbox_and_leads_spread_evenly(quiet, sink):
    boxes = [mailbox(quiet, sink, f"s{i}@sender.example") for i in range(3)]
    steps = [TWO_STEPS[0], {**TWO_STEPS[1], "seq_delay_details": {"delay_in_days": 0}}]
    campaign(quiet, boxes, leads(30), steps=steps)
    _run(quiet, MONDAY, ticks=4)
    received = sink.received()
    assert len(received) == 60
    senders: dict[str, set[str]] = {}
    for message in received:
        senders.setdefault(message.to, set()).add(message.mail_from)
    assert all(len(s) == 1 for s in senders.values())  # the whole sequence from one mailbox
    per_mailbox = Counter(next(iter(s)) for s in senders.values())
    assert sorted(per_mailbox.values()) == [10, 10, 10]


def test_a_permanent_refusal_is_a_bounce_and_blocks_the_address(quiet, sink):
    sink.refuse.add("lead1@example.com")
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    _run(quiet, MONDAY)
    assert statuses(quiet, campaign_id) == {
        "lead0@example.com": "IN_PROGRESS",
        "lead1@example.com": "BOUNCED",
    }
    timeline = events(quiet, campaign_id, lead_id(quiet, "lead1@example.com"))
    bounced = [e for e in timeline if e["type"] == "EMAIL_BOUNCED"]
    assert len(bounced) == 1 and bounced[0]["smtp_code"] == 550
    assert bounced[0]["seq_number"] == 1 and bounced[0]["permanent"] is True
    changed = [e for e in timeline if e["type"] == "STATUS_CHANGED"]
    assert changed[-1]["to"] == "BOUNCED" and changed[-1]["source"] == "bounce"
    entries = quiet.get("/leads/block-list").json()["block_list"]
    assert [(e["value"], e["source"]) for e in entries] == [("lead1@example.com", "bounce")]
    assert membership(quiet.server, campaign_id, "lead1@example.com")["next_seq"] is None
    # No follow-up ever goes to the bounced address.
    _run(quiet, later(MONDAY, days=3))
    assert [m.to for m in sink.received()].count("lead1@example.com") == 0


def test_a_temporary_refusal_waits_and_changes_no_status(quiet, sink):
    sink.defer.add("lead0@example.com")
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(1))
    _run(quiet, MONDAY, ticks=1)
    state = membership(quiet.server, campaign_id, "lead0@example.com")
    assert state["status"] == "NOT_CONTACTED" and state["attempts"] == 1 and state["next_seq"] == 1
    assert sink.received() == []
    assert _run(quiet, later(MONDAY, minutes=4)) == 0  # the first retry is after 5 minutes
    sink.defer.clear()
    assert _run(quiet, later(MONDAY, minutes=6)) == 1
    assert [m.to for m in sink.received()] == ["lead0@example.com"]
    assert statuses(quiet, campaign_id) == {"lead0@example.com": "IN_PROGRESS"}
    assert quiet.get("/leads/block-list").json()["block_list"] == []


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("replies", "550 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org"),
        ("data_replies", "554 5.7.1 Message rejected as spam"),
        ("replies", "552 5.2.2 Mailbox full"),
    ],
)
def test_a_rejection_that_is_not_the_address_is_retried_and_blocks_nobody(
    quiet, sink, where, reply
):
    """A 5xx whose enhanced code blames the sender, the content or a policy is not a bounce:
    the address may be good (a block list that holds the sending server refuses every lead at
    that provider). The step is tried again like a deferral; when the tries run out the
    sequence stops, the status stays and the address stays off the block list."""
    getattr(sink, where)["lead0@example.com"] = reply
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    _run(quiet, MONDAY, ticks=1)
    state = membership(quiet.server, campaign_id, "lead0@example.com")
    assert state["status"] == "NOT_CONTACTED" and state["attempts"] == 1 and state["next_seq"] == 1
    assert [m.to for m in sink.received()] == ["lead1@example.com"]
    assert quiet.get("/leads/block-list").json()["block_list"] == []
    assert _run(quiet, later(MONDAY, minutes=4)) == 0  # the first retry is after 5 minutes
    # Tried again and refused again, each try a little later, until the tries run out.
    for attempt in range(2, MAX_ATTEMPTS + 1):
        _run(quiet, later(MONDAY, hours=7 * attempt), ticks=1)
        state = membership(quiet.server, campaign_id, "lead0@example.com")
        assert state["attempts"] == attempt
    assert state["next_seq"] is None and state["hold"] == "rejected"
    assert statuses(quiet, campaign_id)["lead0@example.com"] == "NOT_CONTACTED"
    assert quiet.get("/leads/block-list").json()["block_list"] == []
    timeline = events(quiet, campaign_id, lead_id(quiet, "lead0@example.com"))
    assert [e["type"] for e in timeline] == ["LEAD_ADDED", "EMAIL_BOUNCED"]
    assert timeline[1]["rejected"] is True and timeline[1]["permanent"] is False
    assert timeline[1]["smtp_code"] == int(reply[:3])
    assert listed(quiet, campaign_id, "hold")["lead0@example.com"] == ("rejected",)
    _run(quiet, later(MONDAY, days=10))
    assert "lead0@example.com" not in [m.to for m in sink.received()]


def test_a_refusal_of_the_address_at_data_is_a_bounce(quiet, sink):
    sink.data_replies["lead0@example.com"] = "550 5.1.1 User unknown"
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(1))
    _run(quiet, MONDAY, ticks=1)
    assert statuses(quiet, campaign_id) == {"lead0@example.com": "BOUNCED"}
    entries = quiet.get("/leads/block-list").json()["block_list"]
    assert [(e["value"], e["source"]) for e in entries] == [("lead0@example.com", "bounce")]


def _first_of_three_refused(quiet: Api, sink: SmtpSink) -> tuple[int, int, int]:
    """Three leads sent in one tick, the first refused by the sink: the mailbox, the campaign
    and how many connections the tick made."""
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(3))
    before = sink.connections
    assert tick(quiet.server, MONDAY) == 3
    assert sorted(m.to for m in sink.received()) == ["lead1@example.com", "lead2@example.com"]
    return box, campaign_id, sink.connections - before


@pytest.mark.parametrize(("refusal", "status"), [("refuse", "BOUNCED"), ("defer", "NOT_CONTACTED")])
def test_a_refused_recipient_does_not_hold_up_the_next_ones_in_its_session(
    quiet, sink, refusal, status
):
    """The server keeps a refused transaction open (another MAIL FROM would be a 503 "nested
    MAIL command"): the session is reset, and the leads after it go at once, over the same
    connection, from a mailbox that stays OK."""
    getattr(sink, refusal).add("lead0@example.com")
    box, campaign_id, connections = _first_of_three_refused(quiet, sink)
    assert connections == 1
    assert statuses(quiet, campaign_id) == {
        "lead0@example.com": status,
        "lead1@example.com": "IN_PROGRESS",
        "lead2@example.com": "IN_PROGRESS",
    }
    account = quiet.get(f"/email-accounts/{box}").json()
    assert account["state"] == "OK" and account["last_error"] is None
    assert "nested MAIL" not in quiet.server.log()


def test_a_session_that_cannot_be_reset_is_replaced(quiet, sink):
    """A refused RSET is the session's trouble, not the lead's nor the mailbox's: the
    connection is dropped and the next lead goes over a new one."""
    sink.refuse.add("lead0@example.com")
    sink.refuse_reset = True
    box, campaign_id, connections = _first_of_three_refused(quiet, sink)
    assert connections == 2
    assert statuses(quiet, campaign_id)["lead0@example.com"] == "BOUNCED"
    assert quiet.get(f"/email-accounts/{box}").json()["state"] == "OK"


def test_a_mailbox_that_cannot_log_in_fails_and_its_leads_wait(quiet):
    sink = SmtpSink(user="sam@sender.example", password="right").start()
    try:
        box = mailbox(quiet, sink, password="wrong")
        campaign_id = campaign(quiet, [box], leads(3))
        _run(quiet, MONDAY)
        account = quiet.get(f"/email-accounts/{box}").json()
        assert account["state"] == "FAILING"
        assert "login" in account["last_error"] and account["retry_at"] is not None
        assert set(statuses(quiet, campaign_id).values()) == {"NOT_CONTACTED"}
        assert sink.received() == []
        # Fixed: the mailbox is usable again at once, and the leads go out.
        fixed = quiet.post("/email-accounts/save", json={**sink.mailbox(), "id": box})
        assert fixed.json()["state"] == "OK"
        _run(quiet, later(MONDAY, minutes=1))
        assert len(sink.received()) == 3
        assert set(statuses(quiet, campaign_id).values()) == {"IN_PROGRESS"}
    finally:
        sink.stop()


def test_a_refused_sender_fails_the_mailbox_and_bounces_nobody(quiet, sink):
    """A 553 to MAIL FROM is about the mailbox, not the recipient: the mailbox is marked failing
    (stage "sender", the server's words kept), no lead is bounced or blocked, and they go out
    once the mailbox works."""
    sink.refuse_senders.add("sam@sender.example")
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    _run(quiet, MONDAY)
    account = quiet.get(f"/email-accounts/{box}").json()
    assert account["state"] == "FAILING"
    assert "sender" in account["last_error"] and "Sender address rejected" in account["last_error"]
    assert set(statuses(quiet, campaign_id).values()) == {"NOT_CONTACTED"}
    assert quiet.get("/leads/block-list").json()["block_list"] == []
    assert sink.received() == []
    sink.refuse_senders.clear()
    assert quiet.post("/email-accounts/save", json={**sink.mailbox(), "id": box}).status_code == 200
    _run(quiet, later(MONDAY, minutes=1))
    assert sorted(m.to for m in sink.received()) == ["lead0@example.com", "lead1@example.com"]


def test_new_leads_go_to_a_working_mailbox(quiet, sink):
    broken = mailbox(quiet, sink, "broken@sender.example", smtp_port=1)
    working = mailbox(quiet, sink, "works@sender.example")
    campaign(quiet, [broken, working], leads(4))
    _run(quiet, MONDAY, ticks=4)
    assert sorted(m.to for m in sink.received()) == [f"lead{i}@example.com" for i in range(4)]
    assert {m.mail_from for m in sink.received()} == {"works@sender.example"}


def test_nothing_goes_to_a_blocked_or_unsubscribed_address(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(4), start=False)
    quiet.post("/leads/block-list", json={"emails": ["lead0@example.com"], "domains": []})
    quiet.post(f"/leads/{lead_id(quiet, 'lead1@example.com')}/unsubscribe")
    assert (
        quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "START"}).status_code == 200
    )
    _run(quiet, MONDAY)
    assert sorted(m.to for m in sink.received()) == ["lead2@example.com", "lead3@example.com"]
    # Blocked between steps: the follow-up does not go.
    quiet.post("/leads/block-list", json={"domains": ["example.com"]})
    _run(quiet, later(MONDAY, days=3))
    assert len(sink.received()) == 2
    assert membership(quiet.server, campaign_id, "lead2@example.com")["hold"] == "suppressed"
    # Lifted: it goes on.
    entry = quiet.get("/leads/block-list", params={"search": "example.com"}).json()["block_list"]
    domain = next(e for e in entry if e["kind"] == "domain")
    assert quiet.delete(f"/leads/block-list/{domain['id']}").status_code == 200
    _run(quiet, later(MONDAY, days=3, minutes=1))
    assert sorted(m.to for m in sink.received()[2:]) == ["lead2@example.com", "lead3@example.com"]


def test_an_import_override_covers_only_entries_older_than_the_lead(quiet, sink):
    box = mailbox(quiet, sink)
    quiet.post("/leads/block-list", json={"emails": ["old@example.com"]})
    campaign_id = campaign(quiet, [box], [], start=False)
    body = {
        "lead_list": [
            {"email": "old@example.com", "first_name": "Old"},
            {"email": "new@example.com", "first_name": "New"},
        ],
        "settings": {"ignore_global_block_list": True},
    }
    assert quiet.post(f"/campaigns/{campaign_id}/leads", json=body).json()["added_count"] == 2
    quiet.post("/leads/block-list", json={"emails": ["new@example.com"]})
    quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
    _run(quiet, MONDAY)
    assert [m.to for m in sink.received()] == ["old@example.com"]


def test_a_lead_missing_a_variable_waits_for_it(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(1))
    quiet.import_leads(campaign_id, [{"email": "nameless@example.com"}])
    _run(quiet, MONDAY)
    assert [m.to for m in sink.received()] == ["lead0@example.com"]
    state = membership(quiet.server, campaign_id, "nameless@example.com")
    assert state["hold"] == "missing_variables" and state["status"] == "NOT_CONTACTED"
    # The listing says why it waits.
    held = _sequence_state(quiet, campaign_id)["nameless@example.com"]
    assert held[0] == 1 and held[1] is None and held[2] == "missing_variables"
    patched = quiet.patch(
        f"/leads/{lead_id(quiet, 'nameless@example.com')}", json={"first_name": "Jo"}
    )
    assert patched.status_code == 200
    assert _sequence_state(quiet, campaign_id)["nameless@example.com"][2] is None
    _run(quiet, later(MONDAY, minutes=1))
    assert sink.received()[-1].to == "nameless@example.com"
    assert sink.received()[-1].message["Subject"] == "Quick question, Jo"
    for message in sink.received():
        assert "{{" not in message.text() and "Hi ," not in message.text()


def test_a_lead_whose_first_subject_renders_to_nothing_waits_for_a_value(quiet, sink):
    box = mailbox(quiet, sink)
    steps = [{**TWO_STEPS[0], "subject": "{% if company_name %}For {{company_name}}{% endif %}"}]
    campaign_id = campaign(quiet, [box], [], steps=steps)
    quiet.import_leads(
        campaign_id,
        [
            {"email": "a@example.com", "first_name": "A", "company_name": "Acme"},
            {"email": "b@example.com", "first_name": "B"},
        ],
    )
    _run(quiet, MONDAY)
    assert [m.message["Subject"] for m in sink.received()] == ["For Acme"]
    held = _sequence_state(quiet, campaign_id)["b@example.com"]
    assert held[0] == 1 and held[2] == "render_error"
    patched = quiet.patch(f"/leads/{lead_id(quiet, 'b@example.com')}", json={"company_name": "Bo"})
    assert patched.status_code == 200
    assert _sequence_state(quiet, campaign_id)["b@example.com"][2] is None
    _run(quiet, later(MONDAY, minutes=1))
    assert [m.message["Subject"] for m in sink.received()] == ["For Acme", "For Bo"]


def test_the_window_in_the_campaigns_time_zone(quiet, sink):
    box = mailbox(quiet, sink)
    window = {
        **ALWAYS,
        "timezone": "America/New_York",
        "days_of_the_week": [1, 2, 3, 4, 5],
        "start_hour": "09:00",
        "end_hour": "17:00",
    }
    campaign(quiet, [box], leads(1), schedule=window)
    # Monday 2031-03-10: New York is on daylight time (UTC-4) since the day before.
    assert _run(quiet, utc(2031, 3, 10, 12, 59)) == 0
    assert _run(quiet, utc(2031, 3, 10, 13, 0)) == 1
    assert sink.received()[0].message["Date"] is not None


def test_a_campaign_does_not_send_before_its_start_time(quiet, sink):
    box = mailbox(quiet, sink)
    schedule = {**ALWAYS, "schedule_start_time": "2031-03-04T00:00:00Z"}
    campaign(quiet, [box], leads(1), schedule=schedule)
    assert _run(quiet, MONDAY) == 0
    assert _run(quiet, utc(2031, 3, 4, 0, 1)) == 1


def test_the_daily_caps(quiet, sink):
    box = mailbox(quiet, sink, max_email_per_day=3)
    campaign(quiet, [box], leads(5), schedule={**ALWAYS, "max_new_leads_per_day": 2})
    _run(quiet, MONDAY, ticks=5)
    assert len(sink.received()) == 2  # the campaign's new leads of the day
    _run(quiet, later(MONDAY, days=1), ticks=5)
    assert len(sink.received()) == 4
    # Day 3: two follow-ups are due, and two new leads would start; the mailbox sends 3.
    _run(quiet, later(MONDAY, days=2, hours=1), ticks=5)
    assert len(sink.received()) == 7
    account = quiet.get(f"/email-accounts/{box}").json()
    assert account["max_email_per_day"] == 3


# 2031-03-04 in Sydney (UTC+11 then) runs from 13:00 UTC on the 3rd to 13:00 UTC on the 4th,
# so its working day holds UTC midnight.
SYDNEY = {**ALWAYS, "timezone": "Australia/Sydney", "start_hour": "09:00", "end_hour": "17:00"}
SYDNEY_10 = utc(2031, 3, 3, 23, 0)
SYDNEY_12 = utc(2031, 3, 4, 1, 0)


def test_a_mailbox_cap_counts_the_campaigns_day_not_the_utc_one(quiet, sink):
    box = mailbox(quiet, sink, max_email_per_day=3)
    campaign(quiet, [box], leads(8), steps=[TWO_STEPS[0]], schedule=SYDNEY)
    assert _run(quiet, SYDNEY_10) == 3
    assert _run(quiet, SYDNEY_12) == 0  # a new UTC day, but the same day in Sydney
    assert _run(quiet, later(SYDNEY_10, days=1)) == 3  # Sydney's next day


def test_a_shared_mailbox_is_held_to_its_cap_in_each_campaigns_day(quiet, sink):
    """Each campaign counts the mailbox's emails, every campaign's, since its own midnight."""
    box = mailbox(quiet, sink, max_email_per_day=3)
    # Made first, the Sydney campaign claims first in every tick.
    campaign(quiet, [box], leads(4, "syd"), steps=[TWO_STEPS[0]], schedule=SYDNEY)
    campaign(quiet, [box], leads(4, "utc"), steps=[TWO_STEPS[0]])

    def sent() -> Counter[str]:
        return Counter(m.to.split("@")[0].rstrip("0123456789") for m in sink.received())

    # 23:00 UTC on the 3rd: Sydney's 4th takes the 3, and the UTC campaign's 3rd has none left.
    assert _run(quiet, SYDNEY_10) == 3
    assert sent() == {"syd": 3}
    # 01:00 UTC on the 4th: a new day in UTC, not in Sydney.
    assert _run(quiet, SYDNEY_12) == 3
    assert sent() == {"syd": 3, "utc": 3}


def test_the_gap_between_two_emails_of_a_mailbox(quiet, sink):
    box = mailbox(quiet, sink)
    campaign(quiet, [box], leads(3), schedule={**ALWAYS, "min_time_btw_emails": 10})
    assert _run(quiet, MONDAY) == 1
    assert _run(quiet, later(MONDAY, minutes=9)) == 0
    assert _run(quiet, later(MONDAY, minutes=10)) == 1
    assert _run(quiet, later(MONDAY, minutes=25)) == 1
    assert len(sink.received()) == 3


@pytest.mark.parametrize("quick_gap", [0, 1])
def test_a_mailbox_shared_by_two_campaigns_keeps_each_ones_gap(quiet, sink, quick_gap):
    """Each email leaves the mailbox at least its own campaign's gap after the mailbox's
    previous email, whichever campaign that was; a shorter gap is not held to a longer one."""
    box = mailbox(quiet, sink)
    # The quick campaign is made first, so it claims first in every tick.
    quick = {**ALWAYS, "min_time_btw_emails": quick_gap}
    campaign(quiet, [box], leads(3, prefix="quick"), schedule=quick)
    campaign(quiet, [box], leads(2, prefix="slow"), schedule={**ALWAYS, "min_time_btw_emails": 5})
    gaps = {"quick": quick_gap, "slow": 5}
    sent: list[tuple[int, str]] = []
    for minute in range(16):
        before = len(sink.received())
        _run(quiet, later(MONDAY, minutes=minute), ticks=2)
        sent += [
            (minute, m.to.partition("@")[0].rstrip("0123456789")) for m in sink.received()[before:]
        ]
    assert Counter(kind for _, kind in sent) == {"quick": 3, "slow": 2}, sent
    for (previous, _), (minute, kind) in pairwise(sent):
        assert minute - previous >= gaps[kind], sent
    quick_done = max(minute for minute, kind in sent if kind == "quick")
    assert quick_done == 2 * quick_gap, sent


def test_a_paused_campaign_sends_nothing_until_started_again(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "PAUSED"})
    assert _run(quiet, MONDAY) == 0
    quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
    assert _run(quiet, MONDAY) == 2


def test_statuses_that_end_a_sequence(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(3))
    _run(quiet, MONDAY)
    for email, status in (
        ("lead0@example.com", "INTERESTED"),
        ("lead1@example.com", "DO_NOT_CONTACT"),
    ):
        changed = quiet.patch(
            f"/campaigns/{campaign_id}/leads/{lead_id(quiet, email)}/status",
            json={"status": status},
        )
        assert changed.status_code == 200
    _run(quiet, later(MONDAY, days=3))
    follow_ups = [m.to for m in sink.received()[3:]]
    assert follow_ups == ["lead2@example.com"]


def test_a_step_removed_completes_the_lead_and_a_step_is_never_sent_twice(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    _run(quiet, MONDAY)
    saved = quiet.post(f"/campaigns/{campaign_id}/sequences", json={"sequences": TWO_STEPS[:1]})
    assert saved.status_code == 200
    _run(quiet, later(MONDAY, days=3))
    assert len(sink.received()) == 2
    assert set(statuses(quiet, campaign_id).values()) == {"COMPLETED"}
    # Removed and imported again: step 1 already went to them, so nothing goes twice.
    for i in range(2):
        quiet.delete(f"/campaigns/{campaign_id}/leads/{lead_id(quiet, f'lead{i}@example.com')}")
    body = {"lead_list": leads(2), "settings": {"ignore_duplicate_leads_in_other_campaign": True}}
    assert quiet.post(f"/campaigns/{campaign_id}/leads", json=body).json()["added_count"] == 2
    _run(quiet, later(MONDAY, days=4))
    assert len(sink.received()) == 2
    (count,) = query(
        quiet.server.database_url,
        "SELECT COUNT(*) FROM messages WHERE campaign_id = :c",
        c=campaign_id,
    )
    assert count == (2,)


def test_a_variant_and_spintax_go_as_the_preview_shows(quiet, sink):
    box = mailbox(quiet, sink)
    steps = [
        {
            "seq_number": 1,
            "seq_delay_details": {"delay_in_days": 0},
            "subject": "{Hi|Hello|Hey} {{first_name}}",
            "email_body": "Body A for {{first_name}}",
            "seq_variants": [
                {"variant_label": "B", "subject": "B: {{first_name}}", "email_body": "Body B"}
            ],
        }
    ]
    campaign_id = campaign(quiet, [box], leads(6), steps=steps)
    _run(quiet, MONDAY)
    for message in sink.received():
        lead = lead_id(quiet, message.to)
        preview = quiet.get(f"/campaigns/{campaign_id}/leads/{lead}/preview").json()
        step = preview["sequences"][0] if "sequences" in preview else preview["steps"][0]
        chosen = next(v for v in step["variants"] if v["variant_label"] == step["sent_variant"])
        assert message.message["Subject"] == chosen["subject"]
        assert message.text().startswith(chosen["email_body"])


def test_a_lead_set_back_to_in_progress_gets_its_follow_up(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(1))
    _run(quiet, MONDAY)
    lead = lead_id(quiet, "lead0@example.com")
    path = f"/campaigns/{campaign_id}/leads/{lead}/status"
    assert quiet.patch(path, json={"status": "INTERESTED"}).status_code == 200
    _run(quiet, later(MONDAY, days=3))  # due, but INTERESTED: let go of
    assert len(sink.received()) == 1
    assert membership(quiet.server, campaign_id, "lead0@example.com")["next_send_at"] is None
    assert quiet.patch(path, json={"status": "IN_PROGRESS"}).status_code == 200
    _run(quiet, later(MONDAY, days=3, minutes=1))
    assert [m.message["Subject"] for m in sink.received()][1].startswith("Re: ")


def test_a_send_refused_at_its_mark_leaves_the_lead_where_it_belongs(quiet, sink):
    """Claimed, then blocked before its mark: held as suppressed at once (not left claimed
    until its lease runs out); claimed, then paused: due again at once."""
    import asyncio

    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    account = _account_of(quiet, campaign_id)

    async def claim_then(change, claimed: int) -> None:  # type: ignore[no-untyped-def]
        dispatcher, database = _dispatcher(quiet)
        try:
            sends = await dispatcher._claim(account, campaign_id, MONDAY)
            assert len(sends) == claimed
            await asyncio.to_thread(change)
            await dispatcher._lane(sends[0].mailbox, sends)
            await dispatcher.journal.close()
        finally:
            await database.dispose()

    block = {"emails": ["lead0@example.com"]}
    asyncio.run(claim_then(lambda: quiet.post("/leads/block-list", json=block), 2))
    # The block itself holds the lead; the refused mark must not undo that.
    state = membership(quiet.server, campaign_id, "lead0@example.com")
    assert state["hold"] == "suppressed" and state["next_send_at"] is None
    assert [m.to for m in sink.received()] == ["lead1@example.com"]
    quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
    quiet.import_leads(campaign_id, leads(3, prefix="more"))

    def pause() -> None:
        quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "PAUSED"})

    asyncio.run(claim_then(pause, 3))
    assert len(sink.received()) == 1
    for i in range(2):
        state = membership(quiet.server, campaign_id, f"more{i}@example.com")
        # Given back to the day's budget and to the fresh leads: not held until the lease ends.
        assert state["email_account_id"] is None and state["hold"] is None


def _account_of(api: Api, campaign_id: int) -> int:
    rows = query(
        api.server.database_url, "SELECT account_id FROM campaigns WHERE id = :c", c=campaign_id
    )
    return rows[0][0]


def _dispatcher(api: Api, kind: type | None = None, **settings):  # type: ignore[no-untyped-def]
    """A dispatcher on the server's database, its clock at MONDAY; (it, its database)."""
    from openlead.sending.dispatcher import Dispatcher

    return dispatcher_at(api.server, MONDAY, kind or Dispatcher, **settings)


def test_a_running_dispatcher_claims_again_while_its_last_sends_go(quiet, sink):
    """On PostgreSQL ``run`` makes its next claim before the sends of the one before are done,
    so that no mailbox stands idle while it claims; the new sends queue behind the mailbox's
    current ones, over one session at a time, and every lead gets its step once. On SQLite,
    where a claim holds the one writer the marks wait for, it claims once they are done."""
    import asyncio
    import time

    from openlead.sending.dispatcher import Dispatcher

    class Watched(Dispatcher):
        lanes_going = 0
        claims_while_sending = 0

        async def _claim_all(self, now):  # type: ignore[no-untyped-def]
            self.claims_while_sending += self.lanes_going > 0
            return await super()._claim_all(now)

        async def _lane(self, mailbox, sends, taken=None):  # type: ignore[no-untyped-def]
            self.lanes_going += 1
            try:
                return await super()._lane(mailbox, sends, taken)
            finally:
                self.lanes_going -= 1

    box = mailbox(quiet, sink)
    campaign(quiet, [box], leads(24), steps=[TWO_STEPS[0]])

    async def run() -> Watched:
        dispatcher, database = _dispatcher(
            quiet, Watched, sender_batch=4, sender_interval_seconds=0.05
        )
        stopping = asyncio.Event()
        running = asyncio.create_task(dispatcher.run(stopping))
        deadline = time.monotonic() + 30
        while len(sink.received()) < 24 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        stopping.set()
        await running
        await database.dispose()
        return dispatcher

    dispatcher = asyncio.run(run())
    assert sorted(m.to for m in sink.received()) == sorted(
        f"lead{i}@example.com" for i in range(24)
    )
    assert sink.most_open == 1
    if quiet.server.database_url.startswith("sqlite"):
        assert dispatcher.claims_while_sending == 0
    else:
        assert dispatcher.claims_while_sending >= 1


def test_sends_claimed_ahead_when_the_dispatcher_stops_are_given_back(quiet, sink):
    """A claim's sends that had not started when the dispatcher was told to stop go back at
    once, reservations and all: the next dispatcher sends them now, not when the claim's lease
    runs out."""
    import asyncio

    from openlead.sending.dispatcher import _Generation

    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(3), steps=[TWO_STEPS[0]])
    account = _account_of(quiet, campaign_id)

    async def claim_then_stop() -> None:
        dispatcher, database = _dispatcher(quiet)
        try:
            sends = await dispatcher._claim(account, campaign_id, MONDAY)
            assert len(sends) == 3
            stopping = asyncio.Event()
            stopping.set()
            await dispatcher._follow(None, sends, _Generation(len(sends), 1), stopping)
            await dispatcher.journal.close()
        finally:
            await database.dispose()

    asyncio.run(claim_then_stop())
    assert sink.received() == []
    for i in range(3):
        state = membership(quiet.server, campaign_id, f"lead{i}@example.com")
        assert state["email_account_id"] is None and state["hold"] is None
    (sent_log,) = query(
        quiet.server.database_url, "SELECT sent_log FROM email_accounts WHERE id = :b", b=box
    )[0]
    # The three reservations were given back: nothing is left in the mailbox's tally.
    assert (json.loads(sent_log) if isinstance(sent_log, str) else sent_log) == []
    assert tick(quiet.server, MONDAY) == 3
    assert sorted(m.to for m in sink.received()) == [f"lead{i}@example.com" for i in range(3)]


def test_a_running_dispatcher_stops_claiming_for_a_mailbox_that_failed(quiet):
    """A mailbox that cannot log in while ``run`` sends: its claims fail once and are recorded
    once (the failure is committed before the next claim is made), no lead is bounced, and
    the leads wait for the mailbox."""
    import asyncio
    import time

    from openlead.sending.dispatcher import Dispatcher

    sink = SmtpSink(user="sam@sender.example", password="right").start()
    try:
        box = mailbox(quiet, sink, password="wrong")
        campaign_id = campaign(quiet, [box], leads(6), steps=[TWO_STEPS[0]])

        class Counted(Dispatcher):
            claims_that_found_work = 0

            async def _claim_all(self, now):  # type: ignore[no-untyped-def]
                lanes = await super()._claim_all(now)
                self.claims_that_found_work += bool(lanes)
                return lanes

        async def run() -> Counted:
            dispatcher, database = _dispatcher(
                quiet, Counted, sender_batch=2, sender_interval_seconds=0.05
            )
            stopping = asyncio.Event()
            running = asyncio.create_task(dispatcher.run(stopping))
            await asyncio.sleep(1.0)
            stopping.set()
            await running
            await database.dispose()
            return dispatcher

        started = time.monotonic()
        dispatcher = asyncio.run(run())
        # The failure was committed before the next claim, which then gave the mailbox nothing.
        assert dispatcher.claims_that_found_work == 1
        account = quiet.get(f"/email-accounts/{box}").json()
        assert account["state"] == "FAILING" and "login" in account["last_error"]
        (failures,) = query(
            quiet.server.database_url, "SELECT failures FROM email_accounts WHERE id = :b", b=box
        )[0]
        assert failures == 1
        assert set(statuses(quiet, campaign_id).values()) == {"NOT_CONTACTED"}
        assert sink.received() == []
        # Two sessions tried: the first claim's and, at most, one made before it had failed.
        assert sink.connections <= 2, (sink.connections, time.monotonic() - started)
    finally:
        sink.stop()


def _campaign_status(api: Api, campaign_id: int) -> str:
    response = api.get(f"/campaigns/{campaign_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def test_a_campaign_completes_when_no_lead_has_anything_left_and_opens_again_for_new_leads(
    quiet, sink
):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2))
    assert tick(quiet.server, MONDAY) == 2
    # The follow-ups are due in two days: the campaign still has work.
    assert tick(quiet.server, later(MONDAY, days=1)) == 0
    assert _campaign_status(quiet, campaign_id) == "ACTIVE"
    assert tick(quiet.server, later(MONDAY, days=2, minutes=1)) == 2
    assert _campaign_status(quiet, campaign_id) == "ACTIVE"  # settled before that claim
    assert tick(quiet.server, later(MONDAY, days=2, minutes=2)) == 0
    assert _campaign_status(quiet, campaign_id) == "COMPLETED"
    assert set(statuses(quiet, campaign_id).values()) == {"COMPLETED"}
    # A completed campaign sends nothing, and a lead that arrives opens it again: its first
    # email goes in the same round.
    quiet.import_leads(campaign_id, leads(1, prefix="late"))
    assert _campaign_status(quiet, campaign_id) == "COMPLETED"
    assert tick(quiet.server, later(MONDAY, days=2, minutes=3)) == 1
    assert _campaign_status(quiet, campaign_id) == "ACTIVE"
    assert sink.received()[-1].to == "late0@example.com"


def test_leads_held_by_a_list_count_as_processed_until_the_entry_is_lifted(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(2), steps=[TWO_STEPS[0]], start=False)
    quiet.post("/leads/block-list", json={"emails": ["lead1@example.com"]})
    quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
    assert tick(quiet.server, MONDAY) == 1
    tick(quiet.server, later(MONDAY, minutes=1))
    assert _campaign_status(quiet, campaign_id) == "COMPLETED"
    assert membership(quiet.server, campaign_id, "lead1@example.com")["hold"] == "suppressed"
    (entry,) = quiet.get("/leads/block-list").json()["block_list"]
    assert quiet.delete(f"/leads/block-list/{entry['id']}").status_code == 200
    assert tick(quiet.server, later(MONDAY, minutes=2)) == 1
    assert [m.to for m in sink.received()] == ["lead0@example.com", "lead1@example.com"]
    tick(quiet.server, later(MONDAY, minutes=3))
    assert _campaign_status(quiet, campaign_id) == "COMPLETED"


def test_a_lead_set_back_to_a_status_that_sends_opens_a_completed_campaign(quiet, sink):
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(1), steps=[TWO_STEPS[0]], start=False)
    lead = lead_id(quiet, "lead0@example.com")
    path = f"/campaigns/{campaign_id}/leads/{lead}/status"
    assert quiet.patch(path, json={"status": "INTERESTED"}).status_code == 200
    quiet.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
    assert tick(quiet.server, MONDAY) == 0
    assert _campaign_status(quiet, campaign_id) == "COMPLETED"
    assert quiet.patch(path, json={"status": "NOT_CONTACTED"}).status_code == 200
    assert tick(quiet.server, later(MONDAY, minutes=1)) == 1
    assert _campaign_status(quiet, campaign_id) == "ACTIVE"


def test_only_a_running_campaign_with_leads_completes(quiet, sink):
    box = mailbox(quiet, sink)
    empty = campaign(quiet, [box], [])
    paused = campaign(quiet, [box], leads(1), steps=[TWO_STEPS[0]])
    assert tick(quiet.server, MONDAY) == 1
    quiet.post(f"/campaigns/{paused}/status", json={"status": "PAUSED"})
    tick(quiet.server, later(MONDAY, minutes=1))
    assert _campaign_status(quiet, empty) == "ACTIVE"
    assert _campaign_status(quiet, paused) == "PAUSED"
    # A completed campaign can be paused, started and stopped as any other.
    quiet.post(f"/campaigns/{paused}/status", json={"status": "START"})
    tick(quiet.server, later(MONDAY, minutes=2))
    assert _campaign_status(quiet, paused) == "COMPLETED"
    for status, then in (("PAUSED", "PAUSED"), ("START", "ACTIVE"), ("STOPPED", "STOPPED")):
        changed = quiet.post(f"/campaigns/{paused}/status", json={"status": status})
        assert changed.status_code == 200, changed.text
        assert _campaign_status(quiet, paused) == then
    tick(quiet.server, later(MONDAY, minutes=3))
    assert _campaign_status(quiet, paused) == "STOPPED"


def test_a_running_dispatcher_tries_a_failed_mailbox_again_when_its_retry_time_comes(quiet):
    """A lane that failed is over once its failure is committed: a claim made after that (the
    mailbox's retry time come) opens a session of its own instead of taking the old failure
    for its own, as it did, failing the mailbox again at every retry until a restart."""
    import asyncio

    sink = SmtpSink(user="sam@sender.example", password="right").start()
    try:
        box = mailbox(quiet, sink, password="wrong")
        campaign(quiet, [box], leads(2), steps=[TWO_STEPS[0]])
        clock = [MONDAY]

        async def run() -> None:
            dispatcher, database = _dispatcher(quiet, sender_interval_seconds=0.05)
            dispatcher.clock = lambda: clock[0]
            stopping = asyncio.Event()
            running = asyncio.create_task(dispatcher.run(stopping))
            try:
                await asyncio.sleep(0.5)
                # The requests go from another thread: the dispatcher shares SQLite's one
                # writer with the server, and must go on to let the server's writes through.
                account = (await asyncio.to_thread(quiet.get, f"/email-accounts/{box}")).json()
                assert account["state"] == "FAILING", account
                fixed = {**sink.mailbox("sam@sender.example", password="right"), "id": box}
                saved = await asyncio.to_thread(quiet.post, "/email-accounts/save", json=fixed)
                assert saved.status_code == 200, (
                    saved.text,
                    quiet.server.log_path.read_text()[-3000:],
                )
                clock[0] = later(MONDAY, minutes=2)  # past the first retry time
                for _ in range(100):
                    if len(sink.received()) == 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                stopping.set()
                await running
                await database.dispose()

        asyncio.run(run())
        assert sorted(m.to for m in sink.received()) == ["lead0@example.com", "lead1@example.com"]
        assert quiet.get(f"/email-accounts/{box}").json()["state"] == "OK"
    finally:
        sink.stop()
