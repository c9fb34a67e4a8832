"""The dispatcher: finds due steps, sends them, and records what happened.

One ``tick`` (docs/sending.md):

1. **Claim**, one short write transaction per running campaign whose window is open: the
   campaign row and its mailboxes are held (PostgreSQL), each mailbox's share of due leads is
   taken with ``FOR UPDATE SKIP LOCKED`` (follow-ups of its own leads first, then new leads
   up to the campaign's daily budget, spread over the mailboxes), and each claimed lead's
   ``next_send_at`` is pushed to the end of a lease: should this worker die, the lead is due
   again then. The mailbox's daily count and gap, and the campaign's new-lead count, are
   reserved in the same transaction, so no other worker can spend them twice.
2. **Send**, one SMTP session per mailbox, all mailboxes at once. Per message: the *mark* (a
   ``messages`` row in state "sending", written only if the lead may still be sent this step
   right now: not blocked, not unsubscribed, still at this step, campaign running), committed
   before any of the message goes; then MAIL FROM and RCPT TO (a refusal of the address is a
   bounce, a deferral a later try; the mark is updated or taken back); then DATA. The next
   message's mark is written while the current one goes.
3. **Record** the outcome (sent, bounced, deferred, uncertain), the lead's next step and its
   events, committed in groups with later marks (``journal``).

The ``messages`` row's unique key (lead, campaign, step) is what makes a step go at most
once whatever crashes: a mark left "sending" by a dead worker becomes "uncertain" when its
lease runs out and is treated as sent, never sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.campaign_leads import repository as campaign_leads
from openlead.clock import utcnow
from openlead.config import Settings
from openlead.db.engine import Database
from openlead.db.errors import describe, momentary
from openlead.leads.lifecycle import (
    HOLD_MISSING,
    HOLD_REJECTED,
    HOLD_RENDER,
    EventType,
    LeadStatus,
)
from openlead.sending import compose, repository, smtp
from openlead.sending import service as mailboxes
from openlead.sending.journal import Journal, Returns
from openlead.sending.repository import DELIVERED, SENDABLE, SENDING, SENT, UNCERTAIN
from openlead.sending.schedule import Schedule, as_utc
from openlead.sending.tally import Tally, quarter_of
from openlead.sequences import repository as sequences
from openlead.sequences.service import Step, Variant, group, render_for_send
from openlead.suppression import service as suppression
from openlead.tracking.tokens import EmailRef, Purpose, Token, issue
from openlead.vault import Vault, VaultError

log = logging.getLogger("openlead.sending")

# A deferred step (4xx), or a message rejected for a reason that is not the address's, is
# tried again after 5 min, 15 min, 45 min, ...; after this many tries a deferral counts as a
# bounce and a rejection stops the lead's sequence (docs/sending.md).
MAX_ATTEMPTS = 8
RETRY_BASE = timedelta(minutes=5)
RETRY_CAP = timedelta(hours=6)
# A mailbox that failed to connect or log in is tried again after 1, 2, 4, ... minutes.
MAILBOX_RETRY_BASE = timedelta(minutes=1)
MAILBOX_RETRY_CAP = timedelta(hours=1)
SOURCE = "sender"


def retry_delay(attempt: int) -> timedelta:
    return min(RETRY_BASE * 3 ** max(attempt - 1, 0), RETRY_CAP)


def mailbox_retry_delay(failures: int) -> timedelta:
    return min(MAILBOX_RETRY_BASE * 2 ** max(failures - 1, 0), MAILBOX_RETRY_CAP)


# --- what a claim hands to the senders ------------------------------------------------------


@dataclass(frozen=True)
class CampaignPlan:
    account_id: int
    campaign_id: int
    schedule: Schedule
    steps: list[Step]
    day: str  # the campaign's calendar day (its new-lead budget)
    track_opens: bool
    track_clicks: bool
    plain_text: bool
    unsubscribe_text: str | None

    def step_after(self, seq_number: int) -> Step | None:
        return next((s for s in self.steps if s.seq_number > seq_number), None)


@dataclass(frozen=True)
class Mailbox:
    account_id: int
    id: int
    from_name: str
    from_email: str
    config: smtp.MailboxConfig
    failing: bool
    failures: int
    quarter: int  # the quarter hour its reservations were made in (openlead.sending.tally)


@dataclass
class Send:
    plan: CampaignPlan
    mailbox: Mailbox
    lead: Row
    seq_number: int
    attempts: int
    is_new: bool  # counted in the campaign's new leads of the day
    history: list[str] = field(default_factory=list)  # earlier Message-IDs, oldest first

    @property
    def account_id(self) -> int:
        return self.plan.account_id

    @property
    def campaign_id(self) -> int:
        return self.plan.campaign_id

    @property
    def lead_id(self) -> int:
        return int(self.lead.id)


@dataclass
class _Ready:
    """A rendered send whose mark has been asked for."""

    send: Send
    draft: compose.Draft
    variant: str
    mark: asyncio.Future[int | None]
    content: bytes


def _schedule(campaign: Row) -> Schedule | None:
    if campaign.schedule_timezone is None:
        return None
    return Schedule(
        timezone=campaign.schedule_timezone,
        days=frozenset(campaign.schedule_days or ()),
        start_minute=campaign.schedule_start_minute,
        end_minute=campaign.schedule_end_minute,
    )


def _plan(campaign: Row, schedule: Schedule, steps: list[Step], now: datetime) -> CampaignPlan:
    tracking = set(campaign.track_settings or ())
    return CampaignPlan(
        account_id=campaign.account_id,
        campaign_id=campaign.id,
        schedule=schedule,
        steps=steps,
        day=schedule.local_day(now),
        track_opens="DONT_TRACK_EMAIL_OPEN" not in tracking,
        track_clicks="DONT_TRACK_LINK_CLICK" not in tracking,
        plain_text=bool(campaign.send_as_plain_text),
        unsubscribe_text=campaign.unsubscribe_text,
    )


def _template(send: Send, label: str) -> Variant:
    """The step's variant as the user wrote it: whether it is HTML is read from this, not
    from what a lead's values made of it."""
    step = next(s for s in send.plan.steps if s.seq_number == send.seq_number)
    return next(v for v in step.variants if v.label == label)


