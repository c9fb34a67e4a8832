"""The sending invariants (API.md, "Sending"), checked by a state machine on both backends.

Hypothesis interleaves what a user does through the HTTP API (imports, blocks, unsubscribes,
list deletions, status changes, sequence edits, pause and start) with jumps of a simulated
clock and dispatcher ticks at that clock, against a real SMTP server. The app runs in process
(its lifespan running, its own sender off); ``Dispatcher.tick(now)`` is called directly.

The model knows what the user did, in order; after every step each email the sink received
is matched to its ``messages`` row and checked against the model as it stood when the email
was marked (a tick runs between two user actions, so: as it stands now, for the emails of the
last tick): not to a blocked or unsubscribed address (an import override covers only list
entries older than the membership), not twice for one step, no missing variable, inside the
campaign's window, within the mailbox's daily cap, its own campaign's gap after the mailbox's
email before it (one mailbox is shared by both campaigns), with the unsubscribe headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text

from openlead.app import create_app
from openlead.config import Settings
from openlead.sending.dispatcher import Dispatcher
from tests.sending_support import account_of_campaign, check_matched, message_rows
from tests.smtp_sink import Received, SmtpSink
from tests.support import create_account

# Few addresses, so that the actions of one example keep meeting the same ones.
DOMAINS = ["alpha.example", "beta.example"]
USERS = ["ann", "bob", "cy", "dee"]
ADDRESSES = [f"{u}@{d}" for d in DOMAINS for u in USERS]
REFUSED = "dee@beta.example"  # 550 at RCPT TO: a bounce
DEFERRED = "cy@beta.example"  # 451 at RCPT TO: tried again later
FIELDS = ("first_name", "company_name", "industry")
MARKER = {"first_name": "FN", "company_name": "CO", "industry": "IND"}
SENDABLE = {"NOT_CONTACTED", "IN_PROGRESS"}
# The sendable ones more often: a lead that may be sent again after a stop is where the
# checks at the moment of sending matter.
STATUSES = [
    "NOT_CONTACTED",
    "NOT_CONTACTED",
    "IN_PROGRESS",
    "IN_PROGRESS",
    "COMPLETED",
    "INTERESTED",
    "NOT_INTERESTED",
    "DO_NOT_CONTACT",
    "UNSUBSCRIBED",
]


@dataclass(frozen=True)
class Window:
    timezone: str
    days: tuple[int, ...]  # 0 = Sunday
    start: int  # minutes after local midnight
    end: int
    gap: int  # min_time_btw_emails
    max_new: int

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        return local.isoweekday() % 7 in self.days and self.start <= minute < self.end

    def schedule(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "days_of_the_week": list(self.days),
            "start_hour": f"{self.start // 60:02d}:{self.start % 60:02d}",
            "end_hour": f"{self.end // 60:02d}:{self.end % 60:02d}",
            "min_time_btw_emails": self.gap,
            "max_new_leads_per_day": self.max_new,
        }

    def next_edge(self, now: datetime, edge: str) -> datetime:
        """The first local start (or end) of the window after ``now``, as UTC, on one of its
        days: a scenario started on a Friday evening gets Monday's window, not Saturday's
        closed one."""
        zone = ZoneInfo(self.timezone)
        minutes = self.start if edge == "start" else self.end
        today = now.astimezone(zone).date()
        for offset in range(10):
            day = today + timedelta(days=offset)
            if day.isoweekday() % 7 not in self.days:
                continue
            # An aware datetime plus a timedelta is wall-clock arithmetic in its zone.
            local = datetime(day.year, day.month, day.day, tzinfo=zone) + timedelta(minutes=minutes)
            if local.astimezone(UTC) > now:
                return local.astimezone(UTC)
        raise AssertionError("no window edge within ten days")


# Two campaigns: New York's working day (its UTC moments move with DST), and Berlin's small
# hours every day (the window holds the hour that is skipped in spring and repeated in autumn).
# Their gaps differ; besides a mailbox of its own each, they share one, from which every email
# leaves at least its own campaign's gap after the one before it, whichever campaign that was.
# New York's window runs to 20:00 so that the two overlap for an hour and a half each weekday.
SHARED_MAILBOX = ("shared", 4)
CAMPAIGNS = {
    "ny": (
        Window("America/New_York", (1, 2, 3, 4, 5), 8 * 60, 20 * 60, 10, 3),
        [("m1", 5), ("m2", 4)],
    ),
    "berlin": (
        Window("Europe/Berlin", (0, 1, 2, 3, 4, 5, 6), 30, 5 * 60 + 30, 0, 5),
        [("m3", 4)],
    ),
}
DST_ZONES = ["America/New_York", "Europe/Berlin"]


# A lead with something left to send: waiting for its first email, or with a time set.
COMPLETED_BUT_WAITING = """
SELECT c.id, cl.lead_id FROM campaigns AS c
JOIN campaign_leads AS cl ON cl.account_id = c.account_id AND cl.campaign_id = c.id
WHERE c.status = 'COMPLETED'
  AND (cl.next_send_at IS NOT NULL
       OR (cl.next_seq = 1 AND cl.hold IS NULL AND cl.status = 'NOT_CONTACTED'))"""


@functools.cache
def dst_changes(zone_name: str, year: int, years: int = 10) -> tuple[datetime, ...]:
    """The UTC instants at which the zone's offset changes, from ``year`` on."""
    zone = ZoneInfo(zone_name)
    changes = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    offset = moment.astimezone(zone).utcoffset()
    for _ in range(years * 366 * 24):
        moment += timedelta(hours=1)
        now_offset = moment.astimezone(zone).utcoffset()
        if now_offset != offset:
            changes.append(moment)
            offset = now_offset
    return tuple(changes)


