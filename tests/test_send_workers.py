"""``openlead worker`` processes against a real SMTP server: killed in the middle of a batch
(both backends), and three at once on one PostgreSQL database.

The data is made through the API of a server whose own sender is off; only the workers send.
"""

from __future__ import annotations

import os
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sending_support import ALWAYS as OPEN_ALWAYS
from tests.sending_support import (
    Worker,
    account_of_campaign,
    check_matched,
    message_rows,
    vault_for,
    wait_until,
)
from tests.smtp_sink import SmtpSink
from tests.support import Api, Server, query, serving

ALWAYS = {**OPEN_ALWAYS, "max_new_leads_per_day": 1_000_000}
TWO_STEPS = {
    "sequences": [
        {
            "seq_number": 1,
            "seq_delay_details": {"delay_in_days": 0},
            "subject": "Hello {{first_name}}",
            "email_body": "Step one for {{first_name}}.",
        },
        {
            "seq_number": 2,
            "seq_delay_details": {"delay_in_days": 0},
            "subject": "",
            "email_body": "Step two for {{first_name}}.",
        },
    ]
}


@dataclass
class Setup:
    server: Server
    api: Api
    sink: SmtpSink
    data_dir: Path
    campaign_id: int
    account_id: int
    leads: int
    steps: int

    def worker(self, name: str, lease_seconds: float = 300) -> Worker:
        return Worker(
            self.server.database_url,
            self.data_dir,
            self.data_dir / f"{name}.log",
            {
                "OPENLEAD_SENDER_LEASE_SECONDS": str(lease_seconds),
                "OPENLEAD_SENDER_INTERVAL_SECONDS": "0.2",
                "OPENLEAD_PUBLIC_URL": f"http://127.0.0.1:{self.server.port}",
            },
        )

    def completed(self) -> int:
        sql = (
            "SELECT count(*) FROM campaign_leads WHERE account_id = :a AND campaign_id = :c "
            "AND status = 'COMPLETED'"
        )
        return query(self.server.database_url, sql, a=self.account_id, c=self.campaign_id)[0][0]

    def statuses(self) -> Counter[str]:
        sql = (
            "SELECT status, count(*) FROM campaign_leads WHERE account_id = :a "
            "AND campaign_id = :c GROUP BY status"
        )
        rows = query(self.server.database_url, sql, a=self.account_id, c=self.campaign_id)
        return Counter(dict(rows))


