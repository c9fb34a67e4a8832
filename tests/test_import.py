"""Import rules from API.md "Importing leads", against a real server on both backends."""

from __future__ import annotations

import json

from tests.support import query

REASONS = {
    "invalid": "Invalid email",
    "dup": "Duplicate in this request",
    "here": "Already exists in this campaign",
    "blocked": "On global block list",
    "unsub": "Previously unsubscribed",
    "other": "Exists in another campaign",
}


def _unsubscribe(api, email: str) -> None:
    holding = api.campaign("holding")
    api.import_leads(holding, [{"email": email}], ignore_duplicate_leads_in_other_campaign=True)
    lead_id = _lead_id(api, email)
    assert api.post(f"/leads/{lead_id}/unsubscribe").status_code == 200
    assert api.delete(f"/campaigns/{holding}").status_code == 200


def _lead_id(api, email: str) -> int:
    rows = query(
        api.server.database_url,
        "SELECT l.id FROM leads l JOIN api_keys k ON k.account_id = l.account_id "
        "WHERE l.email = :email AND k.key_hash = :hash",
        email=email,
        hash=__import__("hashlib").sha256(api.key.encode()).hexdigest(),
    )
    assert len(rows) == 1
    return rows[0][0]


def test_every_skip_reason_in_one_request(api):
    other = api.campaign("other")
    api.import_leads(other, [{"email": "elsewhere@acme.com"}])
    target = api.campaign("target")
    api.import_leads(target, [{"email": "here@acme.com"}])
    assert api.post("/leads/block-list", json={"emails": ["blocked@acme.com"]}).status_code == 200
    _unsubscribe(api, "gone@acme.com")

    result = api.import_leads(
        target,
        [
            {"email": "new@acme.com"},
            {"email": "not-an-address"},
            {"first_name": "No address"},
            {"email": "NEW@acme.com"},
            {"email": "Here@Acme.com"},
            {"email": "blocked@acme.com"},
            {"email": "gone@acme.com"},
            {"email": "elsewhere@acme.com"},
        ],
    )
    assert result["skipped_leads"] == [
        {"email": "not-an-address", "reason": REASONS["invalid"]},
        {"email": None, "reason": REASONS["invalid"]},
        {"email": "NEW@acme.com", "reason": REASONS["dup"]},
        {"email": "Here@Acme.com", "reason": REASONS["here"]},
        {"email": "blocked@acme.com", "reason": REASONS["blocked"]},
        {"email": "gone@acme.com", "reason": REASONS["unsub"]},
        {"email": "elsewhere@acme.com", "reason": REASONS["other"]},
    ]
    assert result["added_count"] == 1
    assert result["skipped_count"] == 7
    assert result["total_leads"] == result["upload_count"] == 8
    assert result["already_added_to_campaign"] == 1
    assert result["duplicate_count"] == 1
    assert result["invalid_email_count"] == 2
    assert result["invalid_emails"] == ["not-an-address", None]
    assert result["unsubscribed_leads"] == 1
    assert result["block_count"] == 1


def test_first_applicable_reason_wins(api):
    """A lead that is blocked, unsubscribed and elsewhere is reported as blocked, etc."""
    other = api.campaign("other")
    api.import_leads(other, [{"email": "all@acme.com"}, {"email": "two@acme.com"}])
    _unsubscribe(api, "all@acme.com")
    _unsubscribe(api, "two@acme.com")
    api.post("/leads/block-list", json={"domains": ["acme.com"]})
    target = api.campaign("target")
    result = api.import_leads(target, [{"email": "all@acme.com"}])
    assert result["skipped_leads"][0]["reason"] == REASONS["blocked"]
    result = api.import_leads(target, [{"email": "two@acme.com"}], ignore_global_block_list=True)
    assert result["skipped_leads"][0]["reason"] == REASONS["unsub"]
    result = api.import_leads(
        target,
        [{"email": "two@acme.com"}],
        ignore_global_block_list=True,
        ignore_unsubscribe_list=True,
    )
    assert result["skipped_leads"][0]["reason"] == REASONS["other"]
    result = api.import_leads(
        target,
        [{"email": "two@acme.com"}],
        ignore_global_block_list=True,
        ignore_unsubscribe_list=True,
        ignore_duplicate_leads_in_other_campaign=True,
    )
    assert result["added_count"] == 1
    # Already in the campaign outranks every list, whatever the settings.
    result = api.import_leads(target, [{"email": "two@acme.com"}], ignore_global_block_list=True)
    assert result["skipped_leads"][0]["reason"] == REASONS["here"]


