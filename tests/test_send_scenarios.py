"""Scenarios for the checks the sender makes at the moment of sending, replayed step by step
through the state machine of test_send_invariants (its model and checks after every step) on
both backends. The machine finds such interleavings too, but rarely: each needs three or four
particular steps in a row; here each is certain."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import pytest

from tests.sending_support import campaign, mailbox, statuses, tick, utc
from tests.test_send_invariants import ADDRESSES, CAMPAIGNS, SendingMachine, running_app

NY = CAMPAIGNS["ny"][0]
STARTED = ADDRESSES[:6]  # the leads the machine's set-up imports


class Pick:
    """Stands in for Hypothesis's ``data`` argument: draws the value it was given."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def draw(self, _strategy: Any) -> Any:
        return self.value


@pytest.fixture
def machine(fresh_database_url: str, tmp_path: Path) -> Iterator[SendingMachine]:
    """The machine set up, Berlin's campaign paused, the clock at a New York window's start."""
    with running_app(fresh_database_url, tmp_path) as env:
        machine = type("Machine", (SendingMachine,), {"env": env})()
        try:
            machine.set_up(autotick=False)
            env.sink.refuse, env.sink.defer = set(), set()
            machine.pause("berlin")
            # The start of the next window, whatever the time of day the test runs at, so
            # that every scenario has the whole window ahead of it.
            machine.now = NY.next_edge(machine.now, "start") + timedelta(minutes=1)
            checked(machine)
            yield machine
        finally:
            machine.teardown()


def checked(machine: SendingMachine) -> None:
    machine.every_email_keeps_the_rules()


def sent_to(machine: SendingMachine, address: str) -> int:
    return sum(1 for got in machine.env.sink.received() if got.to == address)


def only_fresh(machine: SendingMachine, address: str) -> None:
    """Every New York lead but ``address`` stopped (INTERESTED), so it goes next."""
    for other in STARTED:
        if other != address and ("ny", other) in machine.memberships:
            machine.change_status(Pick(("ny", other)), "INTERESTED")
    checked(machine)


def block_entry(machine: SendingMachine, kind: str, value: str) -> dict:
    entries = machine.call("GET", "/leads/block-list").json()["block_list"]
    return next(e for e in entries if (e["kind"], e["value"]) == (kind, value))


def test_new_leads_given_back_count_again_when_sent(machine: SendingMachine) -> None:
    """New leads claimed, then not sent (the campaign was paused before their turn), are given
    back to the day's budget: when they go after all, they count against it again."""
    machine.claim(minutes=0)  # two new leads, one per mailbox
    machine.pause("ny")
    machine.send_claimed(seconds=0)  # refused at the mark: the campaign is paused
    checked(machine)
    machine.start("ny")
    for _ in range(3):
        machine.minutes_pass(minutes=10, then_tick=True)
        checked(machine)  # at most max_new step-1 emails a day
    assert sum(1 for got in machine.env.sink.received() if "B1 " in got.text()) == NY.max_new


def test_blocked_between_claim_and_send(machine: SendingMachine) -> None:
    machine.claim(minutes=0)
    machine.block(emails=[], domains=["alpha.example"])
    before = len(machine.env.sink.received())
    machine.send_claimed(seconds=0)
    checked(machine)
    assert all(got.to.endswith("@beta.example") for got in machine.env.sink.received()[before:])


def test_unsubscribed_between_claim_and_send_and_status_set_back(machine: SendingMachine) -> None:
    address = STARTED[0]
    only_fresh(machine, address)
    machine.claim(minutes=0)
    machine.unsubscribe_everywhere(Pick(address))
    machine.change_status(Pick(("ny", address)), "NOT_CONTACTED")  # the list entry stays
    machine.send_claimed(seconds=0)
    checked(machine)
    machine.minutes_pass(minutes=11, then_tick=True)
    checked(machine)
    assert sent_to(machine, address) == 0


def test_window_closes_between_claim_and_send(machine: SendingMachine) -> None:
    machine.to_window_edge("ny", "end", -1, then_tick=False)
    machine.claim(minutes=0)
    assert machine.claimed, "nothing claimed a minute before the window closes"
    machine.send_claimed(seconds=301)
    checked(machine)
    assert not machine.env.sink.received()[2:], "sent after the window closed"