def _spread(leads: Sequence[Row], capacity: dict[int, int], start: int) -> list[tuple[Row, int]]:
    """Hand leads to mailboxes in turn, each up to its capacity, so that new leads spread
    evenly over the campaign's mailboxes."""
    boxes = sorted(capacity)
    if not boxes:
        return []
    turn = start % len(boxes)
    given: list[tuple[Row, int]] = []
    for lead in leads:
        for _ in range(len(boxes)):
            box = boxes[turn]
            turn = (turn + 1) % len(boxes)
            if capacity[box] > 0:
                capacity[box] -= 1
                given.append((lead, box))
                break
        else:
            break
    return given


# On PostgreSQL the next claim is made when a claim has this share of its sends left: enough
# to cover the claim's own time at full speed, small enough that the sends it queues wait only
# briefly within their lease. On SQLite it waits for them all: a claim there holds the one
# writer that the sends' marks wait for, and claiming ahead was slower (docs/performance.md).
NEXT_CLAIM_AT = 1 / 8


class _Generation:
    """The sends of one claim, over all its mailboxes: says when few are left to take (when
    ``ahead``), or when its every lane has finished."""

    def __init__(self, sends: int, lanes: int, ahead: bool = True) -> None:
        self.left = sends
        self.low_water = int(sends * NEXT_CLAIM_AT) if ahead else -1
        self.lanes = lanes
        self.running_low = asyncio.Event()

    def taken(self) -> None:
        self.left -= 1
        if self.left <= self.low_water:
            self.running_low.set()

    def lane_done(self) -> None:
        self.lanes -= 1
        if self.lanes <= 0:
            self.running_low.set()