@pytest.fixture
def sending_server(fresh_database_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server with its own sender off, so that only the workers of the test send."""
    with serving(fresh_database_url, tmp_path, OPENLEAD_SENDER="false") as server:
        yield server


def prepare(
    server: Server,
    sink: SmtpSink,
    leads: int,
    mailboxes: int,
    sequence: dict = TWO_STEPS,
) -> Setup:
    api = Api(server, server.key)
    campaign_id = api.campaign("Workers")
    ids = []
    for n in range(mailboxes):
        body = sink.mailbox(f"box{n}@sender.example", max_email_per_day=100_000)
        response = api.post("/email-accounts/save", json=body)
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    for path, body in (
        ("email-accounts", {"email_account_ids": ids}),
        ("schedule", ALWAYS),
        ("sequences", sequence),
    ):
        response = api.post(f"/campaigns/{campaign_id}/{path}", json=body)
        assert response.status_code == 200, response.text
    for start in range(0, leads, 400):
        batch = [
            {"email": f"lead{i}@to{i % 7}.example", "first_name": f"Lead{i}"}
            for i in range(start, min(start + 400, leads))
        ]
        assert api.import_leads(campaign_id, batch)["added_count"] == len(batch)
    response = api.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
    assert response.status_code == 200, response.text
    account_id = account_of_campaign(server.database_url, campaign_id)
    steps = len(sequence["sequences"])
    return Setup(server, api, sink, server.log_path.parent, campaign_id, account_id, leads, steps)


def check_every_step_once(setup: Setup) -> dict:
    """The sink got each (lead, step) at most once, each matched to its row; every lead has a
    delivered row for every step and is COMPLETED. Returns the rows by Message-ID."""
    rows = message_rows(setup.server.database_url, setup.account_id)
    check_matched(setup.sink.received(), rows, vault_for(setup.data_dir))
    per_lead: dict[int, list[int]] = defaultdict(list)
    for row in rows.values():
        assert row.state in ("sent", "uncertain"), row
        per_lead[row.lead_id].append(row.seq_number)
    assert len(per_lead) == setup.leads
    wanted = list(range(1, setup.steps + 1))
    wrong = {lead: sorted(s) for lead, s in per_lead.items() if sorted(s) != wanted}
    assert not wrong, f"leads without exactly one row per step: {list(wrong.items())[:10]}"
    assert setup.statuses() == Counter({"COMPLETED": setup.leads})
    return rows


def test_a_killed_worker_loses_nobody_and_repeats_nothing(sending_server: Server) -> None:
    sink = SmtpSink(data_delay=0.02).start()
    try:
        setup = prepare(sending_server, sink, leads=200, mailboxes=3)
        first = setup.worker("worker-1", lease_seconds=2).start()
        try:
            sink.wait_for(100, timeout=60)
            open_at_kill = sink.open_connections()
            first.kill()
        finally:
            first.stop()
        assert open_at_kill, "the worker was killed between batches, not in one"
        received_at_kill = len(sink.received())
        assert received_at_kill < 2 * setup.leads
        second = setup.worker("worker-2", lease_seconds=2).start()
        try:
            wait_until(
                lambda: setup.completed() == setup.leads, timeout=120, what="every lead COMPLETED"
            )
        finally:
            second.stop()
        rows = check_every_step_once(setup)
        received = {got.message_id: got for got in sink.received()}
        uncertain = [row for row in rows.values() if row.state == "uncertain"]
        # Uncertain: marked at the kill and never recorded. Per mailbox's session that is the
        # message on its way (it may or may not have arrived), the next one (marked while the
        # first went; it never went: docs/sending.md) and any whose outcome was still to be
        # written (those arrived). So at most two per open connection never arrived.
        assert uncertain, "the kill left nothing uncertain: it did not hit a batch"
        lost = Counter(row.email_account_id for row in uncertain if row.message_id not in received)
        assert sum(lost.values()) <= 2 * len(open_at_kill), (lost, open_at_kill)
        assert all(n <= 2 for n in lost.values()), lost
        arrived = {received[r.message_id].peer for r in uncertain if r.message_id in received}
        assert arrived <= open_at_kill, (arrived, open_at_kill)
        # What the database says was sent, the sink has.
        missing = [
            row.message_id
            for row in rows.values()
            if row.state == "sent" and row.message_id not in received
        ]
        assert not missing, f"recorded as sent, never received: {missing[:10]}"
    finally:
        sink.stop()


# 10,000 leads with two steps did not finish in 5 minutes on the shared two-core test machine
# (about 60 emails a second for the three workers together): one step for 10,000 leads, and
# both steps for 1,000.
SCALE_LEADS = int(os.environ.get("OPENLEAD_TEST_SCALE_LEADS", "10000"))


@pytest.mark.parametrize("fresh_database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize(("leads", "steps"), [(SCALE_LEADS, 1), (1_000, 2)], ids=["wide", "deep"])
def test_three_workers_send_every_step_exactly_once(
    sending_server: Server, leads: int, steps: int
) -> None:
    sink = SmtpSink().start()
    try:
        began = time.monotonic()
        sequence = {"sequences": TWO_STEPS["sequences"][:steps]}
        setup = prepare(sending_server, sink, leads=leads, mailboxes=10, sequence=sequence)
        prepared = time.monotonic()
        workers = [setup.worker(f"worker-{n}").start() for n in range(3)]
        try:
            wait_until(
                lambda: setup.completed() == setup.leads,
                timeout=600,
                what="every lead COMPLETED",
                poll=0.5,
            )
            sink.wait_for(setup.leads * setup.steps, timeout=30)
        finally:
            for worker in workers:
                worker.stop()
        sent = time.monotonic()
        rows = check_every_step_once(setup)
        assert len(sink.received()) == setup.leads * setup.steps
        assert all(row.state == "sent" for row in rows.values())
        # The work was shared (a Message-ID names the process that made it: email.utils'
        # make_msgid), and no worker failed.
        pids = {w.process.pid for w in workers if w.process is not None}
        by_pid = Counter(int(message_id.split(".")[1]) for message_id in rows)
        assert set(by_pid) <= pids and len(by_pid) >= 2, (by_pid, pids)
        failed = [w.log()[-3000:] for w in workers if "Traceback" in w.log()]
        assert not failed, failed
        print(
            f"\n{leads} leads x {steps} steps, 3 workers: prepared in {prepared - began:.1f} s, "
            f"sent in {sent - prepared:.1f} s; messages per worker {sorted(by_pid.values())}"
        )
    finally:
        sink.stop()
