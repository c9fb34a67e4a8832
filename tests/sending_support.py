"""Shared by the sending tests: campaigns that send, the dispatcher run at chosen moments,
what the sink received matched to the ``messages`` table, and ``openlead worker`` processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from openlead.config import Settings
from openlead.db.engine import create_database
from openlead.sending.dispatcher import Dispatcher
from openlead.tracking.tokens import Purpose, read
from openlead.vault import Vault, load_master_secret
from tests.smtp_sink import Received, SmtpSink
from tests.support import Api, Server, query, stop_process

ALWAYS = {
    "timezone": "UTC",
    "days_of_the_week": [0, 1, 2, 3, 4, 5, 6],
    "start_hour": "00:00",
    "end_hour": "24:00",
    "min_time_btw_emails": 0,
    "max_new_leads_per_day": 10_000,
}
TWO_STEPS = [
    {
        "seq_number": 1,
        "seq_delay_details": {"delay_in_days": 0},
        "subject": "Quick question, {{first_name}}",
        "email_body": (
            '<p>Hi {{first_name}},</p><p>Read <a href="https://example.com/a?x=1&amp;y=2">'
            "this</a>.</p>"
        ),
    },
    {
        "seq_number": 2,
        "seq_delay_details": {"delay_in_days": 2},
        "subject": "",
        "email_body": "Following up, {{first_name}}.",
    },
]


def vault_of(server: Server) -> Vault:
    """The server's own key: it is generated into its data folder on first start."""
    return vault_for(server.log_path.parent)


def dispatcher_at(
    server: Server, now: datetime, kind: type[Dispatcher] = Dispatcher, **settings: Any
) -> tuple[Dispatcher, Any]:
    """A dispatcher (of ``kind``) on the server's database, its clock stopped at ``now``, and
    that database (to dispose of). Call it inside the event loop that will run it."""
    database = create_database(server.database_url, pool_size=2)
    config = Settings(
        database_url=server.database_url,
        public_url=f"http://127.0.0.1:{server.port}",
        smtp_timeout_seconds=10,
        **settings,
    )
    return kind(database, vault_of(server), config, clock=lambda: now), database


def tick(server: Server, now: datetime, **settings: Any) -> int:
    """One dispatcher tick at ``now`` against the server's database; the sends tried."""

    async def run() -> int:
        dispatcher, database = dispatcher_at(server, now, **settings)
        try:
            return await dispatcher.tick(now)
        finally:
            await dispatcher.journal.close()
            await database.dispose()

    return asyncio.run(run())


def mailbox(api: Api, sink: SmtpSink, from_email: str = "sam@sender.example", **extra: Any) -> int:
    response = api.post("/email-accounts/save", json=sink.mailbox(from_email, **extra))
    assert response.status_code == 200, response.text
    return response.json()["id"]


def campaign(
    api: Api,
    mailboxes: list[int],
    leads: list[dict],
    steps: list[dict] | None = None,
    schedule: dict | None = None,
    settings: dict | None = None,
    start: bool = True,
) -> int:
    """A campaign with the given mailboxes, schedule, sequence and leads, started."""
    campaign_id = api.campaign("Sending")
    for path, body in (
        ("email-accounts", {"email_account_ids": mailboxes}),
        ("schedule", schedule or ALWAYS),
        ("sequences", {"sequences": steps or TWO_STEPS}),
        ("settings", settings or {}),
    ):
        response = api.post(f"/campaigns/{campaign_id}/{path}", json=body)
        assert response.status_code == 200, response.text
    if leads:
        api.import_leads(campaign_id, leads)
    if start:
        started = api.post(f"/campaigns/{campaign_id}/status", json={"status": "START"})
        assert started.status_code == 200, started.text
    return campaign_id


def leads(n: int, prefix: str = "lead", domain: str = "example.com") -> list[dict]:
    return [
        {"email": f"{prefix}{i}@{domain}", "first_name": f"Name{i}", "last_name": "Doe"}
        for i in range(n)
    ]


def listed(api: Api, campaign_id: int, *fields: str) -> dict[str, tuple]:
    """Each lead's ``fields`` as the campaign's lead listing shows them, by address."""
    page = api.get(f"/campaigns/{campaign_id}/leads", params={"limit": 1000}).json()
    return {lead["email"]: tuple(lead[f] for f in fields) for lead in page["leads"]}


def statuses(api: Api, campaign_id: int) -> dict[str, str]:
    return {email: status for email, (status,) in listed(api, campaign_id, "status").items()}


def events(api: Api, campaign_id: int, lead_id: int) -> list[dict]:
    response = api.get(f"/campaigns/{campaign_id}/leads/{lead_id}/activity")
    assert response.status_code == 200, response.text
    return response.json()["events"]


