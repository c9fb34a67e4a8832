"""Leads in a campaign: listing, statuses, activity, unsubscribes, blocks, export, statistics."""

from __future__ import annotations

import asyncio
import csv
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from openlead.campaign_leads import export
from openlead.campaign_leads.service import EXPORT_BATCH
from openlead.client.csvfile import LeadCsv
from openlead.db.engine import create_database
from tests import guide_snippets
from tests.guide import run_snippet

GUIDE_LEADS = [
    {
        "email": "alex@acmecorp.com",
        "first_name": "Alex",
        "last_name": "Chen",
        "company_name": "Acme Corp",
        "custom_fields": {"job_title": "VP of Sales"},
    },
    {"email": "maria@techstartup.io", "first_name": "Maria", "last_name": "Garcia"},
    {
        "email": "prospect@company.com",
        "first_name": "Jordan",
        "last_name": "Lee",
        "company_name": "TechCo",
        "custom_fields": {"funding_round": "Series B"},
    },
]


def _ids(api, campaign: int) -> dict[str, int]:
    leads = api.get(f"/campaigns/{campaign}/leads", params={"limit": 1000}).json()["leads"]
    return {lead["email"]: lead["id"] for lead in leads}


def _status(api, campaign: int, lead_id: int, status: str):
    return api.patch(f"/campaigns/{campaign}/leads/{lead_id}/status", json={"status": status})


def test_guide_status_snippets(api, server):
    campaign = api.campaign()
    api.import_leads(campaign, GUIDE_LEADS)
    ids = _ids(api, campaign)

    namespace, printed = run_snippet(
        guide_snippets.UPDATE_STATUS,
        server.base_url,
        api.key,
        {"lead_id = 67890": f"lead_id = {ids['alex@acmecorp.com']}"},
        campaign_id=campaign,
    )
    assert printed == "Lead status updated!\n"
    assert namespace["response"].json() == {
        "ok": True,
        "lead_id": ids["alex@acmecorp.com"],
        "campaign_id": campaign,
        "status": "INTERESTED",
        "previous_status": "NOT_CONTACTED",
    }

    _, printed = run_snippet(
        guide_snippets.FETCH_BY_STATUS, server.base_url, api.key, campaign_id=campaign
    )
    assert printed == "Alex Chen (alex@acmecorp.com)\n"

    _, printed = run_snippet(
        guide_snippets.ACTIVITY,
        server.base_url,
        api.key,
        campaign_id=campaign,
        lead_id=ids["alex@acmecorp.com"],
    )
    lines = printed.splitlines()
    assert [line[: line.index("20")] for line in lines] == ["LEAD_ADDED", "STATUS_CHANGED"]
    assert all(line.endswith("Z") for line in lines)


def test_listing_fields_pages_and_cursor(api):
    campaign = api.campaign()
    api.import_leads(
        campaign, [{"email": f"p{i:02d}@page.com", "first_name": f"P{i}"} for i in range(25)]
    )
    first = api.get(f"/campaigns/{campaign}/leads", params={"limit": 10}).json()
    assert first["total_leads"] == 25
    assert len(first["leads"]) == 10
    lead = first["leads"][0]
    assert set(lead) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "company_name",
        "location",
        "phone_number",
        "website",
        "linkedin_profile",
        "company_url",
        "custom_fields",
        "status",
        "next_seq_number",
        "next_send_at",
        "hold",
        "email_account_id",
        "is_unsubscribed",
        "is_blocked",
        "created_at",
        "updated_at",
    }
    assert lead["status"] == "NOT_CONTACTED" and lead["is_blocked"] is False
    assert (lead["next_seq_number"], lead["next_send_at"], lead["hold"]) == (1, None, None)
    seen = [x["id"] for x in first["leads"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get(f"/campaigns/{campaign}/leads", params={"limit": 10, "after": cursor}).json()
        seen += [x["id"] for x in page["leads"]]
        cursor = page["next_cursor"]
    assert len(seen) == 25 == len(set(seen)) and seen == sorted(seen)
    by_offset = api.get(f"/campaigns/{campaign}/leads", params={"offset": 20, "limit": 10}).json()
    assert [x["id"] for x in by_offset["leads"]] == seen[20:]
    assert by_offset["next_cursor"] is None


def test_unknown_status_lists_the_valid_ones(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "s@x.com"}])
    lead_id = _ids(api, campaign)["s@x.com"]
    for response in (
        api.get(f"/campaigns/{campaign}/leads", params={"status": "HAPPY"}),
        _status(api, campaign, lead_id, "HAPPY"),
    ):
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid_status"
        assert "INTERESTED" in error["message"] and "NOT_CONTACTED" in error["message"]
        assert len(error["details"]["valid"]) == 8