class Dispatcher:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.vault = vault
        self.settings = settings
        self.clock = clock
        self.journal = Journal(database)
        self.lease = timedelta(seconds=settings.sender_lease_seconds)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._turn = 0

    # --- the loop ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event) -> None:
        """Claim and send until ``stopping`` is set.

        On PostgreSQL, unlike ``tick``, the next claim does not wait for the sends of the one
        before: it is made when that claim has few sends left (``_Generation``), so that no
        mailbox stands idle while the claim runs, and its sends follow each mailbox's current
        ones over the same one session at a time. A claim that found nothing is followed by a
        pause.
        """
        log.info("dispatcher %s started", self.worker)
        lanes: dict[int, asyncio.Task[smtp.MailboxUnavailable | None]] = {}
        try:
            while not stopping.is_set():
                generation = await self._claim_generation(lanes, stopping)
                if generation is not None:
                    await generation.running_low.wait()
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stopping.wait(), timeout=self.settings.sender_interval_seconds
                    )
        finally:
            await asyncio.gather(*lanes.values(), return_exceptions=True)
            await self.journal.close()
            log.info("dispatcher %s stopped", self.worker)

    async def tick(self, now: datetime | None = None) -> int:
        """Claim what is due now, send it, record it. Returns the number of sends tried."""
        lanes = await self._claim_all(now or self.clock())
        if not lanes:
            return 0
        outcomes = await asyncio.gather(
            *(self._lane(sends[0].mailbox, sends) for sends in lanes.values()),
            return_exceptions=True,
        )
        await self.journal.drain()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                # Its claimed leads are due again when their lease runs out; nothing is lost.
                log.error("a mailbox's sends stopped", exc_info=outcome)
        return sum(len(sends) for sends in lanes.values())

    async def _claim_all(self, now: datetime) -> dict[int, list[Send]]:
        """Every running campaign's due sends, by mailbox."""
        await self._settle_completion(now)
        async with self.database.read() as conn:
            running = await repository.running_campaigns(conn)
        lanes: dict[int, list[Send]] = defaultdict(list)
        for account_id, campaign_id in running:
            for send in await self._claim(account_id, campaign_id, now):
                lanes[send.mailbox.id].append(send)
        return lanes

    async def _settle_completion(self, now: datetime) -> None:
        """Campaigns with nothing left to send are COMPLETED, and ACTIVE again once they have
        (docs/sending.md): before the claim, so that one opened again is claimed at once."""
        async with self.database.write() as conn:
            changed = await repository.settle_completion(conn, now)
        for account_id, campaign_id, status in changed:
            log.info("campaign %s of account %s is now %s", campaign_id, account_id, status)

    async def _claim_generation(
        self,
        lanes: dict[int, asyncio.Task[smtp.MailboxUnavailable | None]],
        stopping: asyncio.Event,
    ) -> _Generation | None:
        """Claim, and queue each mailbox's sends behind its lane in flight; None when
        nothing was due (or the claim failed)."""
        # A lane already over when the claim starts has committed its mailbox's failure, if
        # it failed: the claim saw it. Only one still going can fail the sends claimed now.
        going = {box: lane for box, lane in lanes.items() if not lane.done()}
        try:
            claimed = await self._claim_all(self.clock())
        except Exception as exc:
            reason = momentary(exc)
            if reason is not None:
                log.warning(
                    "the database is %s (%s); claiming again next tick", reason, describe(exc)
                )
            else:
                log.exception("dispatcher tick failed")
            return None
        if not claimed:
            return None
        total = sum(len(sends) for sends in claimed.values())
        generation = _Generation(total, len(claimed), ahead=not self.database.is_sqlite)
        for box, sends in claimed.items():
            lanes[box] = asyncio.create_task(
                self._follow(going.get(box), sends, generation, stopping)
            )
        return generation

    async def _follow(
        self,
        before: asyncio.Task[smtp.MailboxUnavailable | None] | None,
        sends: list[Send],
        generation: _Generation,
        stopping: asyncio.Event,
    ) -> smtp.MailboxUnavailable | None:
        """A mailbox's sends of one claim, once its sends of the claim before are done."""
        mailbox = sends[0].mailbox
        try:
            failed = None
            if before is not None:
                await asyncio.wait([before])
                if not before.cancelled() and before.exception() is None:
                    failed = before.result()
            if failed is not None:
                # Claimed before the mailbox failed: its sends wait for it as the others do.
                await self._give_up(mailbox, [], deque(sends), failed)
                return failed
            if stopping.is_set():
                now = self.clock()
                for send in sends:
                    self.journal.post(_release(send, now))
                return None
            return await self._lane(mailbox, sends, generation.taken)
        except Exception:
            # Its claimed leads are due again when their lease runs out; nothing is lost.
            log.exception("a mailbox's sends stopped")
            return None
        finally:
            generation.lane_done()

    # --- claiming ---------------------------------------------------------------------------

    def _mailbox(self, row: Row, now: datetime) -> Mailbox | None:
        try:
            config = mailboxes.mailbox_config(row, self.vault, self.settings.smtp_timeout_seconds)
        except VaultError:
            log.error("mailbox %s: its password cannot be decrypted with this secret key", row.id)
            return None
        return Mailbox(
            account_id=row.account_id,
            id=row.id,
            from_name=row.from_name,
            from_email=row.from_email,
            config=config,
            failing=row.state != "OK",
            failures=row.failures,
            quarter=quarter_of(now),
        )

    def _capacity(self, row: Row, gap_minutes: int, day_start: datetime, now: datetime) -> int:
        """How many sends the mailbox may take now: what is left of its cap on the claiming
        campaign's day (counting every campaign's sends), one at most when a gap applies."""
        if row.state != "OK" and row.retry_at is not None and as_utc(row.retry_at) > now:
            return 0
        used = Tally.read(row.sent_log).since(day_start)
        left = max(row.max_email_per_day - used, 0)
        if gap_minutes > 0:
            # The gap runs from the mailbox's last send, whichever campaign it was for.
            last = row.last_claimed_at
            free = last is None or as_utc(last) + timedelta(minutes=gap_minutes) <= now
            return min(left, 1 if free else 0)
        return min(left, self.settings.sender_batch)

    async def _claim(self, account_id: int, campaign_id: int, now: datetime) -> list[Send]:
        async with self.database.write() as conn:
            campaign = await repository.lock_running_campaign(conn, account_id, campaign_id)
            if campaign is None:
                return []
            schedule = _schedule(campaign)
            if schedule is None or not schedule.is_open(now):
                return []
            starts = campaign.schedule_starts_at
            if starts is not None and as_utc(starts) > now:
                return []
            steps = group(await sequences.steps(conn, account_id, campaign_id))
            if not steps:
                return []
            plan = _plan(campaign, schedule, steps, now)
            rows = {
                r.id: r
                for r in await repository.lock_campaign_mailboxes(conn, account_id, campaign_id)
            }
            boxes = {box: m for box, r in rows.items() if (m := self._mailbox(r, now))}
            day_start = schedule.day_start(now)
            capacity = {
                box: self._capacity(rows[box], campaign.min_time_btw_emails, day_start, now)
                for box in boxes
            }
            claimed = await self._choose(conn, campaign, plan, capacity, now)
            if not claimed:
                return []
            await repository.claim_leads(
                conn,
                account_id,
                campaign_id,
                [(lead, box) for lead, box, _ in claimed],
                now + self.lease,
            )
            await self._reserve(conn, campaign, plan, rows, claimed, now)
            return await self._sends(conn, plan, boxes, claimed, now)

    async def _choose(
        self,
        conn: AsyncConnection,
        campaign: Row,
        plan: CampaignPlan,
        capacity: dict[int, int],
        now: datetime,
    ) -> list[tuple[int, int, bool]]:
        """(lead, mailbox, whether it is a new lead) for every lead this claim takes: each
        mailbox's own due leads first, then leads without one, new leads last and only up to
        the campaign's budget for the day."""
        a, c = plan.account_id, plan.campaign_id
        chosen: list[tuple[int, int, bool]] = []
        for box in sorted(capacity):
            due = await repository.due_leads(conn, a, c, box, now, capacity[box])
            capacity[box] -= len(due)
            chosen += [(row.lead_id, box, False) for row in due]
        room = sum(capacity.values())
        if room <= 0:
            return chosen
        used = campaign.new_leads_today if campaign.new_leads_day == plan.day else 0
        budget = max(campaign.max_new_leads_per_day - used, 0)
        unassigned = await repository.due_leads(conn, a, c, None, now, room)
        # A lead without a mailbox that has had no email yet is a new lead too.
        waiting = [r for r in unassigned if r.next_seq != 1 or budget > 0]
        new_waiting = sum(1 for r in waiting if r.next_seq == 1)
        fresh_room = min(budget - new_waiting, room - len(waiting))
        fresh = await repository.fresh_leads(conn, a, c, max(fresh_room, 0))
        self._turn += 1
        for row, box in _spread([*waiting, *fresh], capacity, self._turn):
            new = row.next_seq == 1
            if new:
                if budget <= 0:
                    continue
                budget -= 1
            chosen.append((row.lead_id, box, new))
        return chosen

    async def _reserve(
        self,
        conn: AsyncConnection,
        campaign: Row,
        plan: CampaignPlan,
        rows: dict[int, Row],
        claimed: list[tuple[int, int, bool]],
        now: datetime,
    ) -> None:
        per_box: dict[int, int] = defaultdict(int)
        for _, box, _ in claimed:
            per_box[box] += 1
        for box, count in sorted(per_box.items()):
            tally = Tally.read(rows[box].sent_log).add(now, count)
            await repository.reserve_mailbox(conn, plan.account_id, box, tally.stored(), now)
        new = sum(1 for _, _, is_new in claimed if is_new)
        if new:
            used = campaign.new_leads_today if campaign.new_leads_day == plan.day else 0
            await repository.reserve_new_leads(
                conn, plan.account_id, plan.campaign_id, plan.day, used + new
            )

    async def _sends(
        self,
        conn: AsyncConnection,
        plan: CampaignPlan,
        boxes: dict[int, Mailbox],
        claimed: list[tuple[int, int, bool]],
        now: datetime,
    ) -> list[Send]:
        """The claimed leads, ready to render; a lead whose step already has a message (a
        worker died after marking it, or the same step came round again) is settled here
        instead of being sent."""
        a, c = plan.account_id, plan.campaign_id
        ids = [lead for lead, _, _ in claimed]
        profiles = {row.id: row for row in await repository.leads_to_send(conn, a, c, ids)}
        earlier: dict[int, list[Row]] = defaultdict(list)
        for row in await repository.messages_of(conn, a, c, ids):
            earlier[row.lead_id].append(row)
        sends: list[Send] = []
        returns = Returns()
        for lead_id, box, is_new in claimed:
            lead = profiles.get(lead_id)
            if lead is None:
                continue
            send = Send(plan, boxes[box], lead, lead.next_seq or 0, lead.attempts, is_new)
            if lead.next_seq is None:  # nothing left to send: not due any more
                _give_back(send, returns)
                await repository.release_mailbox_leads(
                    conn, a, c, [lead_id], {"next_send_at": None}
                )
                continue
            this_step = next((m for m in earlier[lead_id] if m.seq_number == send.seq_number), None)
            if this_step is not None:
                await self._settle_existing(conn, send, this_step, returns, now)
                continue
            send.history = [
                m.message_id
                for m in earlier[lead_id]
                if m.state in DELIVERED and m.seq_number < send.seq_number
            ]
            sends.append(send)
        await returns.apply(conn)
        return sends

    async def _settle_existing(
        self, conn: AsyncConnection, send: Send, message: Row, returns: Returns, now: datetime
    ) -> None:
        _give_back(send, returns)
        if message.state == SENDING and as_utc(message.lease_until) >= now:
            return  # another worker is sending it; its lease covers the lead too
        if message.state == SENDING:
            expired = await repository.expire_message(
                conn, send.account_id, send.campaign_id, send.lead_id, send.seq_number, now
            )
            if expired is not None:
                await _advance(conn, send, expired.message_id, expired.variant_label, now, True)
            return
        if message.state in DELIVERED:
            await _advance(conn, send, message.message_id, None, now, False)
        else:  # bounced: the sequence is over
            await _set(conn, send, {"next_seq": None, "next_send_at": None, "updated_at": now})

    # --- sending ----------------------------------------------------------------------------

    async def _lane(
        self, mailbox: Mailbox, sends: list[Send], taken: Callable[[], None] | None = None
    ) -> smtp.MailboxUnavailable | None:
        """One mailbox's sends, in order, over one session. The next message's mark is being
        written while the current one goes, so the session seldom waits for a commit. Returns
        the failure that stopped the mailbox, if one did; ``taken`` is told of every send
        taken from the queue."""
        queue = deque(sends)
        session: aiosmtplib.SMTP | None = None
        ahead: _Ready | None = None
        try:
            while queue or ahead is not None:
                current, ahead = ahead or self._next_ready(queue, taken), None
                if current is None:
                    continue
                if session is None or not session.is_connected:
                    try:
                        session = await smtp.open_session(mailbox.config)
                    except smtp.MailboxUnavailable as exc:
                        await self._give_up(mailbox, [current], queue, exc)
                        return exc
                    if mailbox.failing:
                        self.journal.post(_mailbox_recovered(mailbox))
                        mailbox = replace(mailbox, failing=False, failures=0)
                ahead = self._next_ready(queue, taken)
                try:
                    await self._deliver(session, current)
                except smtp.MailboxUnavailable as exc:
                    await self._give_up(mailbox, [current, ahead], queue, exc)
                    return exc
        finally:
            if session is not None:
                await smtp.close_session(session)
        return None

    def _next_ready(
        self, queue: deque[Send], taken: Callable[[], None] | None = None
    ) -> _Ready | None:
        """The next send of the queue that is to go, its mark on its way; the ones before it
        that are not to go are settled."""
        while queue:
            send = queue.popleft()
            if taken is not None:
                taken()
            ready = self._prepare(send)
            if ready is not None:
                return ready
        return None

    def _prepare(self, send: Send) -> _Ready | None:
        """Render the step and ask for its mark; None when it is not to go now (and then what
        happens to the lead instead is on its way to the journal)."""
        now = self.clock()
        rendered = render_for_send(send.plan.steps, send.lead, send.seq_number)
        if rendered is None:
            self.journal.post(_finish(send, now))
            return None
        if rendered.missing or rendered.error:
            reason = HOLD_MISSING if rendered.missing else HOLD_RENDER
            self.journal.post(_hold(send, reason, now))
            return None
        if not send.plan.schedule.is_open(now):
            self.journal.post(_release(send, now))
            return None
        assert rendered.subject is not None and rendered.email_body is not None
        draft = compose.Draft(
            from_name=send.mailbox.from_name,
            from_email=send.mailbox.from_email,
            to_email=send.lead.email,
            to_name=" ".join(p for p in (send.lead.first_name, send.lead.last_name) if p),
            subject=rendered.subject,
            body=rendered.email_body,
            body_is_html=compose.is_html(_template(send, rendered.label).email_body),
            message_id=compose.new_message_id(send.mailbox.from_email),
            sent_at=now,
            references=tuple(send.history),
        )
        # Written now, while the message in front of it goes: its mark names the links that
        # its click tokens may lead to, found in the same pass.
        composed = compose.compose(draft, self._tracking(send))
        mark = _Mark(send, draft.message_id, rendered.label, composed.links, now, now + self.lease)
        marked = self.journal.submit_in(_marks, mark, urgent=True)
        return _Ready(send, draft, rendered.label, marked, composed.content)

    async def _deliver(self, session: aiosmtplib.SMTP, ready: _Ready) -> None:
        """Once its mark is written: offer the message, hand it over, record what happened."""
        send, draft = ready.send, ready.draft
        mark = await ready.mark
        if mark is None:
            return
        now = draft.sent_at
        reply = await smtp.offer(session, send.mailbox.from_email, send.lead.email)
        if reply.verdict != "accepted":
            self.journal.post(_failed(send, reply, mark, now))
            return
        reply = await smtp.hand_over(session, ready.content)
        if reply.verdict == "accepted":
            self.journal.post_in(
                _sents, _Sent(send, mark, draft.message_id, ready.variant, self.clock())
            )
        elif reply.verdict == "uncertain":
            self.journal.post(_uncertain(send, mark, draft.message_id, ready.variant, now))
            session.close()
        else:
            self.journal.post(_failed(send, reply, mark, now))

    async def _give_up(
        self,
        mailbox: Mailbox,
        readies: list[_Ready | None],
        queue: deque[Send],
        exc: smtp.MailboxUnavailable,
    ) -> None:
        """The mailbox failed: its marks not sent are taken back, its sends wait."""
        marked: list[tuple[Send, int]] = []
        for ready in readies:
            if ready is not None and (mark := await ready.mark) is not None:
                marked.append((ready.send, mark))
        waiting = [send for send, _ in marked] + list(queue)
        # Committed before the lane ends, so that the next claim sees the mailbox failing.
        await self.journal.run(_mailbox_failed(mailbox, waiting, marked, exc, self.clock()))

    def _tracking(self, send: Send) -> compose.Tracking:
        ref = EmailRef(send.account_id, send.campaign_id, send.lead_id, send.seq_number)
        base = self.settings.link_base

        def url(path: str, purpose: Purpose, link: int = 0) -> str:
            return f"{base}/{path}/{issue(self.vault, Token(purpose, ref, link))}"

        plan = send.plan
        in_html = not plan.plain_text
        return compose.Tracking(
            unsubscribe_url=url("u", Purpose.UNSUBSCRIBE),
            unsubscribe_text=plan.unsubscribe_text,
            plain_text=plan.plain_text,
            open_pixel_url=url("t/o", Purpose.OPEN) if in_html and plan.track_opens else None,
            click_url=(
                (lambda index: url("t/c", Purpose.CLICK, index))
                if in_html and plan.track_clicks
                else None
            ),
        )