def test_an_override_covers_only_older_entries(machine: SendingMachine) -> None:
    """Imported with ignore_global_block_list while its address was blocked: sent. Then its
    domain is blocked (a newer entry) and the address's own entry deleted: the newer entry
    stops it, override or not. Its deletion lets it go again."""
    address = "cy@beta.example"
    machine.block(emails=[address], domains=[])
    machine._import("ny", [address], [{"first_name": True}], True, False)
    only_fresh(machine, address)
    machine.block(emails=[], domains=["beta.example"])
    machine.delete_block_entry(Pick(block_entry(machine, "email", address)))
    for _ in range(2):
        machine.minutes_pass(minutes=11, then_tick=True)
        checked(machine)
    assert sent_to(machine, address) == 0
    machine.delete_block_entry(Pick(block_entry(machine, "domain", "beta.example")))
    machine.minutes_pass(minutes=11, then_tick=True)
    checked(machine)
    assert sent_to(machine, address) == 1


def test_an_unsubscribe_override_covers_only_older_entries(machine: SendingMachine) -> None:
    address = "cy@beta.example"
    machine._import("ny", [address], [{"first_name": True}], False, True)
    only_fresh(machine, address)
    machine.unsubscribe_everywhere(Pick(address))  # newer than the membership
    machine.change_status(Pick(("ny", address)), "NOT_CONTACTED")
    for _ in range(2):
        machine.minutes_pass(minutes=11, then_tick=True)
        checked(machine)
    assert sent_to(machine, address) == 0


# --- what a lead's values and a mailbox's name make of the message ---------------------------


def _display_name(raw: bytes, header: str) -> str:
    """As RFC 2047 reads it (6.2: no space between two encoded words; Python 3.11's
    policy.default adds one, CPython gh-128110)."""
    [(name, _)] = getaddresses([message_from_bytes(raw, policy=policy.compat32)[header]])
    return str(make_header(decode_header(name)))


def test_long_names_tagged_values_and_a_blank_footer_text_go_as_meant(quiet, sink) -> None:
    """A server refuses a line over 998 characters ("500 Line too long"): names that long
    are folded, and the lead is not taken for a bounce. Tags in a lead's values do not make a
    text template HTML, and a blank unsubscribe text is the default one."""
    box = mailbox(quiet, sink, from_name="日本語" * 100)
    steps = [
        {
            "seq_number": 1,
            "seq_delay_details": {"delay_in_days": 0},
            "subject": "Hello",
            "email_body": "Hi {{first_name}},\nsecond line\nthird line\nSee {{website}}",
        }
    ]
    invoice = '<a href="https://evil.example.net/phish">your invoice</a>'
    people = [
        {
            "email": "long@example.com",
            "first_name": "A" * 500,
            "last_name": "B" * 500,
            "website": "https://example.com",
        },
        {"email": "tags@example.com", "first_name": "<b>Bob</b>", "website": invoice},
    ]
    settings = {"unsubscribe_text": "   "}
    campaign_id = campaign(quiet, [box], people, steps=steps, settings=settings)
    assert tick(quiet.server, utc(2031, 3, 3, 12, 0)) == 2
    assert set(statuses(quiet, campaign_id).values()) == {"COMPLETED"}  # neither BOUNCED
    got = {message.to: message for message in sink.received()}
    long = got["long@example.com"]
    assert all(len(line) <= 998 for line in long.content.split(b"\r\n"))
    assert _display_name(long.content, "To") == "A" * 500 + " " + "B" * 500
    assert _display_name(long.content, "From") == "日本語" * 100
    tagged = got["tags@example.com"]
    assert (
        tagged.text()
        .replace("\r\n", "\n")
        .startswith(f"Hi <b>Bob</b>,\nsecond line\nthird line\nSee {invoice}\n")
    )
    markup = tagged.html().replace("\r\n", "\n")
    assert "Hi &lt;b&gt;Bob&lt;/b&gt;,<br>\nsecond line<br>" in markup
    assert "/t/c/" not in markup and "<b>" not in markup
    assert re.search(r'<a href="[^"]+/u/[^"]+">Unsubscribe</a>', markup)