def test_status_of_a_lead_not_in_that_campaign_is_404(api):
    one, two = api.campaign("one"), api.campaign("two")
    api.import_leads(one, [{"email": "only@one.com"}])
    lead_id = _ids(api, one)["only@one.com"]
    response = _status(api, two, lead_id, "INTERESTED")
    assert response.status_code == 404
    assert api.get(f"/campaigns/{two}/leads/{lead_id}/activity").status_code == 404


def test_unsubscribed_and_do_not_contact_go_on_the_lists_and_stay(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "u@x.com"}, {"email": "d@x.com"}])
    ids = _ids(api, campaign)
    assert _status(api, campaign, ids["u@x.com"], "UNSUBSCRIBED").status_code == 200
    assert _status(api, campaign, ids["d@x.com"], "DO_NOT_CONTACT").status_code == 200
    unsubscribed = api.get("/leads/unsubscribes").json()["unsubscribes"]
    assert [u["email"] for u in unsubscribed] == ["u@x.com"]
    blocked = api.get("/leads/block-list").json()["block_list"]
    assert [(b["value"], b["source"]) for b in blocked] == [("d@x.com", "do_not_contact")]

    # A later status change lifts neither.
    assert _status(api, campaign, ids["u@x.com"], "INTERESTED").json()["previous_status"] == (
        "UNSUBSCRIBED"
    )
    _status(api, campaign, ids["d@x.com"], "INTERESTED")
    assert len(api.get("/leads/unsubscribes").json()["unsubscribes"]) == 1
    assert len(api.get("/leads/block-list").json()["block_list"]) == 1
    leads = {x["email"]: x for x in api.get(f"/campaigns/{campaign}/leads").json()["leads"]}
    assert leads["u@x.com"]["is_unsubscribed"] is True
    assert leads["d@x.com"]["is_blocked"] is True
    events = api.get(f"/campaigns/{campaign}/leads/{ids['d@x.com']}/activity").json()["events"]
    assert [e["type"] for e in events] == [
        "LEAD_ADDED",
        "STATUS_CHANGED",
        "BLOCKED",
        "STATUS_CHANGED",
    ]
    assert events[1]["from"] == "NOT_CONTACTED" and events[1]["to"] == "DO_NOT_CONTACT"
    assert events[1]["source"] == "api"


def test_campaign_unsubscribe_changes_only_that_campaign(api):
    one, two = api.campaign("one"), api.campaign("two")
    api.import_leads(one, [{"email": "c@x.com"}])
    api.import_leads(two, [{"email": "c@x.com"}], ignore_duplicate_leads_in_other_campaign=True)
    lead_id = _ids(api, one)["c@x.com"]
    response = api.post(f"/campaigns/{one}/leads/{lead_id}/unsubscribe")
    assert response.status_code == 200
    assert response.json()["status"] == "UNSUBSCRIBED"
    assert api.get(f"/campaigns/{two}/leads").json()["leads"][0]["status"] == "NOT_CONTACTED"
    assert api.get(f"/campaigns/{two}/leads").json()["leads"][0]["is_unsubscribed"] is False
    assert api.get("/leads/unsubscribes").json()["unsubscribes"] == []
    types = [
        e["type"] for e in api.get(f"/campaigns/{one}/leads/{lead_id}/activity").json()["events"]
    ]
    assert types == ["LEAD_ADDED", "STATUS_CHANGED", "UNSUBSCRIBED"]


def test_account_wide_unsubscribe_reaches_every_unfinished_campaign(api):
    one, two, three = api.campaign("one"), api.campaign("two"), api.campaign("three")
    for campaign in (one, two, three):
        api.import_leads(
            campaign, [{"email": "w@x.com"}], ignore_duplicate_leads_in_other_campaign=True
        )
    lead_id = _ids(api, one)["w@x.com"]
    _status(api, three, lead_id, "BOUNCED")
    assert api.post(f"/leads/{lead_id}/unsubscribe").status_code == 200
    statuses = [
        api.get(f"/campaigns/{c}/leads").json()["leads"][0]["status"] for c in (one, two, three)
    ]
    assert statuses == ["UNSUBSCRIBED", "UNSUBSCRIBED", "BOUNCED"]
    for campaign in (one, two, three):
        events = api.get(f"/campaigns/{campaign}/leads/{lead_id}/activity").json()["events"]
        assert "UNSUBSCRIBED" in [e["type"] for e in events]
    # Import is refused everywhere now.
    four = api.campaign("four")
    result = api.import_leads(
        four, [{"email": "w@x.com"}], ignore_duplicate_leads_in_other_campaign=True
    )
    assert result["skipped_leads"][0]["reason"] == "Previously unsubscribed"