def _give_back(send: Send, returns: Returns) -> None:
    """The reservations of a claimed send that will not be made."""
    returns.mailbox(send.account_id, send.mailbox.id, send.mailbox.quarter)
    if send.is_new:
        returns.new_lead(send.account_id, send.campaign_id, send.plan.day)


# --- the journal's operations ---------------------------------------------------------------
# Each function below returns an operation: a coroutine function of (connection, returns)
# that the journal runs inside one of its transactions.


async def _set(conn: AsyncConnection, send: Send, values: dict[str, Any]) -> bool:
    """Update the send's membership while it is still at the send's step."""
    return await repository.move_on(
        conn, send.account_id, send.campaign_id, send.lead_id, send.seq_number, values
    )


def _events(send: Send, *events: tuple[EventType, dict[str, Any]]) -> list[tuple]:
    return [(send.lead_id, send.campaign_id, kind.value, data) for kind, data in events]


async def _move_on(
    conn: AsyncConnection, send: Send, values_for: Callable[[Row], dict[str, Any]]
) -> tuple[Row, str] | None:
    """Move the membership on from this step, with values chosen from its current state;
    (that state, the status after), or None when it is no longer at this step."""
    a, c, lead, seq = send.account_id, send.campaign_id, send.lead_id, send.seq_number
    current = await repository.lock_membership(conn, a, c, lead)
    if current is None or current.next_seq != seq:
        return None
    values = values_for(current)
    if not await _set(conn, send, values):
        return None
    return current, values.get("status", current.status)


