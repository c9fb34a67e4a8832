"""Tenant isolation over the whole route table: another account's objects are 404.

The test walks every route the app serves. A route with a path id must be answered 404 when a
second account names the first account's object; a route without one must not show the first
account's data. A new route without an entry in ``BODIES`` (when it takes a body) fails here,
so no endpoint can forget the check.
"""

from __future__ import annotations

import pytest

from openlead.app import create_app
from openlead.config import Settings

BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/api/v1/campaigns/{campaign_id}/leads"): {"lead_list": [{"email": "t@x.com"}]},
    ("PATCH", "/api/v1/campaigns/{campaign_id}/leads/{lead_id}/status"): {"status": "INTERESTED"},
    ("PATCH", "/api/v1/leads/{lead_id}"): {"first_name": "Mallory"},
    ("POST", "/api/v1/campaigns/{campaign_id}/sequences"): {
        "sequences": [
            {
                "seq_number": 1,
                "seq_delay_details": {"delay_in_days": 0},
                "subject": "Hi {{first_name}}",
                "email_body": "Mallory was here",
            }
        ]
    },
    ("POST", "/api/v1/campaigns/{campaign_id}/email-accounts"): {"email_account_ids": [1]},
    ("DELETE", "/api/v1/campaigns/{campaign_id}/email-accounts"): {"email_account_ids": [1]},
    ("POST", "/api/v1/campaigns/{campaign_id}/schedule"): {
        "timezone": "UTC",
        "days_of_the_week": [1, 2, 3],
        "start_hour": "09:00",
        "end_hour": "17:00",
    },
    ("POST", "/api/v1/campaigns/{campaign_id}/settings"): {"send_as_plain_text": True},
    ("POST", "/api/v1/campaigns/{campaign_id}/status"): {"status": "PAUSED"},
}
# Routes that take no body at all.
WITHOUT_BODY = {
    ("POST", "/api/v1/leads/{lead_id}/unsubscribe"),
    ("POST", "/api/v1/campaigns/{campaign_id}/leads/{lead_id}/unsubscribe"),
    ("POST", "/api/v1/email-accounts/{email_account_id}/test"),
}
# No key at all: a signed token names the account, and only this installation can sign one
# (tests/test_tracking.py forges and alters tokens).
PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
    ("GET", "/t/o/{token}"),
    ("GET", "/t/c/{token}"),
}


def _routes() -> list[tuple[str, str]]:
    """Every (method, path) the API serves, read from its OpenAPI schema."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", rate_limit="off"))
    return sorted(
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    )


ROUTES = _routes()
WITH_IDS = [r for r in ROUTES if "{" in r[1] and r not in PUBLIC]


@pytest.fixture
def owned(api):
    """One of each object, owned by the first account."""
    campaign = api.campaign("owned")
    api.import_leads(campaign, [{"email": "owned@tenant.com"}])
    api.post("/leads/block-list", json={"emails": ["blocked@tenant.com"]})
    block_id = api.get("/leads/block-list").json()["block_list"][0]["id"]
    lead_id = _lead_id(api, "owned@tenant.com")
    assert api.post(f"/leads/{lead_id}/unsubscribe").status_code == 200
    unsubscribe_id = api.get("/leads/unsubscribes").json()["unsubscribes"][0]["id"]
    mailbox = api.post("/email-accounts/save", json=MAILBOX)
    assert mailbox.status_code == 200, mailbox.text
    assert (
        api.post(
            f"/campaigns/{campaign}/email-accounts",
            json={"email_account_ids": [mailbox.json()["id"]]},
        ).status_code
        == 200
    )
    return {
        "campaign_id": campaign,
        "lead_id": lead_id,
        "block": block_id,
        "unsubscribe": unsubscribe_id,
        "email_account_id": mailbox.json()["id"],
    }


def _lead_id(api, email: str) -> int:
    from tests.support import query

    rows = query(
        api.server.database_url,
        "SELECT l.id FROM leads l JOIN campaign_leads cl ON cl.lead_id = l.id "
        "JOIN campaigns c ON c.id = cl.campaign_id WHERE l.email = :e AND c.name = 'owned' "
        "ORDER BY l.id",  # the newest: this test's account (heap order is not insertion order)
        e=email,
    )
    return rows[-1][0]


def _fill(path: str, ids: dict[str, int]) -> str:
    entry = ids["block"] if "/block-list/" in path else ids["unsubscribe"]
    return (
        path.removeprefix("/api/v1")
        .replace("{campaign_id}", str(ids["campaign_id"]))
        .replace("{lead_id}", str(ids["lead_id"]))
        .replace("{entry_id}", str(entry))
        .replace("{email_account_id}", str(ids["email_account_id"]))
    )


MAILBOX = {
    "from_name": "Owned Sender",
    "from_email": "owned-sender@tenant.com",
    "user_name": "owned-sender@tenant.com",
    "password": "owned-secret",
    "smtp_host": "127.0.0.1",
    "smtp_port": 9,
    "smtp_security": "NONE",
}


def test_every_route_with_a_body_has_an_example():
    writes = {(m, p) for m, p in WITH_IDS if m in ("POST", "PATCH", "PUT")}
    assert writes - WITHOUT_BODY <= set(BODIES)


@pytest.mark.parametrize(("method", "path"), WITH_IDS, ids=[f"{m} {p}" for m, p in WITH_IDS])
def test_another_accounts_object_is_404(method, path, owned, other_api, api):
    response = other_api.request(method, _fill(path, owned), json=BODIES.get((method, path)))
    assert response.status_code == 404, f"{method} {path}: {response.status_code} {response.text}"
    assert response.json()["error"]["code"] == "not_found"
    # The owner still sees it: the 404 was about the caller, not a missing object.
    if method == "GET":
        assert api.request(method, _fill(path, owned)).status_code == 200


LISTS = [r for r in ROUTES if r[0] == "GET" and "{" not in r[1] and r not in PUBLIC]
# Look-ups by a query parameter: another account's answer is 404, like a path id.
LOOKUPS = {("GET", "/api/v1/leads"): {"email": "owned@tenant.com"}}


@pytest.mark.parametrize(("method", "path"), LISTS, ids=[f"{m} {p}" for m, p in LISTS])
def test_another_accounts_lists_are_invisible(method, path, owned, other_api, api):
    lookup = LOOKUPS.get((method, path))
    response = other_api.request(method, path.removeprefix("/api/v1"), params=lookup)
    if lookup is not None:
        assert response.status_code == 404
        assert api.request(method, path.removeprefix("/api/v1"), params=lookup).status_code == 200
        return
    assert response.status_code == 200
    assert "tenant.com" not in response.text
    assert "owned" not in response.text


def test_another_accounts_mailbox_cannot_be_updated_by_its_id(owned, other_api, api):
    """``/email-accounts/save`` names the mailbox in its body, not its path."""
    body = {**MAILBOX, "id": owned["email_account_id"], "from_name": "Mallory"}
    response = other_api.post("/email-accounts/save", json=body)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    mailbox = api.get(f"/email-accounts/{owned['email_account_id']}").json()
    assert mailbox["from_name"] == "Owned Sender"


def test_another_accounts_mailbox_cannot_be_attached(owned, other_api):
    campaign = other_api.campaign("mine")
    response = other_api.post(
        f"/campaigns/{campaign}/email-accounts",
        json={"email_account_ids": [owned["email_account_id"]]},
    )
    assert response.status_code == 404
    assert other_api.get(f"/campaigns/{campaign}/email-accounts").json()["email_accounts"] == []