def test_blocking_a_domain_shows_at_once_everywhere(api):
    one, two = api.campaign("one"), api.campaign("two")
    api.import_leads(
        one, [{"email": f"b{i}@corp.com"} for i in range(30)] + [{"email": "k@ok.com"}]
    )
    api.import_leads(two, [{"email": "b1@corp.com"}], ignore_duplicate_leads_in_other_campaign=True)
    response = api.post("/leads/block-list", json={"domains": ["corp.com"]})
    assert response.json()["added_count"] == 1
    for campaign in (one, two):
        leads = api.get(f"/campaigns/{campaign}/leads").json()["leads"]
        assert all(x["is_blocked"] == x["email"].endswith("@corp.com") for x in leads)
    lead_id = _ids(api, two)["b1@corp.com"]
    for campaign in (one, two):
        events = api.get(f"/campaigns/{campaign}/leads/{lead_id}/activity").json()["events"]
        assert [e["type"] for e in events] == ["LEAD_ADDED", "BLOCKED"]
    stats = api.get(f"/campaigns/{one}/statistics").json()
    assert stats["by_event"]["BLOCKED"] == 30
    # Blocking again adds no second event.
    api.post("/leads/block-list", json={"domains": ["corp.com"]})
    assert api.get(f"/campaigns/{one}/statistics").json()["by_event"]["BLOCKED"] == 30
    # Unblocking lifts is_blocked at once.
    entry = api.get("/leads/block-list").json()["block_list"][0]["id"]
    api.delete(f"/leads/block-list/{entry}")
    assert not any(x["is_blocked"] for x in api.get(f"/campaigns/{one}/leads").json()["leads"])


def test_remove_lead_from_campaign(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "r@x.com"}, {"email": "s@x.com"}])
    lead_id = _ids(api, campaign)["r@x.com"]
    assert api.delete(f"/campaigns/{campaign}/leads/{lead_id}").json() == {"ok": True}
    assert api.delete(f"/campaigns/{campaign}/leads/{lead_id}").status_code == 404
    assert list(_ids(api, campaign)) == ["s@x.com"]
    assert api.import_leads(campaign, [{"email": "r@x.com"}])["added_count"] == 1