def _status_change(current: Row, status: str, source: str) -> list[tuple[EventType, dict]]:
    if status == current.status:
        return []
    return [(EventType.STATUS_CHANGED, {"from": current.status, "to": status, "source": source})]


def _after_send(send: Send, status: str, now: datetime) -> dict[str, Any]:
    """The membership's new values once its step went: the next step and when it is due, or
    the sequence complete; IN_PROGRESS or COMPLETED unless the lead's status says otherwise."""
    following = send.plan.step_after(send.seq_number)
    if status in SENDABLE:
        status = LeadStatus.IN_PROGRESS.value if following else LeadStatus.COMPLETED.value
    return {
        "next_seq": following.seq_number if following else None,
        "next_send_at": now + timedelta(days=following.delay_in_days) if following else None,
        "last_sent_at": now,
        "attempts": 0,
        "hold": None,
        "status": status,
        "updated_at": now,
    }


def _sent_events(
    send: Send,
    message_id: str,
    variant: str | None,
    uncertain: bool,
    current: Row,
    status: str,
) -> list[tuple]:
    sent: dict[str, Any] = {
        "seq_number": send.seq_number,
        "variant_label": variant,
        "email_account_id": send.mailbox.id,
        "message_id": message_id,
    }
    if uncertain:
        sent["uncertain"] = True
    return _events(send, (EventType.EMAIL_SENT, sent), *_status_change(current, status, SOURCE))


