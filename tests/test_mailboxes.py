"""Email accounts (mailboxes) and a campaign's sending configuration, through the real server
on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sending_support import ALWAYS
from tests.sending_support import campaign as ready_campaign
from tests.smtp_sink import SmtpSink
from tests.support import free_port, query

PASSWORD = "correct horse battery staple"


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink(user="sam@sender.example", password=PASSWORD).start()
    yield server
    server.stop()


def _save(api, body: dict, status: int = 200) -> dict:  # type: ignore[no-untyped-def]
    response = api.post("/email-accounts/save", json=body)
    assert response.status_code == status, response.text
    return response.json()


def _error(response) -> str:  # type: ignore[no-untyped-def]
    assert 400 <= response.status_code < 500, response.text
    return response.json()["error"]["code"]


def test_a_mailbox_is_saved_and_its_password_never_comes_back(api, sink):
    saved = _save(api, sink.mailbox("Sam@Sender.example"))
    assert saved["ok"] is True
    assert saved["from_email"] == "sam@sender.example"  # normalised like every address
    assert saved["has_password"] is True and saved["state"] == "OK"
    for answer in (
        saved,
        api.get(f"/email-accounts/{saved['id']}").json(),
        api.get("/email-accounts").json(),
    ):
        assert PASSWORD not in str(answer)
        shown = str(answer).replace("has_password", "").replace("has_imap_password", "")
        assert "password" not in shown
    listed = api.get("/email-accounts").json()["email_accounts"]
    assert [m["id"] for m in listed] == [saved["id"]]


def test_the_password_is_stored_encrypted_and_never_logged(api, sink):
    saved = _save(api, sink.mailbox())
    (stored,) = query(
        api.server.database_url,
        "SELECT password_encrypted FROM email_accounts WHERE id = :id",
        id=saved["id"],
    )
    assert PASSWORD not in stored[0] and len(stored[0]) > 40
    assert api.post(f"/email-accounts/{saved['id']}/test").json()["ok"] is True
    assert PASSWORD not in api.server.log()


def test_an_update_keeps_the_password_unless_given(api, sink):
    saved = _save(api, sink.mailbox())
    body = {**sink.mailbox(), "id": saved["id"], "from_name": "Samantha"}
    del body["password"]
    updated = _save(api, body)
    assert updated["id"] == saved["id"] and updated["from_name"] == "Samantha"
    assert api.post(f"/email-accounts/{saved['id']}/test").json()["ok"] is True
    _save(api, {**body, "password": "wrong"})
    tested = api.post(f"/email-accounts/{saved['id']}/test").json()
    assert tested["ok"] is False and tested["stage"] == "login"


def test_an_update_keeps_every_setting_it_leaves_out(api, sink):
    inbox = {"imap_host": "imap.sender.example", "imap_port": 993, "imap_security": "SSL"}
    saved = _save(api, sink.mailbox(max_email_per_day=20, **inbox))
    required = ("from_email", "user_name", "smtp_host", "smtp_port")
    renamed = {name: saved[name] for name in required} | {"from_name": "Samantha"}
    updated = _save(api, {**renamed, "id": saved["id"]})
    assert updated["from_name"] == "Samantha"
    # Not the defaults (100 a day, STARTTLS, no inbox): a rename must not raise a daily cap.
    assert updated["max_email_per_day"] == 20
    assert updated["smtp_security"] == "NONE"
    assert {name: updated[name] for name in inbox} == inbox
    assert api.get(f"/email-accounts/{saved['id']}").json()["max_email_per_day"] == 20
    # A null clears what may be null; a value given replaces.
    cleared = _save(api, {**renamed, "id": saved["id"], "imap_host": None, "max_email_per_day": 5})
    assert cleared["imap_host"] is None and cleared["imap_port"] == 993
    assert cleared["max_email_per_day"] == 5
    assert api.post(f"/email-accounts/{saved['id']}/test").json()["ok"] is True


def test_the_login_test_says_where_it_failed(api, sink):
    good = _save(api, sink.mailbox())
    assert api.post(f"/email-accounts/{good['id']}/test").json() == {
        "ok": True,
        "stage": None,
        "message": "Connected and logged in.",
        "smtp_code": None,
        "imap": None,  # no imap_host: no inbox to try
    }
    wrong = _save(api, sink.mailbox("other@sender.example", password="nope"))
    failed = api.post(f"/email-accounts/{wrong['id']}/test").json()
    assert failed["ok"] is False and failed["stage"] == "login"
    assert failed["smtp_code"] == 535
    closed = _save(api, sink.mailbox("closed@sender.example", smtp_port=free_port(), password="x"))
    unreachable = api.post(f"/email-accounts/{closed['id']}/test").json()
    assert unreachable["ok"] is False and unreachable["stage"] == "connect"


def test_one_mailbox_per_address(api, sink):
    first = _save(api, sink.mailbox("sam@sender.example"))
    response = api.post("/email-accounts/save", json=sink.mailbox("SAM@sender.example"))
    assert response.status_code == 409
    assert response.json()["error"]["details"] == {"id": first["id"]}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"from_email": "not an address"}, "invalid_email"),
        ({"smtp_host": "smtp.example.com\r\nRCPT TO:<x@y>"}, "invalid_request"),
        ({"smtp_host": "a b"}, "invalid_request"),
        ({"smtp_port": 0}, "invalid_request"),
        ({"smtp_port": "587"}, "invalid_request"),
        ({"smtp_security": "TLS"}, "invalid_request"),
        ({"from_name": "Sam\nBcc: x@y.z"}, "invalid_request"),
        ({"max_email_per_day": 0}, "invalid_request"),
        ({"warmup": True}, "invalid_request"),
        ({"password": None}, "missing_password"),
    ],
)
def test_bad_mailboxes_are_refused_and_nothing_is_stored(api, sink, change, code):
    response = api.post("/email-accounts/save", json={**sink.mailbox(), **change})
    assert _error(response) == code
    assert api.get("/email-accounts").json()["email_accounts"] == []


def test_smartleads_extra_fields_are_accepted(api, sink):
    body = {**sink.mailbox(), "warmup_enabled": False, "client_id": 3.0, "signature": "Sam"}
    assert _save(api, body)["id"]


def test_deleting_a_mailbox(api, sink):
    saved = _save(api, sink.mailbox())
    assert api.delete(f"/email-accounts/{saved['id']}").json() == {"ok": True}
    assert api.get(f"/email-accounts/{saved['id']}").status_code == 404
    assert api.delete(f"/email-accounts/{saved['id']}").status_code == 404
    assert (
        api.post("/email-accounts/save", json={**sink.mailbox(), "id": saved["id"]}).status_code
        == 404
    )


def test_mailbox_pages(api, sink):
    ids = [_save(api, sink.mailbox(f"s{i}@sender.example"))["id"] for i in range(3)]
    first = api.get("/email-accounts", params={"limit": 2}).json()
    assert [m["id"] for m in first["email_accounts"]] == ids[:2]
    rest = api.get("/email-accounts", params={"after": first["next_cursor"]}).json()
    assert [m["id"] for m in rest["email_accounts"]] == ids[2:]
    assert rest["next_cursor"] is None


# --- a campaign's mailboxes, schedule and settings ------------------------------------------


def test_a_campaigns_mailboxes(api, sink):
    one = _save(api, sink.mailbox("one@sender.example"))["id"]
    two = _save(api, sink.mailbox("two@sender.example"))["id"]
    campaign = api.campaign()
    added = api.post(
        f"/campaigns/{campaign}/email-accounts", json={"email_account_ids": [one, two, one]}
    )
    assert [m["id"] for m in added.json()["email_accounts"]] == [one, two]
    again = api.post(f"/campaigns/{campaign}/email-accounts", json={"email_account_ids": [two]})
    assert [m["id"] for m in again.json()["email_accounts"]] == [one, two]
    removed = api.delete(f"/campaigns/{campaign}/email-accounts", json={"email_account_ids": [one]})
    assert [m["id"] for m in removed.json()["email_accounts"]] == [two]
    listed = api.get(f"/campaigns/{campaign}/email-accounts").json()
    assert listed["campaign_id"] == campaign and [m["id"] for m in listed["email_accounts"]] == [
        two
    ]


def test_unknown_mailboxes_are_named_and_nothing_is_attached(api, sink):
    one = _save(api, sink.mailbox())["id"]
    campaign = api.campaign()
    response = api.post(
        f"/campaigns/{campaign}/email-accounts", json={"email_account_ids": [one, 999_999]}
    )
    assert response.status_code == 404
    assert response.json()["error"]["details"] == {"missing": [999_999]}
    assert api.get(f"/campaigns/{campaign}/email-accounts").json()["email_accounts"] == []
    assert (
        api.post("/campaigns/999999/email-accounts", json={"email_account_ids": [one]}).status_code
        == 404
    )


def test_the_schedule_is_stored_and_shown_on_the_campaign(api):
    campaign = api.campaign()
    body = {
        "timezone": "America/New_York",
        "days_of_the_week": [5, 1, 2, 1],
        "start_hour": "09:00",
        "end_hour": "17:30",
        "min_time_btw_emails": 12,
        "max_new_leads_per_day": 40,
        "schedule_start_time": "2027-01-04T09:00:00-05:00",
    }
    saved = api.post(f"/campaigns/{campaign}/schedule", json=body)
    assert saved.status_code == 200, saved.text
    expected = {
        **body,
        "days_of_the_week": [1, 2, 5],
        "schedule_start_time": "2027-01-04T14:00:00.000Z",
    }
    assert saved.json()["schedule"] == expected
    assert api.get(f"/campaigns/{campaign}").json()["schedule"] == expected


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "invalid_timezone"),
        ({"timezone": "EST5EDT "}, "invalid_timezone"),
        ({"start_hour": "17:00", "end_hour": "09:00"}, "invalid_schedule"),
        ({"start_hour": "9:00"}, "invalid_request"),
        ({"end_hour": "24:30"}, "invalid_request"),
        ({"days_of_the_week": [7]}, "invalid_request"),
        ({"days_of_the_week": []}, "invalid_request"),
        ({"min_time_btw_emails": -1}, "invalid_request"),
        ({"schedule_start_time": "tomorrow"}, "invalid_schedule"),
        ({"schedule_start_time": "2027-01-04T09:00:00"}, "invalid_schedule"),
        ({"sunday": True}, "invalid_request"),
    ],
)
def test_bad_schedules_are_refused(api, change, code):
    campaign = api.campaign()
    response = api.post(f"/campaigns/{campaign}/schedule", json={**ALWAYS, **change})
    assert _error(response) == code
    assert api.get(f"/campaigns/{campaign}").json()["schedule"] is None


def test_settings_change_only_what_is_given(api):
    campaign = api.campaign()
    assert api.get(f"/campaigns/{campaign}").json()["settings"] == {
        "track_settings": [],
        "stop_lead_settings": "REPLY_TO_AN_EMAIL",
        "unsubscribe_text": None,
        "send_as_plain_text": False,
    }
    first = api.post(
        f"/campaigns/{campaign}/settings",
        json={"track_settings": ["DONT_TRACK_LINK_CLICK"], "unsubscribe_text": "Opt out"},
    )
    assert first.status_code == 200, first.text
    second = api.post(
        f"/campaigns/{campaign}/settings", json={"stop_lead_settings": "CLICK_ON_A_LINK"}
    )
    assert second.json()["settings"] == {
        "track_settings": ["DONT_TRACK_LINK_CLICK"],
        "stop_lead_settings": "CLICK_ON_A_LINK",
        "unsubscribe_text": "Opt out",
        "send_as_plain_text": False,
    }
    bad = api.post(f"/campaigns/{campaign}/settings", json={"stop_lead_settings": "NEVER"})
    assert _error(bad) == "invalid_request"


def test_start_names_every_reason_at_once(api):
    campaign = api.campaign()
    response = api.post(f"/campaigns/{campaign}/status", json={"status": "START"})
    assert _error(response) == "campaign_not_ready"
    reasons = [r["code"] for r in response.json()["error"]["details"]["reasons"]]
    assert reasons == ["no_sequence", "no_email_account", "no_schedule"]
    assert api.get(f"/campaigns/{campaign}").json()["status"] == "DRAFTED"


def test_start_counts_the_leads_missing_a_variable(api, sink):
    campaign = ready_campaign(api, [_save(api, sink.mailbox())["id"]], [], start=False)
    api.import_leads(
        campaign,
        [
            {"email": "a@x.example", "first_name": "A"},
            {"email": "b@x.example"},
            {"email": "c@x.example", "first_name": " "},
        ],
    )
    response = api.post(f"/campaigns/{campaign}/status", json={"status": "START"})
    (reason,) = response.json()["error"]["details"]["reasons"]
    assert reason["code"] == "leads_missing_variables"
    assert reason["leads_missing"] == {"first_name": 2}
    assert "2 without first_name" in response.json()["error"]["message"]
    assert len(reason["sample_lead_ids"]["first_name"]) == 2


def test_start_is_not_held_up_by_leads_it_will_not_write_to(api, sink):
    campaign = ready_campaign(api, [_save(api, sink.mailbox())["id"]], [], start=False)
    emails = ["gone@x.example", "bounced@x.example", "waiting@x.example"]
    api.import_leads(campaign, [{"email": e} for e in emails])
    listed = api.get(f"/campaigns/{campaign}/leads").json()["leads"]
    ids = {lead["email"]: lead["id"] for lead in listed}
    for email, status in [("gone@x.example", "UNSUBSCRIBED"), ("bounced@x.example", "BOUNCED")]:
        path = f"/campaigns/{campaign}/leads/{ids[email]}/status"
        assert api.patch(path, json={"status": status}).status_code == 200
    response = api.post(f"/campaigns/{campaign}/status", json={"status": "START"})
    (reason,) = response.json()["error"]["details"]["reasons"]
    assert reason["leads_missing"] == {"first_name": 1}
    assert reason["sample_lead_ids"] == {"first_name": [ids["waiting@x.example"]]}
    path = f"/campaigns/{campaign}/leads/{ids['waiting@x.example']}/status"
    assert api.patch(path, json={"status": "NOT_INTERESTED"}).status_code == 200
    started = api.post(f"/campaigns/{campaign}/status", json={"status": "START"})
    assert started.status_code == 200, started.text
    check = api.get(f"/campaigns/{campaign}/sequences/check").json()
    (variable,) = [v for v in check["variables"] if v["name"] == "first_name"]
    assert variable["leads_missing"] == 3  # the check still counts every lead


def test_status_changes(api, sink):
    campaign = ready_campaign(api, [_save(api, sink.mailbox())["id"]], [], start=False)

    def change(status: str):  # type: ignore[no-untyped-def]
        return api.post(f"/campaigns/{campaign}/status", json={"status": status})

    assert change("START").json() == {
        "ok": True,
        "id": campaign,
        "status": "ACTIVE",
        "previous_status": "DRAFTED",
    }
    assert change("PAUSED").json()["status"] == "PAUSED"
    assert change("START").json()["previous_status"] == "PAUSED"
    assert _error(change("RUNNING")) == "invalid_request"
    assert change("STOPPED").json()["status"] == "STOPPED"
    refused = change("START")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "campaign_stopped"
    assert api.get(f"/campaigns/{campaign}").json()["status"] == "STOPPED"


def test_a_mailbox_without_a_login(api, sink):
    saved = _save(api, {**sink.mailbox("relay@sender.example"), "password": ""})
    assert saved["has_password"] is False
    assert _save(api, sink.mailbox("login@sender.example"))["has_password"] is True


def test_the_test_of_a_mailbox_without_a_password_says_no_login_was_tried(api, sink):
    """With no password there is no login to try: the test says so, and asks the server
    whether it takes mail from the mailbox without one (MAIL FROM, then RSET)."""
    relay = SmtpSink().start()  # takes mail without a login
    try:
        open_relay = _save(api, {**relay.mailbox("relay@sender.example"), "password": ""})
        assert api.post(f"/email-accounts/{open_relay['id']}/test").json() == {
            "ok": True,
            "stage": None,
            "message": "Connected; no password is set, so no login was tried, and the server "
            "takes mail from relay@sender.example without one.",
            "smtp_code": None,
            "imap": None,
        }
    finally:
        relay.stop()
    # This sink requires a login: the sends would fail, so the test must not pass.
    no_login = _save(api, {**sink.mailbox("nologin@sender.example"), "password": ""})
    refused = api.post(f"/email-accounts/{no_login['id']}/test").json()
    assert refused["ok"] is False and refused["stage"] == "sender"
    assert refused["smtp_code"] == 530
    assert refused["message"] == (
        "No password is set, so no login was tried, and the server refused mail from "
        "nologin@sender.example: 5.7.0 Authentication required"
    )
    assert sink.received() == []


def test_a_host_that_is_not_one_is_refused_in_words(api, sink):
    response = api.post("/email-accounts/save", json={**sink.mailbox(), "smtp_host": "bad host"})
    assert _error(response) == "invalid_request"
    message = response.json()["error"]["message"]
    assert (
        message
        == "'smtp_host': must be a host name (letters, digits, dots and hyphens) or an IP address."
    )


def test_a_campaigns_mailboxes_come_in_pages(api, sink):
    ids = [_save(api, sink.mailbox(f"p{i}@sender.example"))["id"] for i in range(3)]
    campaign = api.campaign()
    api.post(f"/campaigns/{campaign}/email-accounts", json={"email_account_ids": ids})
    first = api.get(f"/campaigns/{campaign}/email-accounts", params={"limit": 2}).json()
    assert [m["id"] for m in first["email_accounts"]] == ids[:2]
    assert first["next_cursor"] == str(ids[1])
    rest = api.get(
        f"/campaigns/{campaign}/email-accounts", params={"after": first["next_cursor"]}
    ).json()
    assert [m["id"] for m in rest["email_accounts"]] == ids[2:] and rest["next_cursor"] is None


def test_the_server_generated_its_secret_key_privately(api):
    import os
    import stat

    path = api.server.log_path.parent / "secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() not in api.server.log()
