"""``openlead leads import`` and the other client commands, end to end: the CLI in a
subprocess against a real server, checked through the API."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults import FaultyProxy
from tests.support import Api

IMPORT_PATH = r"^/campaigns/\d+/leads$"
SKIPPED = {
    "Already exists in this campaign",
    "Invalid email",
    "Duplicate in this request",
    "On global block list",
}


def cli(
    api: Api | None, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("OPENLEAD_")}
    if api is not None:
        environment |= {"OPENLEAD_URL": api.server.base_url, "OPENLEAD_API_KEY": api.key}
    environment |= {"COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "openlead.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def members(api: Api, campaign_id: int) -> dict[str, dict]:
    response = api.get(f"/campaigns/{campaign_id}/leads", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return {lead["email"]: lead for lead in response.json()["leads"]}


def table(stdout: str) -> dict[str, int]:
    """The summary table's rows: outcome -> count."""
    return {
        name.strip(): int(count.replace(",", ""))
        for name, count in re.findall(r"│ ([^│]+?) +│ +([\d,]+) │", stdout)
    }


def write(path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\r\n") -> Path:
    path.write_bytes(newline.join(lines).encode(encoding) + newline.encode(encoding))
    return path


# --------------------------------------------------------------------------- import


def test_an_excel_file_lands_in_the_campaign(api: Api, tmp_path: Path) -> None:
    """UTF-8 with a byte-order mark, ';' (Excel in much of Europe), CRLF, a quoted line break
    and a quoted delimiter, blank lines, a row of empty cells, a row too wide; every skip
    reason the server gives."""
    campaign = api.campaign("From Excel")
    api.import_leads(campaign, [{"email": "old@acme.com"}])
    assert api.post("/leads/block-list", json={"domains": ["blocked.example"]}).status_code == 200
    lines = [
        "E-mail;First Name;Last Name;Company Name;City;Phone;LinkedIn URL;Company Website;"
        "Job Title;Notes",
        "alex@acme.com;Alex;Smith;Acme;Berlin;+49 30 1;https://linkedin.com/in/alex;"
        'https://acme.com;CEO;"line one',  # a quoted line break: this record spans two lines
        'line two"',
        "",
        "old@acme.com;Old;;;;;;;;",
        "not-an-email;Bad;;;;;;;;",
        "ALEX@ACME.COM;Dup;;;;;;;;",
        "x@blocked.example;Blocked;;;;;;;;",
        ";;;;;;;;;",
        'ana@beta.io;Ana;;"Beta; Inc";;;;;;',
        "too@wide.com;T;;;;;;;;;surplus",
    ]
    source = tmp_path / "leads.csv"
    source.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")

    result = cli(api, "leads", "import", str(source), "--campaign", str(campaign))
    assert result.returncode == 0, result.stderr

    landed = members(api, campaign)
    assert set(landed) == {"old@acme.com", "alex@acme.com", "ana@beta.io"}
    alex = landed["alex@acme.com"]
    assert (alex["first_name"], alex["last_name"], alex["company_name"]) == (
        "Alex",
        "Smith",
        "Acme",
    )
    assert (alex["location"], alex["phone_number"]) == ("Berlin", "+49 30 1")
    assert alex["linkedin_profile"] == "https://linkedin.com/in/alex"
    assert alex["company_url"] == "https://acme.com"
    assert alex["custom_fields"] == {"Job Title": "CEO", "Notes": "line one\r\nline two"}
    assert landed["ana@beta.io"]["company_name"] == "Beta; Inc"

    counts = table(result.stdout)
    assert counts["Added"] == 2
    assert counts["Total"] == 7
    for reason in SKIPPED:
        assert counts[f"Skipped: {reason}"] == 1, result.stdout
    assert counts["Skipped: Malformed row (more cells than the header has columns)"] == 1
    assert "2 blank rows ignored" in result.stdout

    skipped_path = tmp_path / "leads.skipped.csv"
    assert str(skipped_path.name) in result.stdout
    with skipped_path.open(encoding="utf-8-sig", newline="") as file:
        rows = list(csv.reader(file, delimiter=";"))
    assert rows[0][:4] == ["line", "reason", "detail", "E-mail"]
    by_line = {int(row[0]): (row[1], row[3]) for row in rows[1:]}
    assert by_line == {
        5: ("Already exists in this campaign", "old@acme.com"),
        6: ("Invalid email", "not-an-email"),
        7: ("Duplicate in this request", "ALEX@ACME.COM"),
        8: ("On global block list", "x@blocked.example"),
        11: ("Malformed row (more cells than the header has columns)", "too@wide.com"),
    }


def test_mapping_settings_and_json_summary(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("Mapped")
    assert api.post("/leads/block-list", json={"emails": ["vip@acme.com"]}).status_code == 200
    source = write(
        tmp_path / "crm-export.csv",
        [
            "Mail,Given,Job,Notes,Company,Score",
            "vip@acme.com,Vera,CTO,call her,Acme,90",
            "sam@acme.com,Sam,,,Acme,",
        ],
        newline="\n",
    )
    result = cli(
        api,
        "leads", "import", str(source), "-c", str(campaign),
        "--map", "Mail=email", "--map", "given=first_name", "--map", "Job=custom:title",
        "--map", "Notes=-", "--settings", "ignore_global_block_list", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["total"], summary["added"], summary["skipped"]) == (2, 2, 0)
    assert summary["complete"] is True
    landed = members(api, campaign)
    assert landed["vip@acme.com"]["first_name"] == "Vera"
    assert landed["vip@acme.com"]["custom_fields"] == {"title": "CTO", "Score": "90"}
    assert landed["sam@acme.com"]["custom_fields"] == {}  # empty cells are left out
    assert landed["sam@acme.com"]["company_name"] == "Acme"


def test_a_file_in_many_batches(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("Batches")
    lines = ["email,first_name"] + [f"user{i}@example.com,User {i}" for i in range(1_005)]
    source = write(tmp_path / "many.csv", lines)
    result = cli(api, "leads", "import", str(source), "-c", str(campaign), "--batch-size", "250")
    assert result.returncode == 0, result.stderr
    assert table(result.stdout) == {"Added": 1_005, "Total": 1_005}
    page = api.get(f"/campaigns/{campaign}/leads", params={"limit": 1}).json()
    assert page["total_leads"] == 1_005


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Email,Phone,Phone", "Duplicate column headers: 'Phone' (columns 2, 3)"),
        ("Email,E-mail,Name", "'Email' (column 1) and 'E-mail' (column 2) are both email"),
        ("Name,Company", "No email column"),
    ],
)
def test_a_file_that_cannot_be_read_safely_is_refused_before_sending(
    api: Api, tmp_path: Path, header: str, message: str
) -> None:
    campaign = api.campaign("Refused")
    source = write(tmp_path / "bad.csv", [header, "a@example.com,b@example.com,x"])
    result = cli(api, "leads", "import", str(source), "-c", str(campaign))
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split()), result.stderr
    assert members(api, campaign) == {}
    assert not (tmp_path / "bad.skipped.csv").exists()