async def _advance(
    conn: AsyncConnection,
    send: Send,
    message_id: str,
    variant: str | None,
    now: datetime,
    uncertain: bool,
) -> None:
    """The step went (or may have): on to the next one, or the sequence is complete."""
    moved = await _move_on(conn, send, lambda current: _after_send(send, current.status, now))
    if moved is not None:
        events = _sent_events(send, message_id, variant, uncertain, *moved)
        await campaign_leads.record_events(conn, send.account_id, events, now)


@dataclass(frozen=True)
class _Mark:
    """A message about to go: written "sending" only if it may go now."""

    send: Send
    message_id: str
    variant: str
    links: list[str]
    now: datetime
    lease_until: datetime

    def row(self) -> dict[str, Any]:
        send = self.send
        return {
            "account_id": send.account_id,
            "campaign_id": send.campaign_id,
            "lead_id": send.lead_id,
            "seq_number": send.seq_number,
            "variant_label": self.variant,
            "email_account_id": send.mailbox.id,
            "message_id": self.message_id,
            "lease_until": self.lease_until,
            "links": self.links,
            "created_at": self.now,
        }


async def _marks(conn: AsyncConnection, returns: Returns, marks: list[_Mark]) -> list[int | None]:
    """Every mailbox's next message marked in one statement; each its row id, or None (then
    the lead is left where it belongs)."""
    ids = await repository.mark_many(conn, [mark.row() for mark in marks])
    answers: list[int | None] = []
    for mark in marks:
        send = mark.send
        answer = ids.get((send.campaign_id, send.lead_id, send.seq_number))
        if answer is None:
            await _not_sendable(conn, send, returns, mark.now)
        answers.append(answer)
    return answers


