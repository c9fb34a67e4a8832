"""Leads across campaigns: look-up by address, by id, and profile updates."""

from __future__ import annotations


def _setup(api):
    one, two = api.campaign("one"), api.campaign("two")
    api.import_leads(
        one,
        [
            {
                "email": "Sam@Corp.com",
                "first_name": "Sam",
                "custom_fields": {"role": "CTO", "city": "Paris"},
            }
        ],
    )
    api.import_leads(
        two, [{"email": "sam@corp.com"}], ignore_duplicate_leads_in_other_campaign=True
    )
    return one, two


def test_lookup_by_email_lists_campaigns_and_statuses(api):
    one, two = _setup(api)
    lead_id = api.get(f"/campaigns/{one}/leads").json()["leads"][0]["id"]
    api.patch(f"/campaigns/{two}/leads/{lead_id}/status", json={"status": "INTERESTED"})
    for path in ("/leads", "/leads/"):
        response = api.get(path, params={"email": " SAM@corp.COM "})
        assert response.status_code == 200, response.text
        lead = response.json()
        assert lead["id"] == lead_id
        assert lead["email"] == "sam@corp.com"
        assert lead["campaigns"] == [
            {"campaign_id": one, "status": "NOT_CONTACTED"},
            {"campaign_id": two, "status": "INTERESTED"},
        ]
        assert lead["is_blocked"] is False and lead["is_unsubscribed"] is False
    assert api.get("/leads", params={"email": "nobody@corp.com"}).status_code == 404
    bad = api.get("/leads", params={"email": "not an address"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_email"
    assert api.get("/leads").status_code == 400


def test_get_and_patch_lead(api):
    one, _ = _setup(api)
    lead_id = api.get(f"/campaigns/{one}/leads").json()["leads"][0]["id"]
    assert api.get(f"/leads/{lead_id}").json()["first_name"] == "Sam"
    response = api.patch(
        f"/leads/{lead_id}",
        json={
            "last_name": "Stone",
            "custom_fields": {"city": "Lyon", "team": "Eng", "role": None},
        },
    )
    assert response.status_code == 200, response.text
    lead = response.json()
    assert (lead["first_name"], lead["last_name"]) == ("Sam", "Stone")
    assert lead["custom_fields"] == {"role": "CTO", "city": "Lyon", "team": "Eng"}
    # The campaign listing shows the same profile: one lead, every campaign.
    listed = api.get(f"/campaigns/{one}/leads").json()["leads"][0]
    assert listed["last_name"] == "Stone" and listed["custom_fields"]["team"] == "Eng"
    refused = api.patch(f"/leads/{lead_id}", json={"email": "other@corp.com"})
    assert refused.status_code == 400 and "email" in refused.json()["error"]["message"]
    assert api.patch("/leads/99999999", json={"first_name": "X"}).status_code == 404
    assert api.get("/leads/99999999").status_code == 404


def test_blocked_lead_shows_in_lookup(api):
    _setup(api)
    api.post("/leads/block-list", json={"domains": ["corp.com"]})
    assert api.get("/leads", params={"email": "sam@corp.com"}).json()["is_blocked"] is True