def test_duplicate_headers_can_be_told_apart_by_number(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("Numbered")
    source = write(tmp_path / "two.csv", ["Email,Phone,Phone", "a@example.com,111,222"])
    result = cli(
        api, "leads", "import", str(source), "-c", str(campaign),
        "--map", "#2=phone_number", "--map", "#3=custom:mobile",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lead = members(api, campaign)["a@example.com"]
    assert (lead["phone_number"], lead["custom_fields"]) == ("111", {"mobile": "222"})


def test_a_file_that_is_not_utf8(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("Latin")
    source = write(
        tmp_path / "windows.csv",
        ["Email;First Name", "a@example.com;Ann", "j@example.com;Jérôme"],
        encoding="cp1252",
    )
    refused = cli(api, "leads", "import", str(source), "-c", str(campaign))
    assert refused.returncode == 1
    assert "is not UTF-8" in refused.stderr and "line 3" in refused.stderr
    assert "--encoding" in refused.stderr
    assert members(api, campaign) == {}
    accepted = cli(api, "leads", "import", str(source), "-c", str(campaign), "--encoding", "cp1252")
    assert accepted.returncode == 0, accepted.stderr
    assert members(api, campaign)["j@example.com"]["first_name"] == "Jérôme"


def test_excel_unicode_text_utf16_with_tabs(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("UTF-16")
    source = tmp_path / "unicode.txt"
    text = "Email Address\tFirst Name\r\nzoë@example.com\tZoë\r\nz@example.com\tZoë\r\n"
    source.write_bytes(text.encode("utf-16"))  # with its byte-order mark, as Excel writes it
    result = cli(api, "leads", "import", str(source), "-c", str(campaign))
    assert result.returncode == 0, result.stderr
    # The non-ASCII local part is the server's "Invalid email"; the other lands intact.
    assert members(api, campaign)["z@example.com"]["first_name"] == "Zoë"
    assert table(result.stdout)["Skipped: Invalid email"] == 1
    skipped = (tmp_path / "unicode.txt.skipped.csv").read_text(encoding="utf-16")
    assert "zoë@example.com" in skipped


def test_dry_run_sends_nothing(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("Dry")
    source = write(
        tmp_path / "dry.csv",
        ["Email Address,First Name,Company URL,Favourite Colour", "d@example.com,Di,https://d.io,"],
    )
    result = cli(None, "leads", "import", str(source), "--dry-run")  # needs no server, no key
    assert result.returncode == 0, result.stderr
    assert re.search(r"Email Address\s+│ email ", result.stdout)
    assert re.search(r"Company URL\s+│ company_url ", result.stdout)
    assert "custom_fields['Favourite Colour']" in result.stdout
    assert '{"email": "d@example.com", "first_name": "Di", "company_url": "https://d.io"}' in (
        result.stdout
    )
    assert members(api, campaign) == {}


def test_progress_bar_on_a_terminal(api: Api, tmp_path: Path) -> None:
    campaign = api.campaign("Progress")
    source = write(tmp_path / "p.csv", ["email"] + [f"p{i}@example.com" for i in range(900)])
    result = cli(
        api, "leads", "import", str(source), "-c", str(campaign), "--progress",
        env={"TTY_COMPATIBLE": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "rows/s" in result.stderr and "ETA" in result.stderr and "900 rows" in result.stderr


def test_clear_errors_for_a_wrong_campaign_or_key(api: Api, tmp_path: Path) -> None:
    source = write(tmp_path / "x.csv", ["email", "x@example.com"])
    missing = cli(api, "leads", "import", str(source), "-c", "987654321")
    assert missing.returncode == 1 and "Campaign not found" in missing.stderr
    no_key = cli(None, "leads", "import", str(source), "-c", "1")
    assert no_key.returncode == 1 and "No API key" in no_key.stderr
    wrong = cli(api, "campaigns", "list", env={"OPENLEAD_API_KEY": "ol_wrong_000000000000"})
    assert wrong.returncode == 1 and "invalid_api_key" in wrong.stderr


# --------------------------------------------------------------------------- faults


@pytest.fixture
def proxy(server) -> Iterator[FaultyProxy]:  # type: ignore[no-untyped-def]
    """A real HTTP server in front of the real server, which misbehaves on cue."""
    faulty = FaultyProxy(server.base_url.removesuffix("/api/v1")).start()
    try:
        yield faulty
    finally:
        faulty.stop()


def test_a_lost_answer_and_a_rate_limit_on_the_way(
    api: Api, proxy: FaultyProxy, tmp_path: Path
) -> None:
    """The second batch is committed but its answer lost; its repeat is rate limited once.
    Every row is still counted once, as added."""
    campaign = api.campaign("Faults")
    source = write(tmp_path / "f.csv", ["email"] + [f"f{i}@example.com" for i in range(1_000)])
    proxy.on("POST", IMPORT_PATH, ["pass", "drop_after", ("status", 429, {"Retry-After": "1"})])
    result = cli(
        api, "leads", "import", str(source), "-c", str(campaign),
        env={"OPENLEAD_URL": proxy.base_url},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert proxy.seen("POST", IMPORT_PATH) == ["pass", "drop_after", "status 429", "pass", "pass"]
    assert table(result.stdout) == {"Added": 1_000, "Total": 1_000}
    assert "2 requests retried; 1 batches checked after a lost answer" in result.stdout
    page = api.get(f"/campaigns/{campaign}/leads", params={"limit": 1}).json()
    assert page["total_leads"] == 1_000


def test_an_import_that_stops_can_be_run_again(
    api: Api, proxy: FaultyProxy, tmp_path: Path
) -> None:
    campaign = api.campaign("Stops")
    source = write(tmp_path / "s.csv", ["email"] + [f"s{i}@example.com" for i in range(1_000)])
    proxy.on("POST", IMPORT_PATH, ["pass", ("status", 503, {}), ("status", 503, {})])
    stopped = cli(
        api, "leads", "import", str(source), "-c", str(campaign), "--max-attempts", "2",
        env={"OPENLEAD_URL": proxy.base_url},
    )  # fmt: skip
    assert stopped.returncode == 1
    assert table(stopped.stdout) == {"Added": 400, "Total": 400}
    assert "stopped after 400 rows" in " ".join(stopped.stderr.split())
    assert "http_503" in stopped.stderr
    again = cli(api, "leads", "import", str(source), "-c", str(campaign))
    assert again.returncode == 0, again.stderr
    assert table(again.stdout) == {
        "Added": 600,
        "Skipped: Already exists in this campaign": 400,
        "Total": 1_000,
    }


# --------------------------------------------------------------------------- other commands


def test_campaigns_block_export_and_status(api: Api, tmp_path: Path) -> None:
    created = cli(api, "campaigns", "create", "Made by the CLI")
    assert created.returncode == 0, created.stderr
    campaign = int(created.stdout.strip())
    listed = json.loads(cli(api, "campaigns", "list", "--json").stdout)
    assert [(c["id"], c["name"]) for c in listed] == [(campaign, "Made by the CLI")]
    assert "Made by the CLI" in cli(api, "campaigns", "list").stdout

    entries = write(tmp_path / "blocks.txt", ["spam@bad.com", "bad.org", "not valid"], newline="\n")
    blocked = cli(api, "block", "add", "x@bad.net", "--file", str(entries))
    assert blocked.returncode == 0, blocked.stderr
    assert "Blocked 3 new entries" in blocked.stdout and "not valid" in blocked.stdout
    values = {e["value"] for e in json.loads(cli(api, "block", "list", "--json").stdout)}
    assert values == {"x@bad.net", "spam@bad.com", "bad.org"}
    assert "spam@bad.com" in cli(api, "block", "list", "--search", "spam").stdout

    source = write(tmp_path / "two.csv", ["email,first_name", "a@ok.com,A", "b@ok.com,-5"])
    assert cli(api, "leads", "import", str(source), "-c", str(campaign)).returncode == 0
    lead_id = members(api, campaign)["a@ok.com"]["id"]
    changed = cli(api, "leads", "status", "interested", "-c", str(campaign), "--lead", str(lead_id))
    assert changed.returncode == 0, changed.stderr
    assert "NOT_CONTACTED -> INTERESTED" in changed.stdout
    assert members(api, campaign)["a@ok.com"]["status"] == "INTERESTED"
    refused = cli(api, "leads", "status", "MAYBE", "-c", str(campaign), "--lead", str(lead_id))
    assert refused.returncode == 1 and "invalid_status" in refused.stderr

    output = tmp_path / "export.csv"
    exported = cli(api, "leads", "export", "-c", str(campaign), "-o", str(output))
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(output.open(encoding="utf-8", newline="")))
    assert [(r["email"], r["status"], r["first_name"]) for r in rows] == [
        ("a@ok.com", "INTERESTED", "A"),
        ("b@ok.com", "NOT_CONTACTED", "'-5"),  # escaped against spreadsheet formulas
    ]
    to_stdout = cli(api, "leads", "export", "--campaign", str(campaign))
    assert to_stdout.stdout.splitlines()[0].startswith("id,email,")