def test_domain_block_matches_every_address_at_that_domain_only(api):
    api.post("/leads/add-domain-block-list", json={"domain_block_list": ["Blocked.io", "x@y.com"]})
    values = {e["value"]: e["kind"] for e in api.get("/leads/block-list").json()["block_list"]}
    assert values == {"blocked.io": "domain", "x@y.com": "email"}
    campaign = api.campaign()
    result = api.import_leads(
        campaign,
        [
            {"email": "a@blocked.io"},
            {"email": "b@BLOCKED.IO"},
            {"email": "c@sub.blocked.io"},
            {"email": "x@y.com"},
        ],
    )
    assert [s["email"] for s in result["skipped_leads"]] == [
        "a@blocked.io",
        "b@BLOCKED.IO",
        "x@y.com",
    ]
    assert result["added_count"] == 1


def test_a_search_finds_a_non_ascii_domain_as_written(api):
    """Domains are stored in their ASCII (IDNA) form; a search written as people write the
    name finds them, in the block list and in the unsubscribe list."""
    api.post("/leads/block-list", json={"domains": ["münchen.de"], "emails": ["ana@BÜCHER.ch"]})
    for term, found in [
        ("münchen", ["xn--mnchen-3ya.de"]),
        ("MÜNCHEN.DE", ["xn--mnchen-3ya.de"]),
        ("bücher", ["ana@xn--bcher-kva.ch"]),
        ("xn--mnchen", ["xn--mnchen-3ya.de"]),
        ("ü-", []),
    ]:
        entries = api.get("/leads/block-list", params={"search": term}).json()["block_list"]
        assert [e["value"] for e in entries] == found, term
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "jo@münchen.de"}], ignore_global_block_list=True)
    assert api.post(f"/leads/{_lead_id(api, 'jo@xn--mnchen-3ya.de')}/unsubscribe").is_success
    listed = api.get("/leads/unsubscribes", params={"search": "MÜNCHEN"}).json()["unsubscribes"]
    assert [e["email"] for e in listed] == ["jo@xn--mnchen-3ya.de"]


def test_a_patch_cannot_take_a_lead_past_200_custom_fields(api):
    campaign = api.campaign()
    first = {f"a{i}": i for i in range(150)}
    api.import_leads(campaign, [{"email": "wide@fields.example", "custom_fields": first}])
    lead = _lead_id(api, "wide@fields.example")
    more = {f"b{i}": i for i in range(51)}
    refused = api.patch(f"/leads/{lead}", json={"custom_fields": more, "first_name": "W"})
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "too_many_custom_fields"
    assert error["details"] == {"custom_fields": 201, "max": 200}
    stored = api.get(f"/leads/{lead}").json()
    assert stored["custom_fields"] == first and stored["first_name"] is None
    fifty = dict(list(more.items())[:50])
    assert api.patch(f"/leads/{lead}", json={"custom_fields": {**fifty, "a0": "x"}}).is_success
    assert len(api.get(f"/leads/{lead}").json()["custom_fields"]) == 200


def _count_rows(api, table: str) -> int:
    return query(api.server.database_url, f"SELECT count(*) FROM {table}")[0][0]