def lead_id(api: Api, email: str) -> int:
    response = api.get("/leads", params={"email": email})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def membership(server: Server, campaign_id: int, email: str) -> dict[str, Any]:
    rows = query(
        server.database_url,
        "SELECT cl.next_seq, cl.next_send_at, cl.hold, cl.attempts, cl.email_account_id,"
        " cl.status FROM campaign_leads cl JOIN leads l ON l.id = cl.lead_id"
        " WHERE cl.campaign_id = :c AND l.email = :e",
        c=campaign_id,
        e=email,
    )
    (row,) = rows
    keys = ("next_seq", "next_send_at", "hold", "attempts", "email_account_id", "status")
    return dict(zip(keys, row, strict=True))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def later(moment: datetime, **delta: float) -> datetime:
    return moment + timedelta(**delta)


MESSAGES_SQL = """
SELECT m.message_id, m.lead_id, m.campaign_id, m.seq_number, m.state, m.sent_at,
       m.email_account_id, l.email
FROM messages m JOIN leads l ON l.account_id = m.account_id AND l.id = m.lead_id
WHERE m.account_id = :account_id
"""


@dataclass(frozen=True)
class MessageRow:
    message_id: str
    lead_id: int
    campaign_id: int
    seq_number: int
    state: str
    sent_at: datetime | None
    email_account_id: int
    email: str


def _utc(moment: datetime | str | None) -> datetime | None:
    """SQLite hands timestamps back naive (UTC), or as text through a raw query."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def message_rows(database_url: str, account_id: int) -> dict[str, MessageRow]:
    """The account's ``messages`` rows by Message-ID (bounces, which have none, left out)."""
    rows = query(database_url, MESSAGES_SQL, account_id=account_id)
    found = [MessageRow(r[0], r[1], r[2], r[3], r[4], _utc(r[5]), r[6], r[7]) for r in rows]
    return {row.message_id: row for row in found if row.message_id}


def account_of_campaign(database_url: str, campaign_id: int) -> int:
    rows = query(database_url, "SELECT account_id FROM campaigns WHERE id = :c", c=campaign_id)
    return rows[0][0]


def vault_for(data_dir: Path) -> Vault:
    """The vault of the processes that keep their secret key in ``data_dir``."""
    return Vault(load_master_secret(None, data_dir))


def token_ref(vault: Vault, received: Received) -> tuple[int, int, int]:
    """(campaign, lead, step) of a received email, read from its signed List-Unsubscribe link
    (independent of the ``messages`` row)."""
    header = str(received.headers["List-Unsubscribe"])
    token = read(vault, header.strip("<>").rsplit("/", 1)[-1], Purpose.UNSUBSCRIBE)
    assert token is not None, f"List-Unsubscribe is not a token this installation signed: {header}"
    ref = token.email
    return ref.campaign_id, ref.lead_id, ref.seq_number


def check_unsubscribe_headers(received: Received) -> None:
    assert received.headers["List-Unsubscribe"], f"no List-Unsubscribe: {received.message_id}"
    assert str(received.headers["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click", (
        f"no RFC 8058 List-Unsubscribe-Post: {received.message_id}"
    )


def check_matched(
    received: list[Received], rows: dict[str, MessageRow], vault: Vault
) -> list[tuple[Received, MessageRow]]:
    """Every received email has its ``messages`` row (delivered), addressed as the row says,
    carries the unsubscribe headers, and no (lead, campaign, step) came twice."""
    matched = []
    for got in received:
        row = rows.get(got.message_id)
        assert row is not None, f"{got.message_id} to {got.to} has no messages row"
        assert row.state in ("sent", "uncertain"), (got.message_id, row.state)
        assert got.to == row.email, (got.message_id, got.to, row.email)
        check_unsubscribe_headers(got)
        assert token_ref(vault, got) == (row.campaign_id, row.lead_id, row.seq_number)
        matched.append((got, row))
    twice = [key for key, n in Counter(token_ref(vault, got) for got in received).items() if n > 1]
    assert not twice, f"(campaign, lead, step) received more than once: {twice[:10]}"
    return matched


# --- worker processes -----------------------------------------------------------------------


@dataclass
class Worker:
    """An ``openlead worker`` process."""

    database_url: str
    data_dir: Path
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        env = {
            **os.environ,
            "OPENLEAD_DATABASE_URL": self.database_url,
            "OPENLEAD_DATA_DIR": str(self.data_dir),
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "openlead.cli", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        stop_process(self.process, timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_until(condition, timeout: float, what: str, poll: float = 0.2) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