async def _not_sendable(conn: AsyncConnection, send: Send, returns: Returns, now: datetime) -> None:
    """The mark was refused: find out why and leave the lead where it belongs."""
    a, c, lead, seq = send.account_id, send.campaign_id, send.lead_id, send.seq_number
    _give_back(send, returns)
    state = await repository.why_not_sendable(conn, a, c, lead, seq)
    if state is None or state.next_seq != seq:
        return  # gone from the campaign, or moved on meanwhile
    if state.message_state is not None:
        return  # another worker holds this step; its claim's lease covers the lead
    if state.status not in SENDABLE:
        values: dict[str, Any] = {"next_send_at": None, "updated_at": now}
    elif state.blocked or state.unsubscribed:
        values = {"next_send_at": None, "hold": suppression.HOLD, "updated_at": now}
    else:  # the campaign was paused or stopped: due again as soon as it runs
        values = _due_again(send, now)
    await _set(conn, send, values)


def _due_again(send: Send, now: datetime) -> dict[str, Any]:
    """A claimed send given back, due again at once. A new lead's place in the day's budget
    was given back too: it leaves its mailbox, so that the next claim counts it as new again
    (a lead of a mailbox is one that has started)."""
    values: dict[str, Any] = {"next_send_at": now}
    if send.is_new:
        values["email_account_id"] = None
    return values


@dataclass(frozen=True)
class _Sent:
    """A message the server took."""

    send: Send
    mark: int
    message_id: str
    variant: str
    now: datetime


def _key(record: _Sent) -> tuple[int, int, int]:
    return record.send.account_id, record.send.campaign_id, record.send.lead_id


async def _sents(conn: AsyncConnection, _returns: Returns, records: list[_Sent]) -> list[None]:
    """Every message the server took since the last group, recorded in a few statements: the
    message "sent", its lead on to its next step, the events."""
    moved = await repository.mark_many_sent(
        conn, [(r.send.account_id, r.mark, r.now) for r in records]
    )
    for record in records:
        if record.mark not in moved:
            # Its lease ran out and another worker settled it as uncertain: it was sent.
            await repository.set_message_state(
                conn,
                record.send.account_id,
                record.mark,
                SENT,
                record.now,
                from_states=(UNCERTAIN,),
            )
    mine = [r for r in records if r.mark in moved]
    current = await repository.memberships_of(conn, [_key(r) for r in mine])
    moves, events = [], []
    for record in mine:
        send, membership = record.send, current.get(_key(record))
        if membership is None or membership.next_seq != send.seq_number:
            continue
        values = _after_send(send, membership.status, record.now)
        moves.append(
            (
                values["next_seq"],
                values["next_send_at"],
                record.now,
                values["status"],
                *_key(record),
                send.seq_number,
            )
        )
        for event in _sent_events(
            send, record.message_id, record.variant, False, membership, values["status"]
        ):
            events.append((send.account_id, *event, record.now))
    await repository.move_many_on(conn, moves)
    await campaign_leads.record_events_of(conn, events)
    return [None] * len(records)


def _uncertain(send: Send, mark: int, message_id: str, variant: str, now: datetime) -> Any:
    async def operation(conn: AsyncConnection, _returns: Returns) -> None:
        if await repository.set_message_state(conn, send.account_id, mark, "uncertain", now):
            await _advance(conn, send, message_id, variant, now, True)

    return operation


def _failed(send: Send, reply: smtp.Reply, mark: int | None, now: datetime) -> Any:
    """A refusal: a bounce when it is about the address; otherwise a later try, and when the
    tries run out a bounce if the server kept deferring, the sequence stopped (the address
    not blocked) if it kept rejecting the message."""

    async def operation(conn: AsyncConnection, returns: Returns) -> None:
        attempts = send.attempts + 1
        if reply.verdict == "permanent" or (
            reply.verdict == "temporary" and attempts >= MAX_ATTEMPTS
        ):
            await _bounce(conn, send, reply, mark, now)
            return
        if mark is not None:
            await repository.forget_message(conn, send.account_id, mark)
        returns.mailbox(send.account_id, send.mailbox.id, send.mailbox.quarter)
        if attempts >= MAX_ATTEMPTS:
            await _stop_rejected(conn, send, reply, attempts, now)
            return
        values = {"next_send_at": now + retry_delay(attempts), "attempts": attempts}
        await _set(conn, send, values)

    return operation


def _refusal(send: Send, reply: smtp.Reply) -> dict[str, Any]:
    """The EMAIL_BOUNCED event's data for a refusal of the step's message."""
    return {
        "seq_number": send.seq_number,
        "email_account_id": send.mailbox.id,
        "smtp_code": reply.code,
        "smtp_message": reply.message,
        "permanent": reply.verdict == "permanent",
    }