def test_an_import_cannot_merge_a_lead_past_200_custom_fields(api):
    first, second = api.campaign("first"), api.campaign("second")
    wide = {f"a{i}": i for i in range(150)}
    api.import_leads(first, [{"email": "wide@fields.example", "custom_fields": wide}])
    # Its only campaign deleted, the lead stays: still a lead that an import merges into.
    orphan = api.campaign("gone")
    api.import_leads(orphan, [{"email": "orphan@fields.example", "custom_fields": wide}])
    assert api.delete(f"/campaigns/{orphan}").status_code == 200
    before = {t: _count_rows(api, t) for t in ("leads", "campaign_leads", "lead_events")}
    more = {f"b{i}": i for i in range(51)}
    batch = [
        {"email": "new@fields.example", "custom_fields": {f"c{i}": i for i in range(200)}},
        {"email": "WIDE@fields.example", "first_name": "W", "custom_fields": more},
        {"email": "orphan@fields.example", "custom_fields": {**more, "b51": 0}},
    ]
    response = api.post(
        f"/campaigns/{second}/leads",
        json={"lead_list": batch, "settings": {"ignore_duplicate_leads_in_other_campaign": True}},
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    # Shaped as a validation error naming each lead, so that clients can skip just those.
    assert error["code"] == "invalid_request"
    assert [(d["loc"], d["type"]) for d in error["details"]] == [
        ("lead_list.1.custom_fields", "too_many_custom_fields"),
        ("lead_list.2.custom_fields", "too_many_custom_fields"),
    ]
    assert "wide@fields.example would have 201" in error["details"][0]["msg"]
    assert "orphan@fields.example would have 202" in error["details"][1]["msg"]
    assert error["message"].startswith("'lead_list.1.custom_fields': with these custom fields")
    assert error["message"].endswith("(and 1 more problems).")
    # Nothing stored: not the new lead, not the merge, not a membership or an event.
    assert {t: _count_rows(api, t) for t in before} == before
    stored = api.get(f"/leads/{_lead_id(api, 'wide@fields.example')}").json()
    assert stored["custom_fields"] == wide and stored["first_name"] is None
    # Keys it has already are not new ones: up to exactly 200 is a merge like any other.
    fifty = dict(list(more.items())[:50])
    batch[1]["custom_fields"] = {**fifty, "a0": "x"}
    batch[2]["custom_fields"] = wide
    added = api.import_leads(second, batch, ignore_duplicate_leads_in_other_campaign=True)
    assert added["added_count"] == 3
    merged = api.get(f"/leads/{_lead_id(api, 'wide@fields.example')}").json()
    assert len(merged["custom_fields"]) == 200 and merged["custom_fields"]["a0"] == "x"


def test_one_lead_per_address_and_merge_rule(api):
    first = api.campaign("first")
    api.import_leads(
        first,
        [
            {
                "email": "Jo@Acme.com",
                "first_name": "Jo",
                "company_name": "Acme",
                "custom_fields": {"role": "CTO", "city": "Paris"},
            }
        ],
    )
    second = api.campaign("second")
    result = api.import_leads(
        second,
        [
            {
                "email": "jo@acme.com",
                "last_name": "Smith",
                "company_name": "Acme Inc",
                "custom_fields": {"city": "Lyon", "team": "Eng"},
            }
        ],
        ignore_duplicate_leads_in_other_campaign=True,
    )
    assert result["added_count"] == 1
    rows = query(
        api.server.database_url,
        "SELECT id, email, first_name, last_name, company_name, custom_fields FROM leads "
        "WHERE email = 'jo@acme.com'",
    )
    mine = [r for r in rows if r[0] == _lead_id(api, "jo@acme.com")]
    assert len(mine) == 1
    _, email, first_name, last_name, company, custom = mine[0]
    custom = json.loads(custom) if isinstance(custom, str) else custom
    assert (email, first_name, last_name, company) == ("jo@acme.com", "Jo", "Smith", "Acme Inc")
    assert custom == {"role": "CTO", "city": "Lyon", "team": "Eng"}
    memberships = query(
        api.server.database_url,
        "SELECT campaign_id, status FROM campaign_leads WHERE lead_id = :lead ORDER BY campaign_id",
        lead=mine[0][0],
    )
    assert memberships == [(first, "NOT_CONTACTED"), (second, "NOT_CONTACTED")]


def test_skipped_lead_is_left_untouched(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "keep@acme.com", "first_name": "Keep"}])
    result = api.import_leads(campaign, [{"email": "keep@acme.com", "first_name": "Changed"}])
    assert result["skipped_leads"][0]["reason"] == REASONS["here"]
    rows = query(
        api.server.database_url,
        "SELECT first_name FROM leads WHERE id = :id",
        id=_lead_id(api, "keep@acme.com"),
    )
    assert rows == [("Keep",)]


