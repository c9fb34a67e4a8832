"""Opens, clicks and unsubscribes: the links in a sent email, followed over HTTP against the
real server on both backends; forged and altered tokens change nothing."""

from __future__ import annotations

import re

import httpx
import pytest

from openlead.tracking.tokens import EmailRef, Purpose, Token, issue
from openlead.vault import Vault
from tests.sending_support import (
    TWO_STEPS,
    campaign,
    events,
    later,
    lead_id,
    leads,
    mailbox,
    statuses,
    tick,
    utc,
    vault_of,
)
from tests.smtp_sink import Received, SmtpSink
from tests.support import Api

MONDAY = utc(2031, 3, 3, 12, 0)


def _links(message: Received) -> dict[str, str]:
    html = message.html()
    found = re.findall(r'(?:href|src)="([^"]+)"', html)
    return {
        "click": next(u for u in found if "/t/c/" in u).replace("&amp;", "&"),
        "open": next(u for u in found if "/t/o/" in u),
        "unsubscribe": message.message["List-Unsubscribe"].strip("<>"),
    }


def _sent(quiet: Api, sink: SmtpSink, **settings) -> tuple[int, Received]:  # type: ignore[no-untyped-def]
    box = mailbox(quiet, sink)
    campaign_id = campaign(quiet, [box], leads(1), settings=settings or None)
    tick(quiet.server, MONDAY)
    (message,) = sink.received()
    return campaign_id, message


def test_an_open_is_recorded(quiet, sink):
    campaign_id, message = _sent(quiet, sink)
    pixel = httpx.get(_links(message)["open"])
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert pixel.content.startswith(b"GIF89a")
    assert "no-store" in pixel.headers["cache-control"]
    timeline = events(quiet, campaign_id, lead_id(quiet, "lead0@example.com"))
    opened = [e for e in timeline if e["type"] == "EMAIL_OPENED"]
    assert len(opened) == 1 and opened[0]["seq_number"] == 1
    stats = quiet.get(f"/campaigns/{campaign_id}/statistics").json()
    assert stats["by_event"]["EMAIL_OPENED"] == 1


def test_a_click_goes_to_the_emails_own_link(quiet, sink):
    campaign_id, message = _sent(quiet, sink)
    response = httpx.get(_links(message)["click"])
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/a?x=1&y=2"
    timeline = events(quiet, campaign_id, lead_id(quiet, "lead0@example.com"))
    clicked = [e for e in timeline if e["type"] == "LINK_CLICKED"]
    assert clicked == [
        {
            "type": "LINK_CLICKED",
            "timestamp": clicked[0]["timestamp"],
            "seq_number": 1,
            "url": "https://example.com/a?x=1&y=2",
        }
    ]


def test_a_validly_signed_link_index_the_email_did_not_have_goes_nowhere(quiet, sink):
    campaign_id, _ = _sent(quiet, sink)
    account = int(_account_id(quiet))
    ref = EmailRef(account, campaign_id, lead_id(quiet, "lead0@example.com"), 1)
    beyond = issue(vault_of(quiet.server), Token(Purpose.CLICK, ref, link=1))
    response = httpx.get(f"http://127.0.0.1:{quiet.server.port}/t/c/{beyond}")
    assert response.status_code == 404
    # A step that was never sent has no links either.
    unsent = issue(
        vault_of(quiet.server), Token(Purpose.CLICK, EmailRef(account, campaign_id, ref.lead_id, 2))
    )
    assert httpx.get(f"http://127.0.0.1:{quiet.server.port}/t/c/{unsent}").status_code == 404


def _account_id(quiet: Api) -> int:
    from tests.support import query

    (row,) = query(
        quiet.server.database_url,
        "SELECT account_id FROM campaigns WHERE id = :c",
        c=quiet.get("/campaigns").json()[0]["id"],
    )
    return row[0]