async def _stop_rejected(
    conn: AsyncConnection, send: Send, reply: smtp.Reply, attempts: int, now: datetime
) -> None:
    """The recipient's server refused the message every time, for the sender's or the
    content's sake: the lead's sequence stops, its status stays, and its address is left off
    the block list, since nothing says it is bad (docs/sending.md)."""
    values = {
        "next_seq": None,
        "next_send_at": None,
        "hold": HOLD_REJECTED,
        "attempts": attempts,
        "updated_at": now,
    }
    if not await _set(conn, send, values):
        return
    events = _events(send, (EventType.EMAIL_BOUNCED, _refusal(send, reply) | {"rejected": True}))
    await campaign_leads.record_events(conn, send.account_id, events, now)


async def _bounce(
    conn: AsyncConnection, send: Send, reply: smtp.Reply, mark: int | None, now: datetime
) -> None:
    """A permanent refusal of the address: BOUNCED, the sequence over, the address blocked."""
    error = f"{reply.code or ''} {reply.message}".strip()
    if mark is not None:
        await repository.set_message_state(conn, send.account_id, mark, "bounced", now, error)
    else:
        values = {
            "variant_label": "",
            "email_account_id": send.mailbox.id,
            "message_id": "",
            "links": [],
            "error": error,
            "created_at": now,
        }
        await repository.insert_bounced(
            conn, send.account_id, send.campaign_id, send.lead_id, send.seq_number, values
        )

    def values_for(current: Row) -> dict[str, Any]:
        status = LeadStatus.BOUNCED.value if current.status in SENDABLE else current.status
        return {"next_seq": None, "next_send_at": None, "status": status, "updated_at": now}

    moved = await _move_on(conn, send, values_for)
    if moved is None:
        return
    events = [(EventType.EMAIL_BOUNCED, _refusal(send, reply)), *_status_change(*moved, "bounce")]
    await campaign_leads.record_events(conn, send.account_id, _events(send, *events), now)
    await suppression.block(conn, send.account_id, [send.lead.email], [], source="bounce")


def _finish(send: Send, now: datetime) -> Any:
    """The lead is at a step the campaign no longer has: its sequence is complete."""

    def values_for(current: Row) -> dict[str, Any]:
        status = current.status
        if status == LeadStatus.IN_PROGRESS.value:
            status = LeadStatus.COMPLETED.value
        return {"next_seq": None, "next_send_at": None, "status": status, "updated_at": now}

    async def operation(conn: AsyncConnection, returns: Returns) -> None:
        _give_back(send, returns)
        moved = await _move_on(conn, send, values_for)
        if moved is not None:
            events = _events(send, *_status_change(*moved, SOURCE))
            await campaign_leads.record_events(conn, send.account_id, events, now)

    return operation


def _hold(send: Send, reason: str, now: datetime) -> Any:
    async def operation(conn: AsyncConnection, returns: Returns) -> None:
        _give_back(send, returns)
        values = {"next_send_at": None, "hold": reason, "updated_at": now}
        await _set(conn, send, values)

    return operation


def _release(send: Send, now: datetime) -> Any:
    """Not now after all (the window closed while the lane ran): due again at once."""

    async def operation(conn: AsyncConnection, returns: Returns) -> None:
        _give_back(send, returns)
        await _set(
            conn,
            send,
            _due_again(send, now),
        )

    return operation


def _mailbox_failed(
    mailbox: Mailbox,
    sends: list[Send],
    marked: list[tuple[Send, int]],
    exc: smtp.MailboxUnavailable,
    now: datetime,
) -> Any:
    """The mailbox could not connect or log in: it is marked failing and tried again later;
    its follow-ups wait for it, its new leads go back to be given to another mailbox. No lead
    is marked bounced."""
    failures = mailbox.failures + 1
    retry_at = now + mailbox_retry_delay(failures)
    log.warning("mailbox %s failing: %s", mailbox.id, exc)

    async def operation(conn: AsyncConnection, returns: Returns) -> None:
        await repository.set_mailbox_health(
            conn, mailbox.account_id, mailbox.id, "FAILING", str(exc), retry_at, failures
        )
        for send, mark in marked:  # nothing of these went: the step may go later
            await repository.forget_message(conn, send.account_id, mark)
        by_campaign: dict[tuple[int, bool], list[int]] = defaultdict(list)
        for send in sends:
            _give_back(send, returns)
            never_tried = send.seq_number == 1 and send.attempts == 0
            by_campaign[(send.campaign_id, never_tried)].append(send.lead_id)
        for (campaign_id, never_tried), lead_ids in by_campaign.items():
            values: dict[str, Any] = (
                {"next_send_at": None, "email_account_id": None}
                if never_tried
                else {"next_send_at": retry_at}
            )
            await repository.release_mailbox_leads(
                conn, mailbox.account_id, campaign_id, lead_ids, values
            )

    return operation


def _mailbox_recovered(mailbox: Mailbox) -> Any:
    async def operation(conn: AsyncConnection, _returns: Returns) -> None:
        await repository.set_mailbox_health(
            conn, mailbox.account_id, mailbox.id, "OK", None, None, 0
        )

    return operation