def value_for(address: str, name: str, version: int) -> str:
    """A field value that names its lead: a value rendered into another lead's email shows."""
    return f"{name[:2]}-{address.split('@')[0]}-{address.split('@')[1][:2]}-{version}"


def templates(variables: tuple[str, ...], seq: int, thread: bool) -> tuple[str, str]:
    """A step whose every variable sits between markers, so an empty value shows as ``FN[]``."""
    parts = [f"{MARKER[v]}[{{{{{v}}}}}]" for v in variables]
    subject = "" if thread else f"S{seq} " + " ".join(parts[:1])
    body = (
        f"B{seq} {{Hi|Hello|Hey}} " + " ".join(parts) + ' NICK[{{ nickname | default: "friend" }}]'
    )
    return subject, body


GUARDED = "{% if company_name %} CO[{{company_name}}]{% endif %}"
Plan = list[tuple[tuple[str, ...], int, bool, bool]]  # variables, delay, thread, variant B


def sequence_body(plan: Plan) -> dict[str, Any]:
    steps = []
    for index, (variables, delay, thread, variant) in enumerate(plan, start=1):
        subject, body = templates(variables, index, thread and index > 1)
        step: dict[str, Any] = {
            "seq_number": index,
            "seq_delay_details": {"delay_in_days": 0 if index == 1 else delay},
            "subject": subject,
            "email_body": body,
        }
        if variant:  # the other variables, and one only where the lead has it
            others = tuple(f for f in FIELDS if f not in variables)
            subject_b, body_b = templates(others, index, False)
            step["seq_variants"] = [
                {"variant_label": "B", "subject": subject_b, "email_body": body_b + GUARDED}
            ]
        steps.append(step)
    return {"sequences": steps}


@dataclass
class Membership:
    created: int  # the model's step counter when the lead joined the campaign
    ignore_block: bool
    ignore_unsubscribe: bool
    user_stopped: bool = False  # the user set a status that is not sendable


@dataclass
class Env:
    """What one backend's run shares across examples."""

    database_url: str
    loop: asyncio.AbstractEventLoop
    app: Any
    client: httpx.AsyncClient
    settings: Settings
    sink: SmtpSink
    timings: list[float] = field(default_factory=list)