def test_statistics(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": f"st{i}@x.com"} for i in range(4)])
    ids = list(_ids(api, campaign).values())
    _status(api, campaign, ids[0], "INTERESTED")
    _status(api, campaign, ids[1], "INTERESTED")
    _status(api, campaign, ids[2], "NOT_INTERESTED")
    stats = api.get(f"/campaigns/{campaign}/statistics").json()
    assert stats["total_leads"] == 4
    assert stats["by_status"]["INTERESTED"] == 2
    assert stats["by_status"]["NOT_INTERESTED"] == 1
    assert stats["by_status"]["NOT_CONTACTED"] == 1
    assert stats["by_status"]["BOUNCED"] == 0
    assert stats["by_event"]["LEAD_ADDED"] == 4
    assert stats["by_event"]["STATUS_CHANGED"] == 3


def test_export_csv(api):
    campaign = api.campaign()
    api.import_leads(
        campaign,
        [
            {
                "email": "e1@x.com",
                "first_name": '=HYPERLINK("http://evil")',
                "company_name": "Acme, Inc.",
                "custom_fields": {"role": "CTO", "note": "@home"},
            },
            {"email": "e2@x.com", "last_name": "-1+1", "custom_fields": {"email": "dup", "n": 5}},
        ],
    )
    response = api.get(f"/campaigns/{campaign}/leads-export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["email"] for r in rows] == ["e1@x.com", "e2@x.com"]
    assert rows[0]["first_name"] == '\'=HYPERLINK("http://evil")'
    assert rows[0]["company_name"] == "Acme, Inc."
    assert rows[0]["role"] == "CTO" and rows[0]["note"] == "'@home"
    assert rows[1]["last_name"] == "'-1+1"
    assert rows[1]["custom.email"] == "dup" and rows[1]["n"] == "5"
    assert rows[1]["role"] == ""
    assert rows[0]["status"] == "NOT_CONTACTED"
    assert api.get("/campaigns/999999/leads-export").status_code == 404


def test_status_unsubscribed_records_one_unsubscribe_in_each_campaign(api):
    one, two = api.campaign("one"), api.campaign("two")
    api.import_leads(one, [{"email": "once@x.com"}])
    api.import_leads(two, [{"email": "once@x.com"}], ignore_duplicate_leads_in_other_campaign=True)
    lead_id = _ids(api, one)["once@x.com"]
    assert _status(api, one, lead_id, "UNSUBSCRIBED").status_code == 200
    for campaign in (one, two):
        stats = api.get(f"/campaigns/{campaign}/statistics").json()
        assert stats["by_status"]["UNSUBSCRIBED"] == 1
        assert stats["by_event"]["UNSUBSCRIBED"] == 1
        assert stats["by_event"]["STATUS_CHANGED"] == 1
    events = api.get(f"/campaigns/{one}/leads/{lead_id}/activity").json()["events"]
    assert [e["type"] for e in events] == ["LEAD_ADDED", "STATUS_CHANGED", "UNSUBSCRIBED"]

    # Already on the list when added to a third campaign: its one event is still recorded there.
    three = api.campaign("three")
    api.import_leads(
        three,
        [{"email": "once@x.com"}],
        ignore_unsubscribe_list=True,
        ignore_duplicate_leads_in_other_campaign=True,
    )
    assert _status(api, three, lead_id, "UNSUBSCRIBED").status_code == 200
    for campaign in (one, two, three):
        stats = api.get(f"/campaigns/{campaign}/statistics").json()
        assert stats["by_event"]["UNSUBSCRIBED"] == 1


RACING_PAIRS = 20


def test_unsubscribed_or_do_not_contact_in_two_campaigns_at_once(api, server):
    one, two = api.campaign("one"), api.campaign("two")
    statuses = ("UNSUBSCRIBED", "DO_NOT_CONTACT")
    addresses = [f"{s.lower()}{i}@race.com" for s in statuses for i in range(RACING_PAIRS)]
    for campaign in (one, two):
        api.import_leads(
            campaign,
            [{"email": a} for a in addresses],
            ignore_duplicate_leads_in_other_campaign=True,
        )
    ids = _ids(api, one)
    answers: list[int] = []
    with httpx.Client(base_url=server.base_url, timeout=60) as http, ThreadPoolExecutor(2) as pool:

        def change(campaign: int, lead_id: int, status: str, start: threading.Barrier) -> int:
            start.wait()
            return http.patch(
                f"/campaigns/{campaign}/leads/{lead_id}/status",
                params={"api_key": api.key},
                json={"status": status},
            ).status_code

        for address in addresses:
            status = statuses[0] if address.startswith("unsub") else statuses[1]
            start = threading.Barrier(2)
            pair = [pool.submit(change, c, ids[address], status, start) for c in (one, two)]
            answers += [future.result() for future in pair]
    assert answers == [200] * len(answers)

    for campaign in (one, two):
        stats = api.get(f"/campaigns/{campaign}/statistics").json()
        assert stats["by_status"]["UNSUBSCRIBED"] == RACING_PAIRS
        assert stats["by_status"]["DO_NOT_CONTACT"] == RACING_PAIRS
        assert stats["by_event"]["UNSUBSCRIBED"] == RACING_PAIRS
        assert stats["by_event"]["BLOCKED"] == RACING_PAIRS
    unsubscribed = api.get("/leads/unsubscribes", params={"limit": 1000}).json()["unsubscribes"]
    assert sorted(u["email"] for u in unsubscribed) == sorted(addresses[:RACING_PAIRS])
    blocked = api.get("/leads/block-list", params={"limit": 1000}).json()["block_list"]
    assert sorted(b["value"] for b in blocked) == sorted(addresses[RACING_PAIRS:])


def test_a_timeline_comes_whole_by_default_and_in_pages_when_asked(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "t@x.com"}])
    lead = _ids(api, campaign)["t@x.com"]
    for status in ("INTERESTED", "NOT_INTERESTED", "INTERESTED", "COMPLETED"):
        assert _status(api, campaign, lead, status).status_code == 200
    path = f"/campaigns/{campaign}/leads/{lead}/activity"
    whole = api.get(path).json()
    assert [e["type"] for e in whole["events"]] == ["LEAD_ADDED"] + ["STATUS_CHANGED"] * 4
    assert (whole["offset"], whole["limit"], whole["next_cursor"]) == (0, 1000, None)
    pages, after = [], None
    while True:
        params = {"limit": 2} | ({"after": after} if after is not None else {})
        page = api.get(path, params=params).json()
        pages.append([e.get("to") for e in page["events"]])
        after = page["next_cursor"]
        if after is None:
            break
    assert pages == [[None, "INTERESTED"], ["NOT_INTERESTED", "INTERESTED"], ["COMPLETED"]]
    # Exactly full last page: no cursor to an empty one.
    assert api.get(path, params={"limit": 5}).json()["next_cursor"] is None
    assert api.get(path, params={"offset": 4}).json()["events"][0]["to"] == "COMPLETED"
    assert api.get(path, params={"limit": 1001}).status_code == 400