def test_lead_added_event_per_added_lead(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": f"e{i}@acme.com"} for i in range(5)] + [{"email": "x"}])
    rows = query(
        api.server.database_url,
        "SELECT type, COUNT(*) FROM lead_events WHERE campaign_id = :c GROUP BY type",
        c=campaign,
    )
    assert rows == [("LEAD_ADDED", 5)]


def test_import_into_missing_campaign_is_404_and_stores_nothing(api):
    response = api.post("/campaigns/999999/leads", json={"lead_list": [{"email": "z@acme.com"}]})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert query(api.server.database_url, "SELECT id FROM leads WHERE email = 'z@acme.com'") == []


def test_a_rejected_request_stores_nothing(api):
    campaign = api.campaign()
    leads = [{"email": f"ok{i}@acme.com"} for i in range(399)] + [{"email": "t@acme.com", "x": 1}]
    response = api.post(f"/campaigns/{campaign}/leads", json={"lead_list": leads})
    assert response.status_code == 400
    assert "lead_list.399.x" in response.json()["error"]["message"]
    assert query(
        api.server.database_url,
        "SELECT COUNT(*) FROM campaign_leads WHERE campaign_id = :c",
        c=campaign,
    ) == [(0,)]


def test_white_space_around_an_address_is_trimmed_and_a_control_inside_it_is_invalid(api):
    """A trailing CR/LF from a pasted cell must not throw away the other 399 leads."""
    campaign = api.campaign()
    sent = [
        "crlf@trim.example\r\n",
        "\ttab@trim.example ",
        "\u2028sep@trim.example",
        "head@trim.example\r\nBcc: victim@trim.example",
        "bell\x07@trim.example",
    ]
    result = api.import_leads(campaign, [{"email": e} for e in sent])
    assert result["added_count"] == 3
    assert result["skipped_leads"] == [
        {"email": sent[3], "reason": REASONS["invalid"]},
        {"email": sent[4], "reason": REASONS["invalid"]},
    ]
    listed = api.get(f"/campaigns/{campaign}/leads").json()["leads"]
    assert sorted(lead["email"] for lead in listed) == [
        "crlf@trim.example",
        "sep@trim.example",
        "tab@trim.example",
    ]


def test_campaign_delete_removes_its_memberships_not_the_leads(api):
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "stay@acme.com"}])
    assert api.delete(f"/campaigns/{campaign}").json() == {"ok": True}
    assert api.get(f"/campaigns/{campaign}").status_code == 404
    again = api.campaign()
    result = api.import_leads(again, [{"email": "stay@acme.com"}])
    assert result["added_count"] == 1


def test_a_full_last_page_has_no_next_cursor(api):
    """``next_cursor`` is null on the last page, also when that page is exactly full."""
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": f"p{i}@pages.example"} for i in range(4)])
    api.post("/leads/block-list", json={"emails": ["x@pages.example", "y@pages.example"]})
    for path, key, size in [
        (f"/campaigns/{campaign}/leads", "leads", 4),
        ("/leads/block-list", "block_list", 2),
    ]:
        full = api.get(path, params={"limit": size}).json()
        assert len(full[key]) == size and full["next_cursor"] is None, path
        first = api.get(path, params={"limit": size - 1}).json()
        assert len(first[key]) == size - 1 and first["next_cursor"] is not None, path
        rest = api.get(path, params={"limit": size - 1, "after": first["next_cursor"]}).json()
        assert len(rest[key]) == 1 and rest["next_cursor"] is None, path
    assert "x-next-cursor" not in api.get("/campaigns", params={"limit": 1}).headers
    api.campaign("second")
    paged = api.get("/campaigns", params={"limit": 1})
    assert len(paged.json()) == 1 and paged.headers["x-next-cursor"] == str(campaign)


def _newest_entry(api, path: str, key: str) -> int:
    return max(entry["id"] for entry in api.get(path, params={"limit": 1000}).json()[key])


def test_a_deleted_objects_id_is_never_given_again(api):
    """SQLite gave the newest row's id to the next row: a retried delete then removed someone
    else's unsubscribe, and a new campaign inherited a deleted one's events."""
    campaign = api.campaign()
    api.import_leads(campaign, [{"email": "first@reuse.example"}, {"email": "next@reuse.example"}])
    assert api.delete(f"/campaigns/{campaign}").status_code == 200
    again = api.campaign()
    assert again != campaign
    assert set(api.get(f"/campaigns/{again}/statistics").json()["by_event"].values()) == {0}

    unsubscribed = api.post(f"/leads/{_lead_id(api, 'first@reuse.example')}/unsubscribe")
    assert unsubscribed.status_code == 200
    entry = _newest_entry(api, "/leads/unsubscribes", "unsubscribes")
    assert api.delete(f"/leads/unsubscribes/{entry}").status_code == 200
    assert api.post(f"/leads/{_lead_id(api, 'next@reuse.example')}/unsubscribe").status_code == 200
    assert _newest_entry(api, "/leads/unsubscribes", "unsubscribes") != entry
    assert api.delete(f"/leads/unsubscribes/{entry}").status_code == 404

    api.post("/leads/block-list", json={"emails": ["first@reuse.example"]})
    blocked = _newest_entry(api, "/leads/block-list", "block_list")
    assert api.delete(f"/leads/block-list/{blocked}").status_code == 200
    api.post("/leads/block-list", json={"emails": ["next@reuse.example"]})
    assert api.delete(f"/leads/block-list/{blocked}").status_code == 404