def test_the_unsubscribe_page_unsubscribes_everywhere(quiet, sink):
    campaign_id, message = _sent(quiet, sink)
    other = quiet.campaign("Other")
    body = {"lead_list": leads(1), "settings": {"ignore_duplicate_leads_in_other_campaign": True}}
    quiet.post(f"/campaigns/{other}/leads", json=body)
    page = httpx.get(_links(message)["unsubscribe"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "lead0@example.com is unsubscribed" in page.text
    assert statuses(quiet, campaign_id) == {"lead0@example.com": "UNSUBSCRIBED"}
    assert statuses(quiet, other) == {"lead0@example.com": "UNSUBSCRIBED"}
    entries = quiet.get("/leads/unsubscribes").json()["unsubscribes"]
    assert [(e["email"], e["source"]) for e in entries] == [
        ("lead0@example.com", "unsubscribe_link")
    ]
    tick(quiet.server, later(MONDAY, days=3))
    assert len(sink.received()) == 1  # no follow-up


def test_one_click_unsubscribe(quiet, sink):
    campaign_id, message = _sent(quiet, sink)
    response = httpx.post(
        _links(message)["unsubscribe"],
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert statuses(quiet, campaign_id) == {"lead0@example.com": "UNSUBSCRIBED"}
    again = httpx.post(_links(message)["unsubscribe"])
    assert again.status_code == 200  # a second click is harmless
    assert len(quiet.get("/leads/unsubscribes").json()["unsubscribes"]) == 1


def test_the_way_out_outlives_the_campaign(quiet, sink):
    """Deleting a campaign deletes the record of its emails; their unsubscribe links must
    still work (RFC 8058, and the law), while their opens and clicks are no longer counted."""
    campaign_id, message = _sent(quiet, sink)
    links = _links(message)
    assert quiet.delete(f"/campaigns/{campaign_id}").status_code == 200
    assert httpx.get(links["open"]).status_code == 404
    assert httpx.get(links["click"]).status_code == 404
    response = httpx.post(
        links["unsubscribe"],
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    lead = quiet.get("/leads", params={"email": "lead0@example.com"}).json()
    assert lead["is_unsubscribed"] is True
    entries = quiet.get("/leads/unsubscribes").json()["unsubscribes"]
    assert [e["email"] for e in entries] == ["lead0@example.com"]
    assert "lead0@example.com is unsubscribed" in httpx.get(links["unsubscribe"]).text


@pytest.mark.parametrize("kind", ["click", "open", "unsubscribe"])
def test_forged_and_altered_tokens_are_404_and_change_nothing(quiet, sink, kind):
    campaign_id, message = _sent(quiet, sink)
    url = _links(message)[kind]
    base, token = url.rsplit("/", 1)
    altered = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    account = _account_id(quiet)
    ref = EmailRef(account, campaign_id, lead_id(quiet, "lead0@example.com"), 1)
    purpose = {"click": Purpose.CLICK, "open": Purpose.OPEN, "unsubscribe": Purpose.UNSUBSCRIBE}[
        kind
    ]
    forged = issue(Vault(b"not this installation's key"), Token(purpose, ref))
    wrong_kind = issue(
        vault_of(quiet.server), Token(Purpose.OPEN if kind != "open" else Purpose.CLICK, ref)
    )
    # A token altered in length, even far past any real one, is a link that does not exist.
    for bad in (altered, forged, wrong_kind, token + "A", "x" * 64, token * 5, "x" * 4000):
        for method in ("GET", "POST") if kind == "unsubscribe" else ("GET",):
            response = httpx.request(method, f"{base}/{bad}")
            assert response.status_code == 404, (bad, response.text)
            assert response.json()["error"]["code"] == "not_found"
    timeline = events(quiet, campaign_id, lead_id(quiet, "lead0@example.com"))
    assert {e["type"] for e in timeline} == {"LEAD_ADDED", "EMAIL_SENT", "STATUS_CHANGED"}
    assert quiet.get("/leads/unsubscribes").json()["unsubscribes"] == []


def test_tracking_turned_off(quiet, sink):
    _, message = _sent(
        quiet, sink, track_settings=["DONT_TRACK_EMAIL_OPEN", "DONT_TRACK_LINK_CLICK"]
    )
    html = message.html()
    assert "/t/o/" not in html and "/t/c/" not in html
    assert 'href="https://example.com/a?x=1&amp;y=2"' in html
    assert message.message["List-Unsubscribe"]  # unsubscribing is never turned off


def test_plain_text_emails(quiet, sink):
    _, message = _sent(quiet, sink, send_as_plain_text=True, unsubscribe_text="Opt out here")
    assert message.message.get_content_type() == "text/plain"
    text = message.text()
    assert "Hi Name0," in text and "https://example.com/a?x=1&y=2" in text
    assert "Opt out here: http://127.0.0.1:" in text
    assert "/t/o/" not in text and "/t/c/" not in text


@pytest.mark.parametrize(
    ("setting", "kind"), [("CLICK_ON_A_LINK", "click"), ("OPEN_AN_EMAIL", "open")]
)
def test_engagement_can_stop_the_sequence(quiet, sink, setting, kind):
    campaign_id, message = _sent(quiet, sink, stop_lead_settings=setting)
    httpx.get(_links(message)[kind])
    tick(quiet.server, later(MONDAY, days=3))
    assert len(sink.received()) == 1
    assert statuses(quiet, campaign_id) == {"lead0@example.com": "IN_PROGRESS"}


def test_without_a_stop_setting_engagement_does_not_stop_it(quiet, sink):
    _, message = _sent(quiet, sink)
    httpx.get(_links(message)["click"])
    httpx.get(_links(message)["open"])
    tick(quiet.server, later(MONDAY, days=3))
    assert len(sink.received()) == 2
    assert sink.received()[1].message["Subject"] == "Re: " + TWO_STEPS[0]["subject"].replace(
        "{{first_name}}", "Name0"
    )