def _import_in_batches(api, campaign: int, leads: list[dict]) -> None:
    for start in range(0, len(leads), 400):
        api.import_leads(campaign, leads[start : start + 400])


def _analyze(database_url: str) -> None:
    """Fresh planner statistics on PostgreSQL, as autovacuum gives them within a minute. Right
    after a bulk import into tables it last measured small, PostgreSQL plans the export's
    custom-field probe as a nested loop over every pair of rows: minutes for 20,000 leads."""
    if not database_url.startswith("postgresql"):
        return

    async def run() -> None:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                await conn.exec_driver_sql("ANALYZE leads, campaign_leads")
        finally:
            await database.dispose()

    asyncio.run(run())


def test_export_reads_one_snapshot_while_leads_are_added(api, server):
    campaign = api.campaign()
    # Three batches, of which the first is too large for the sockets' buffers: while the
    # client pauses, the server has read the first two and waits to send them.
    total = 2 * EXPORT_BATCH + 1
    pad = "p" * 1500
    _import_in_batches(
        api,
        campaign,
        [{"email": f"s{i}@snap.com", "custom_fields": {"pad": pad}} for i in range(total)],
    )
    _analyze(server.database_url)
    late = [{"email": f"late{i}@snap.com", "custom_fields": {"late_key": "L"}} for i in range(5)]
    with (
        httpx.Client(base_url=server.base_url, timeout=120) as http,
        http.stream(
            "GET", f"/campaigns/{campaign}/leads-export", params={"api_key": api.key}
        ) as response,
    ):
        chunks = response.iter_bytes()
        body = b""
        while len(body) < 65536:
            body += next(chunks)
        assert api.import_leads(campaign, late)["added_count"] == 5
        body += b"".join(chunks)
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert len(rows) == total
    assert not [r["email"] for r in rows if r["email"].startswith("late")]
    assert "late_key" not in rows[0]
    # The export after it has them all.
    rows = list(csv.DictReader(io.StringIO(api.get(f"/campaigns/{campaign}/leads-export").text)))
    assert len(rows) == total + 5 and rows[-1]["late_key"] == "L"


def test_export_headers_are_unique_and_import_back_under_their_keys(api, tmp_path):
    campaign = api.campaign()
    api.import_leads(
        campaign,
        [
            {"email": "a@dup.com", "custom_fields": {"email": "x"}},
            {"email": "b@dup.com", "custom_fields": {"custom.email": "y"}},
        ],
    )
    response = api.get(f"/campaigns/{campaign}/leads-export")
    header = next(csv.reader(io.StringIO(response.text)))
    assert len(header) == len(set(header))
    assert header[-2:] == ["custom.email", "custom.custom.email"]
    # What the CLI's import reads from it: each value under a key of its own, the key that
    # was free under its own name.
    path = tmp_path / "dup.csv"
    path.write_bytes(response.content)
    imported = {lead["email"]: lead["custom_fields"] for lead in LeadCsv.open(path).leads()}
    assert imported["b@dup.com"]["custom.email"] == "y"
    assert imported["a@dup.com"]["custom.custom.email"] == "x"
    assert "custom.email" not in imported["a@dup.com"]


def test_export_header_names_each_key_once():
    fixed = list(export.FIXED_COLUMNS)
    assert export.header(["id", "custom.id", "custom.custom.id"])[len(fixed) :] == [
        "custom.custom.custom.id",
        "custom.id",
        "custom.custom.id",
    ]
    # The CLI trims headers: keys that differ only by spaces around them differ in the file.
    named = export.header([" role", "email ", "role"])[len(fixed) :]
    assert named == ["custom. role", "custom.email ", "role"]
    assert len({name.strip() for name in [*fixed, *named]}) == len(fixed) + 3
