"""The guide's import, bulk-import and block-list snippets, verbatim, against a real server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import guide_snippets
from tests.guide import run_snippet

GUIDE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "lead-management-guide.txt"


@pytest.mark.parametrize(
    "name", ["IMPORT", "BULK_IMPORT", "FETCH_BY_STATUS", "UPDATE_STATUS", "ACTIVITY", "BLOCK_LIST"]
)
def test_snippets_are_still_the_guides(name):
    if not GUIDE.exists():
        pytest.skip("the guide is not beside this checkout")
    assert getattr(guide_snippets, name).strip() in GUIDE.read_text()


def test_guide_import_snippet(api, server):
    campaign_id = api.campaign()
    namespace, printed = run_snippet(
        guide_snippets.IMPORT,
        server.base_url,
        api.key,
        {"campaign_id = 12345": f"campaign_id = {campaign_id}"},
    )
    assert printed == "Added: 2\nSkipped: 0\n"
    assert namespace["response"].status_code == 200

    # Run again: both are now in the campaign and the response says so.
    _, printed = run_snippet(
        guide_snippets.IMPORT,
        server.base_url,
        api.key,
        {"campaign_id = 12345": f"campaign_id = {campaign_id}"},
    )
    assert printed == "Added: 0\nSkipped: 2\n"


def _leads(count: int) -> list[dict]:
    return [
        {
            "email": f"bulk{i}@example{i % 7}.com",
            "first_name": f"First{i}",
            "custom_fields": {"row": str(i)},
        }
        for i in range(count)
    ]


def test_guide_bulk_import_snippet(api, server):
    campaign_id = api.campaign()
    all_leads = _leads(900)
    _, printed = run_snippet(
        guide_snippets.BULK_IMPORT,
        server.base_url,
        api.key,
        {"all_leads = [...]  # Your full lead list": "all_leads = ALL_LEADS"},
        ALL_LEADS=all_leads,
        campaign_id=campaign_id,
    )
    assert printed.splitlines() == [
        "Batch 1: Added 400, Skipped 0",
        "Batch 2: Added 400, Skipped 0",
        "Batch 3: Added 100, Skipped 0",
    ]


def test_guide_block_list_snippet_then_import_skips(api, server):
    _, printed = run_snippet(guide_snippets.BLOCK_LIST, server.base_url, api.key)
    assert printed == "Leads added to block list\n"
    entries = api.get("/leads/block-list").json()["block_list"]
    assert sorted(e["value"] for e in entries) == [
        "donotcontact@company.com",
        "optedout@example.com",
    ]
    assert {e["kind"] for e in entries} == {"email"}

    campaign_id = api.campaign()
    result = api.import_leads(
        campaign_id,
        [{"email": "DoNotContact@Company.com"}, {"email": "fine@company.com"}],
    )
    assert result["added_count"] == 1
    assert result["skipped_leads"] == [
        {"email": "DoNotContact@Company.com", "reason": "On global block list"}
    ]