class SendingMachine(RuleBasedStateMachine):
    env: Env

    def __init__(self) -> None:
        super().__init__()
        env = self.env
        env.sink.messages.clear()
        env.sink.refuse = {REFUSED}
        env.sink.defer = {DEFERRED}
        self.key = create_account(env.database_url)
        # An hour ahead of the wall clock: the server stamps some "due now" times with it.
        self.now = (datetime.now(UTC) + timedelta(hours=1)).replace(second=0, microsecond=0)
        self.dispatcher = Dispatcher(
            env.app.state.database, env.app.state.vault, env.settings, clock=lambda: self.now
        )
        self.step = 0
        self.campaign_ids: dict[str, int] = {}
        self.active: dict[str, bool] = {}
        self.cap_of_mailbox: dict[int, int] = {}
        self.memberships: dict[tuple[str, str], Membership] = {}
        self.blocks: dict[tuple[str, str], int] = {}  # (kind, value) → step when listed
        self.unsubscribes: dict[str, int] = {}
        self.lead_ids: dict[str, int] = {}
        self.values: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.versions: Counter[str] = Counter()
        self.checked = 0
        self.account_id = 0
        # The first half of a tick, None when no claim awaits its sends. The preconditions
        # ask only whether one does: what it found hangs on the dispatcher's timing, and a
        # precondition that varies between replays of the same choices makes hypothesis fail
        # the run as flaky.
        self.claimed: dict[int, list[Any]] | None = None
        # (campaign, lead, step) → (claimed, sent) for the claims sent by ``send_claimed``: a
        # mailbox's daily cap counts its sends when they were claimed.
        self.split_claims: dict[tuple[int, int, int], tuple[datetime, datetime]] = {}
        self.claimed_at = self.now
        self.autotick = False
        self.rules = []
        self.dst = sorted(c for zone in DST_ZONES for c in dst_changes(zone, self.now.year))

    # --- plumbing ---------------------------------------------------------------------------

    def run(self, coroutine: Any) -> Any:
        return self.env.loop.run_until_complete(coroutine)

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200,), **kw: Any) -> Any:
        response = self.run(
            self.env.client.request(
                method, path, headers={"Authorization": f"Bearer {self.key}"}, **kw
            )
        )
        assert response.status_code in expect, (method, path, response.text)
        return response

    def _mailbox(self, name: str, cap: int) -> int:
        body = self.env.sink.mailbox(f"{name}@sender.example", max_email_per_day=cap)
        box = self.call("POST", "/email-accounts/save", json=body).json()["id"]
        self.cap_of_mailbox[box] = cap
        return box

    def tick_step(self) -> None:
        self.step += 1

    # --- setup ------------------------------------------------------------------------------

    @initialize(autotick=st.booleans())
    def set_up(self, autotick: bool) -> None:
        # When set, the dispatcher also ticks after every step (a sender that keeps up).
        self.autotick = autotick
        shared: int | None = None
        for name, (window, boxes) in CAMPAIGNS.items():
            cid = self.call("POST", "/campaigns", json={"name": name}).json()["id"]
            self.campaign_ids[name] = cid
            if shared is None:
                shared = self._mailbox(f"{SHARED_MAILBOX[0]}-{cid}", SHARED_MAILBOX[1])
            ids = [self._mailbox(f"{box}-{cid}", cap) for box, cap in boxes] + [shared]
            self.call("POST", f"/campaigns/{cid}/email-accounts", json={"email_account_ids": ids})
            self.call("POST", f"/campaigns/{cid}/schedule", json=window.schedule())
            plan: Plan = [(("first_name",), 0, False, False), (("first_name",), 1, True, False)]
            self.call("POST", f"/campaigns/{cid}/sequences", json=sequence_body(plan))
        # Start inside New York's window, so that the first tick has work.
        ny = CAMPAIGNS["ny"][0]
        if not ny.is_open(self.now):
            self.now = ny.next_edge(self.now, "start") + timedelta(minutes=1)
        self.account_id = account_of_campaign(self.env.database_url, self.campaign_ids["ny"])
        for name in CAMPAIGNS:
            self._import(name, ADDRESSES[:6], [{"first_name": True}] * 6, False, False)
            self.start(name)
            assert self.active[name], f"{name} did not start"

    def teardown(self) -> None:
        # The next example's dispatcher serves every account: leave nothing running.
        with contextlib.suppress(Exception):
            for cid in self.campaign_ids.values():
                self.call("POST", f"/campaigns/{cid}/status", json={"status": "STOPPED"})
        with contextlib.suppress(Exception):
            self.run(self.dispatcher.journal.close())

    # --- user actions -----------------------------------------------------------------------

    def _import(
        self,
        name: str,
        addresses: list[str],
        given: list[dict[str, bool]],
        ignore_block: bool,
        ignore_unsubscribe: bool,
    ) -> None:
        """Import ``addresses``; ``given`` says for each which fields it has, and whether the
        value is a real one (True) or empty (False)."""
        self.tick_step()
        lead_list = []
        for address, fields in zip(addresses, given, strict=True):
            self.versions[address] += 1
            lead: dict[str, Any] = {"email": address}
            custom: dict[str, str] = {}
            for f, real in sorted(fields.items()):
                value = value_for(address, f, self.versions[address]) if real else ""
                if real:
                    self.values[(address, f)].add(value)
                if f == "industry":
                    custom[f] = value
                else:
                    lead[f] = value
            if custom:
                lead["custom_fields"] = custom
            lead_list.append(lead)
        body: dict[str, Any] = {
            "lead_list": lead_list,
            "settings": {
                "ignore_global_block_list": ignore_block,
                "ignore_unsubscribe_list": ignore_unsubscribe,
                "ignore_duplicate_leads_in_other_campaign": True,
            },
        }
        cid = self.campaign_ids[name]
        answer = self.call("POST", f"/campaigns/{cid}/leads", json=body).json()
        skipped = {s["email"] for s in answer["skipped_leads"]}
        for address in dict.fromkeys(addresses):
            if address in skipped or (name, address) in self.memberships:
                continue
            # The import's own check: a listed address is added only with the override.
            assert ignore_block or not self._blocked_entry(address), address
            assert ignore_unsubscribe or address not in self.unsubscribes, address
            self.memberships[(name, address)] = Membership(
                self.step, ignore_block, ignore_unsubscribe
            )
        if any(a not in self.lead_ids for a in addresses):
            page = self.call("GET", f"/campaigns/{cid}/leads", params={"limit": 1000}).json()
            self.lead_ids.update({lead["email"]: lead["id"] for lead in page["leads"]})

    @rule(
        name=st.sampled_from(sorted(CAMPAIGNS)),
        picks=st.lists(
            st.tuples(
                st.sampled_from(ADDRESSES),
                st.dictionaries(st.sampled_from(FIELDS), st.booleans()),
            ),
            min_size=1,
            max_size=5,
        ),
        ignore_block=st.booleans(),
        ignore_unsubscribe=st.booleans(),
    )
    def import_leads(
        self,
        name: str,
        picks: list[tuple[str, dict[str, bool]]],
        ignore_block: bool,
        ignore_unsubscribe: bool,
    ) -> None:
        self._import(
            name, [a for a, _ in picks], [g for _, g in picks], ignore_block, ignore_unsubscribe
        )

    def _listed(self, kind: str, value: str) -> None:
        self.blocks.setdefault((kind, value), self.step)

    @rule(
        emails=st.lists(st.sampled_from(ADDRESSES), max_size=2),
        domains=st.lists(st.sampled_from(DOMAINS), max_size=1),
    )
    def block(self, emails: list[str], domains: list[str]) -> None:
        """Addresses, domains, or both in one request (an address and its own domain make two
        entries: deleting one leaves the other blocking)."""
        if not emails and not domains:
            return
        self.tick_step()
        self.call("POST", "/leads/block-list", json={"emails": emails, "domains": domains})
        for address in emails:
            self._listed("email", address)
        for domain in domains:
            self._listed("domain", domain)

    @precondition(lambda self: self.lead_ids)
    @rule(data=st.data())
    def unsubscribe_everywhere(self, data: st.DataObject) -> None:
        self.tick_step()
        address = data.draw(st.sampled_from(sorted(self.lead_ids)))
        self.call("POST", f"/leads/{self.lead_ids[address]}/unsubscribe")
        self._unsubscribed_everywhere(address)

    def _unsubscribed_everywhere(self, address: str) -> None:
        self.unsubscribes.setdefault(address, self.step)
        for (_, member), membership in self.memberships.items():
            if member == address:
                membership.user_stopped = True

    @precondition(lambda self: self.memberships)
    @rule(data=st.data())
    def unsubscribe_from_campaign(self, data: st.DataObject) -> None:
        self.tick_step()
        name, address = data.draw(st.sampled_from(sorted(self.memberships)))
        cid = self.campaign_ids[name]
        self.call("POST", f"/campaigns/{cid}/leads/{self.lead_ids[address]}/unsubscribe")
        self.memberships[(name, address)].user_stopped = True

    @precondition(lambda self: self.blocks)
    @rule(data=st.data())
    def delete_block_entry(self, data: st.DataObject) -> None:
        self.tick_step()
        entries = self.call("GET", "/leads/block-list", params={"limit": 1000}).json()["block_list"]
        if not entries:
            return
        entry = data.draw(st.sampled_from(sorted(entries, key=lambda e: e["id"])))
        self.call("DELETE", f"/leads/block-list/{entry['id']}")
        self.blocks.pop((entry["kind"], entry["value"]), None)

    @precondition(lambda self: self.unsubscribes)
    @rule(data=st.data())
    def delete_unsubscribe_entry(self, data: st.DataObject) -> None:
        self.tick_step()
        entries = self.call("GET", "/leads/unsubscribes", params={"limit": 1000}).json()
        entries = entries["unsubscribes"]
        if not entries:
            return
        entry = data.draw(st.sampled_from(sorted(entries, key=lambda e: e["id"])))
        self.call("DELETE", f"/leads/unsubscribes/{entry['id']}")
        self.unsubscribes.pop(entry["email"], None)

    @precondition(lambda self: self.memberships)
    @rule(data=st.data(), status=st.sampled_from(STATUSES))
    def change_status(self, data: st.DataObject, status: str) -> None:
        self.tick_step()
        name, address = data.draw(st.sampled_from(sorted(self.memberships)))
        cid = self.campaign_ids[name]
        self.call(
            "PATCH",
            f"/campaigns/{cid}/leads/{self.lead_ids[address]}/status",
            json={"status": status},
        )
        self.memberships[(name, address)].user_stopped = status not in SENDABLE
        if status == "UNSUBSCRIBED":
            self._unsubscribed_everywhere(address)
        elif status == "DO_NOT_CONTACT":
            self._listed("email", address)

    @rule(
        name=st.sampled_from(sorted(CAMPAIGNS)),
        plan=st.lists(
            st.tuples(
                st.sets(st.sampled_from(FIELDS)).map(lambda s: tuple(sorted(s))),
                st.sampled_from([0, 0, 1, 2]),
                st.booleans(),
                st.booleans(),
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def edit_sequence(self, name: str, plan: Plan) -> None:
        self.tick_step()
        cid = self.campaign_ids[name]
        self.call("POST", f"/campaigns/{cid}/sequences", json=sequence_body(plan))

    @rule(name=st.sampled_from(sorted(CAMPAIGNS)))
    def pause(self, name: str) -> None:
        self.tick_step()
        self.call("POST", f"/campaigns/{self.campaign_ids[name]}/status", json={"status": "PAUSED"})
        self.active[name] = False

    @rule(name=st.sampled_from(sorted(CAMPAIGNS)))
    def start(self, name: str) -> None:
        self.tick_step()
        cid = self.campaign_ids[name]
        answer = self.call(
            "POST", f"/campaigns/{cid}/status", json={"status": "START"}, expect=(200, 400)
        )
        if answer.status_code == 200:
            self.active[name] = True
        else:  # refused (leads missing a variable): it stays as it was
            assert answer.json()["error"]["code"] == "campaign_not_ready", answer.text

    # --- the clock and the dispatcher -------------------------------------------------------

    # A move of the clock may be followed at once by a tick at the new time (unless half a
    # tick is pending); ``tick`` and ``claim`` also run on their own.

    def _move(self, moment: datetime, then_tick: bool) -> None:
        self.now = max(self.now, moment)
        if then_tick and not self.claimed:
            self._tick()

    def _tick(self) -> None:
        self.run(self.dispatcher.tick(self.now))
        self.run(self._nothing_waits_in_a_completed_campaign())

    async def _nothing_waits_in_a_completed_campaign(self) -> None:
        """Right after a tick: the tick settled every campaign before it claimed, and nothing
        it does gives a completed campaign's leads work again."""
        async with self.dispatcher.database.read() as conn:
            waiting = (await conn.execute(text(COMPLETED_BUT_WAITING))).all()
        assert not waiting, f"completed campaigns with leads still to send: {waiting}"

    @rule(minutes=st.sampled_from([1, 5, 9, 10, 11, 30, 59]), then_tick=st.booleans())
    def minutes_pass(self, minutes: int, then_tick: bool) -> None:
        self._move(self.now + timedelta(minutes=minutes), then_tick)

    @rule(hours=st.sampled_from([1, 2, 5, 8, 13, 23]), then_tick=st.booleans())
    def hours_pass(self, hours: int, then_tick: bool) -> None:
        self._move(self.now + timedelta(hours=hours), then_tick)

    @rule(days=st.integers(1, 3), then_tick=st.booleans())
    def days_pass(self, days: int, then_tick: bool) -> None:
        self._move(self.now + timedelta(days=days), then_tick)

    @rule(
        name=st.sampled_from(sorted(CAMPAIGNS)),
        edge=st.sampled_from(["start", "end"]),
        offset=st.sampled_from([-1, 0, 1]),
        then_tick=st.booleans(),
    )
    def to_window_edge(self, name: str, edge: str, offset: int, then_tick: bool) -> None:
        moment = CAMPAIGNS[name][0].next_edge(self.now, edge) + timedelta(minutes=offset)
        self._move(moment, then_tick)

    @rule(offset=st.sampled_from([-61, -1, 0, 1, 60]), then_tick=st.booleans())
    def to_dst_change(self, offset: int, then_tick: bool) -> None:
        change = next(c for c in self.dst if c + timedelta(minutes=offset) > self.now)
        self._move(change + timedelta(minutes=offset), then_tick)

    @rule(times=st.integers(1, 2))
    def tick(self, times: int) -> None:
        for _ in range(times):
            self._tick()

    # A tick in two halves, with user actions (and the clock) in between: what the sender
    # checks at the moment of sending, it must check then, not only when it claimed.

    @precondition(lambda self: self.claimed is None)
    @rule(minutes=st.sampled_from([0, 1, 10, 11, 60]))
    def claim(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        self.claimed_at = self.now
        self.claimed = self.run(claim(self.dispatcher, self.now))

    @precondition(lambda self: self.claimed is not None)
    @rule(seconds=st.sampled_from([0, 0, 30, 301]))
    def send_claimed(self, seconds: int) -> None:
        # Later than the lease (300 s): a tick meanwhile may have claimed the same leads.
        self.now += timedelta(seconds=seconds)
        lanes, self.claimed = self.claimed, None
        if lanes:
            for lane in lanes.values():
                for one in lane:
                    key = (one.campaign_id, one.lead_id, one.seq_number)
                    self.split_claims[key] = (self.claimed_at, self.now)
            self.run(send(self.dispatcher, lanes))

    # --- the invariants ---------------------------------------------------------------------

    def _blocked_entry(self, address: str) -> list[int]:
        domain = address.split("@")[1]
        return [
            listed
            for key, listed in self.blocks.items()
            if key in (("email", address), ("domain", domain))
        ]

    def _forbidden(self, name: str, address: str) -> str | None:
        """Why no email of this campaign may go to this address now, or None."""
        if not self.active[name]:
            return "campaign not running"
        membership = self.memberships.get((name, address))
        if membership is None:
            return "not in the campaign"
        if membership.user_stopped:
            return "status set by the user is not sendable"
        for listed in self._blocked_entry(address):
            if not membership.ignore_block or listed > membership.created:
                return "blocked"
        listed = self.unsubscribes.get(address)
        if listed is not None and (
            not membership.ignore_unsubscribe or listed > membership.created
        ):
            return "unsubscribed"
        return None

    @invariant()
    def every_email_keeps_the_rules(self) -> None:
        if self.autotick and not self.claimed:
            self._tick()
        received = self.env.sink.received()
        if len(received) == self.checked or not self.account_id:
            return
        rows = message_rows(self.env.database_url, self.account_id)
        matched = check_matched(received, rows, self.env.app.state.vault)
        names = {cid: name for name, cid in self.campaign_ids.items()}
        for got, row in matched[self.checked :]:
            name = names[row.campaign_id]
            why = self._forbidden(name, row.email)
            assert why is None, f"{got.message_id} to {row.email} ({name}) though {why}"
            assert row.sent_at == self.now, (row.sent_at, self.now)
            assert CAMPAIGNS[name][0].is_open(row.sent_at), f"{name}: sent at {row.sent_at}"
            self._check_content(got, row.email, row.seq_number)
        self._check_mailboxes(matched, names)
        self._check_new_leads(matched, names)
        self.checked = len(received)

    def _check_content(self, got: Received, address: str, seq: int) -> None:
        subject, text = str(got.message["Subject"]), got.text()
        body = text.split("\n\n")[0]
        assert body.startswith(f"B{seq} "), (seq, body)
        for part in (subject, body):
            assert not re.search(r"[{}]", part), f"unrendered Liquid or spintax: {part!r}"
            for marker, value in re.findall(r"\b(FN|CO|IND|NICK)\[([^\]]*)\]", part):
                assert value, f"an empty value for {marker} in {part!r} to {address}"
                if marker == "NICK":
                    assert value == "friend", part
                    continue
                name = next(f for f, m in MARKER.items() if m == marker)
                assert value in self.values[(address, name)], (address, marker, value)

    def _claimed_at(self, row: Any) -> datetime:
        """When the email was claimed: when it was sent, unless ``send_claimed`` sent it."""
        split = self.split_claims.get((row.campaign_id, row.lead_id, row.seq_number))
        return split[0] if split is not None and split[1] == row.sent_at else row.sent_at

    def _check_mailboxes(self, matched: list[tuple[Received, Any]], names: dict[int, str]) -> None:
        claims: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        times: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
        for _, row in matched:
            claims[row.email_account_id].append((self._claimed_at(row), names[row.campaign_id]))
            times[row.email_account_id].append((row.sent_at, names[row.campaign_id]))
        for box, claimed in claims.items():
            # Each campaign counts the mailbox's emails, every campaign's, since its own
            # midnight: the shared mailbox is held to its cap in New York's days and Berlin's.
            for moment, name in claimed:
                zone = ZoneInfo(CAMPAIGNS[name][0].timezone)
                local_day = moment.astimezone(zone).date()
                start = datetime.combine(local_day, datetime.min.time(), tzinfo=zone)
                count = sum(1 for other, _ in claimed if start <= other <= moment)
                assert count <= self.cap_of_mailbox[box], (
                    f"mailbox {box}: {count} on {local_day} in {name}'s day, by {moment}"
                )
        for box, sent in times.items():
            # By time, and for one time in the order the sink got them: a mailbox's emails go
            # one after the other over its one session, so that is the order they went in.
            sent.sort(key=lambda one: one[0])
            for (earlier, _), (later, name) in itertools.pairwise(sent):
                gap = timedelta(minutes=CAMPAIGNS[name][0].gap)
                assert later - earlier >= gap, f"mailbox {box}: {earlier}, then {later} ({name})"

    def _check_new_leads(self, matched: list[tuple[Received, Any]], names: dict[int, str]) -> None:
        started: Counter[tuple[str, str]] = Counter()
        for _, row in matched:
            if row.seq_number == 1:
                window = CAMPAIGNS[names[row.campaign_id]][0]
                day = row.sent_at.astimezone(ZoneInfo(window.timezone)).date().isoformat()
                started[(names[row.campaign_id], day)] += 1
        for (name, day), count in started.items():
            assert count <= CAMPAIGNS[name][0].max_new, f"{name}: {count} new leads on {day}"


async def claim(dispatcher: Dispatcher, now: datetime) -> dict[int, list[Any]]:
    """The first half of ``Dispatcher.tick``: the claims, by mailbox (the sends not made)."""
    return await dispatcher._claim_all(now)


async def send(dispatcher: Dispatcher, lanes: dict[int, list[Any]]) -> None:
    """The second half: each mailbox's claimed sends over its session, then the records."""
    await asyncio.gather(*(dispatcher._lane(s[0].mailbox, s) for s in lanes.values()))
    await dispatcher.journal.drain()


@contextlib.contextmanager
def running_app(database_url: str, data_dir: Path) -> Iterator[Env]:
    from openlead.db.migrate import upgrade

    upgrade(database_url)
    loop = asyncio.new_event_loop()
    config = Settings(
        database_url=database_url,
        sender=False,
        rate_limit="off",
        data_dir=data_dir,
        public_url="http://openlead.test",
    )
    app = create_app(config)
    lifespan = app.router.lifespan_context(app)
    loop.run_until_complete(lifespan.__aenter__())
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://openlead.test/api/v1"
    )
    sink = SmtpSink().start()
    try:
        yield Env(database_url, loop, app, client, config, sink)
    finally:
        sink.stop()
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(lifespan.__aexit__(None, None, None))
        loop.close()


def test_sending_keeps_its_invariants(fresh_database_url: str, tmp_path: Path) -> None:
    with running_app(fresh_database_url, tmp_path) as env:
        machine = type("Machine", (SendingMachine,), {"env": env})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=int(os.environ.get("OPENLEAD_SM_EXAMPLES", "60")),
                stateful_step_count=int(os.environ.get("OPENLEAD_SM_STEPS", "30")),
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
