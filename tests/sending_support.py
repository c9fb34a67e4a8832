"""Setting up campaigns that send, and running the dispatcher at chosen moments."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from openlead.config import Settings
from openlead.db.engine import create_database
from openlead.sending.dispatcher import Dispatcher
from openlead.vault import Vault, load_master_secret
from tests.smtp_sink import SmtpSink
from tests.support import Api, Server, query

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
    return Vault(load_master_secret(None, server.log_path.parent))


def tick(server: Server, now: datetime, **settings: Any) -> int:
    """One dispatcher tick at ``now`` against the server's database; the sends tried."""

    async def run() -> int:
        database = create_database(server.database_url, pool_size=2)
        config = Settings(
            database_url=server.database_url,
            public_url=f"http://127.0.0.1:{server.port}",
            smtp_timeout_seconds=10,
            **settings,
        )
        dispatcher = Dispatcher(database, vault_of(server), config, clock=lambda: now)
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


def statuses(api: Api, campaign_id: int) -> dict[str, str]:
    page = api.get(f"/campaigns/{campaign_id}/leads", params={"limit": 1000}).json()
    return {lead["email"]: lead["status"] for lead in page["leads"]}


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
