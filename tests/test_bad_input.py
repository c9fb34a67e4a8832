"""Bad input against the real server, on both backends: a clear 4xx in the one error shape,
and nothing stored. Then authentication and tenant isolation."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from openlead.app import API_PREFIX, create_app
from openlead.config import Settings
from openlead.db.engine import create_database
from openlead.db.tables import leads
from tests.support import Api, Server

MIB = 1024 * 1024
# An error answer names where the problem is; it never echoes a large input back.
MAX_ERROR_BYTES = 4096
CONTROL_MESSAGE = "must be one line without control characters"


# --- helpers -------------------------------------------------------------------------------


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> dict[str, Any]:
    """The response is ``status`` with exactly the error shape and ``code``; ``message`` is a
    part of its message. Returns the error object."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("application/json")
    assert len(response.content) <= MAX_ERROR_BYTES, f"{len(response.content)} bytes"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"].endswith("."), error
    if message is not None:
        assert message in error["message"], error
    return error


def unique_emails(count: int) -> list[str]:
    tag = secrets.token_hex(4)
    return [f"lead{i}-{tag}@example.com" for i in range(count)]


def post_raw(api: Api, path: str, content: bytes, content_type: str | None = "application/json"):
    headers = {"content-type": content_type} if content_type else {}
    return api.post(path, content=content, headers=headers)


def assert_nothing_stored(api: Api, campaign: int, emails: list[str]) -> None:
    """The addresses a rejected request carried are not in the campaign (a valid import of
    them adds every one), and the account's lists are still empty."""
    result = api.import_leads(campaign, [{"email": e} for e in emails])
    assert result["added_count"] == len(emails), result
    assert result["skipped_leads"] == []
    assert_lists_empty(api)


def assert_lists_empty(api: Api) -> None:
    blocks = api.get("/leads/block-list")
    assert blocks.status_code == 200 and blocks.json()["block_list"] == [], blocks.text
    unsubscribes = api.get("/leads/unsubscribes")
    assert unsubscribes.status_code == 200 and unsubscribes.json()["unsubscribes"] == []


def stored_lead(server: Server, email: str) -> Any:
    """The lead row with this stored address (addresses are unique per test)."""

    async def run() -> Any:
        database = create_database(server.database_url, pool_size=1)
        try:
            async with database.read() as conn:
                query = select(leads.c.id, leads.c.email).where(leads.c.email == email)
                return (await conn.execute(query)).first()
        finally:
            await database.dispose()

    return asyncio.run(run())


@pytest.fixture
def campaign(api: Api) -> int:
    return api.campaign()


@pytest.fixture
def leads_path(campaign: int) -> str:
    return f"/campaigns/{campaign}/leads"


# --- the body as a whole ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"lead_list": [{"email": "a@example.com"}',  # cut short
        b'{"lead_list": [{"email": "a@example.com"}]} trailing',
        b"{'lead_list': []}",  # Python, not JSON
        b'{"lead_list": [{"email": "\xff\xfe@example.com"}]}',  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # nested past any parser's depth
    ],
    ids=["truncated", "trailing-garbage", "single-quotes", "invalid-utf8", "too-deep"],
)
def test_malformed_json_is_400(api: Api, campaign: int, leads_path: str, raw: bytes) -> None:
    assert_error(
        post_raw(api, leads_path, raw), 400, "malformed_json", "The request body is not valid JSON"
    )
    assert_nothing_stored(api, campaign, ["a@example.com"])


@pytest.mark.parametrize("body", [[{"email": "a@example.com"}], "a@example.com", 42, True])
def test_json_that_is_not_an_object_is_400(
    api: Api, campaign: int, leads_path: str, body: Any
) -> None:
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["message"] == "The request body must be a JSON object."
    assert_nothing_stored(api, campaign, ["a@example.com"])


@pytest.mark.parametrize("path", ["/campaigns", "/leads/block-list", "LEADS"])
def test_post_without_a_body_is_400(api: Api, leads_path: str, path: str) -> None:
    path = leads_path if path == "LEADS" else path
    error = assert_error(api.post(path), 400, "missing_body")
    assert error["message"] == "The request needs a JSON object as its body."
    # JSON null is no body either.
    assert_error(post_raw(api, path, b"null"), 400, "missing_body")
    assert len(api.get("/campaigns").json()) == 1
    assert_lists_empty(api)


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None],
    ids=["text", "form", "multipart", "no-content-type"],
)
def test_a_body_not_sent_as_json_is_415(
    api: Api, campaign: int, leads_path: str, content_type: str | None
) -> None:
    emails = unique_emails(2)
    raw = json.dumps({"lead_list": [{"email": e} for e in emails]}).encode()
    error = assert_error(
        post_raw(api, leads_path, raw, content_type), 415, "unsupported_media_type"
    )
    assert "Content-Type: application/json" in error["message"]
    assert_nothing_stored(api, campaign, emails)


def test_a_body_over_the_limit_is_413(api: Api, campaign: int, leads_path: str) -> None:
    emails = unique_emails(2)
    padding = "x" * (9 * MIB)
    raw = json.dumps(
        {"lead_list": [{"email": emails[0]}, {"email": emails[1], "first_name": padding}]}
    ).encode()
    # Declared up front with Content-Length ...
    error = assert_error(post_raw(api, leads_path, raw), 413, "body_too_large")
    assert error["message"] == "The request body is larger than the server accepts."

    # ... and streamed without one (chunked): refused once it passes the limit.
    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), MIB):
            yield raw[start : start + MIB]

    chunked = api.post(leads_path, content=chunks(), headers={"content-type": "application/json"})
    assert_error(chunked, 413, "body_too_large")
    assert_nothing_stored(api, campaign, emails)


# --- wrong shapes and types -----------------------------------------------------------------


def _with_bad_lead(emails: list[str], **fields: Any) -> dict[str, Any]:
    """A valid lead first, so that a partial write would show, then the bad one."""
    return {"lead_list": [{"email": emails[0]}, {"email": emails[1], **fields}]}


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"email": 12345}, "lead_list.1.email"),
        ({"email": ["a@example.com"]}, "lead_list.1.email"),
        ({"first_name": 7}, "lead_list.1.first_name"),
        ({"first_name": True}, "lead_list.1.first_name"),
        ({"first_name": {"given": "Ada"}}, "lead_list.1.first_name"),
        ({"last_name": 1.5}, "lead_list.1.last_name"),
        ({"custom_fields": ["industry", "Fintech"]}, "lead_list.1.custom_fields"),
        ({"custom_fields": "industry=Fintech"}, "lead_list.1.custom_fields"),
    ],
    ids=lambda v: json.dumps(v) if isinstance(v, dict) else None,
)
def test_a_lead_field_of_the_wrong_type_is_400(
    api: Api, campaign: int, leads_path: str, fields: dict, where: str
) -> None:
    emails = unique_emails(2)
    error = assert_error(
        api.post(leads_path, json=_with_bad_lead(emails, **fields)), 400, "invalid_request"
    )
    assert error["message"].startswith(f"'{where}': ")
    assert error["details"][0]["loc"] == where
    assert_nothing_stored(api, campaign, emails)


@pytest.mark.parametrize("value", ["true", "false", 1, 0, None, [], {}])
def test_a_setting_that_is_not_a_boolean_is_400(
    api: Api, campaign: int, leads_path: str, value: Any
) -> None:
    emails = unique_emails(2)
    body = {**_with_bad_lead(emails), "settings": {"ignore_global_block_list": value}}
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["message"] == (
        "'settings.ignore_global_block_list': Input should be a valid boolean."
    )
    assert_nothing_stored(api, campaign, emails)


@pytest.mark.parametrize(
    ("lead_list", "message"),
    [
        ({"email": "a@example.com"}, "'lead_list': Input should be a valid list."),
        ("a@example.com", "'lead_list': Input should be a valid list."),
        (["a@example.com"], "'lead_list.0': Input should be a valid dictionary"),
        (None, "'lead_list': Input should be a valid list."),
    ],
)
def test_a_lead_list_that_is_not_a_list_of_objects_is_400(
    api: Api, campaign: int, leads_path: str, lead_list: Any, message: str
) -> None:
    response = api.post(leads_path, json={"lead_list": lead_list})
    error = assert_error(response, 400, "invalid_request")
    assert error["message"].startswith(message)
    assert_nothing_stored(api, campaign, ["a@example.com"])


def test_settings_that_are_not_an_object_are_400(api: Api, campaign: int, leads_path: str) -> None:
    emails = unique_emails(2)
    body = {**_with_bad_lead(emails), "settings": ["ignore_global_block_list"]}
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["message"].startswith("'settings': ")
    assert_nothing_stored(api, campaign, emails)


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (0, "'lead_list': List should have at least 1 item after validation, not 0."),
        (401, "'lead_list': List should have at most 400 items after validation, not 401."),
    ],
)
def test_zero_or_more_than_400_leads_is_400(
    api: Api, campaign: int, leads_path: str, count: int, message: str
) -> None:
    emails = unique_emails(count)
    body = {"lead_list": [{"email": e} for e in emails]}
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["message"] == message
    assert_nothing_stored(api, campaign, emails[:400] or unique_emails(1))


def test_exactly_400_leads_is_accepted(api: Api, campaign: int) -> None:
    result = api.import_leads(campaign, [{"email": e} for e in unique_emails(400)])
    assert result["added_count"] == 400


@pytest.mark.parametrize(
    ("where", "body_of"),
    [
        ("lead_list.1.firstname", lambda e: _with_bad_lead(e, firstname="Ada")),
        ("lead_list.1.FIRST_NAME", lambda e: _with_bad_lead(e, FIRST_NAME="Ada")),
        (
            "settings.ignore_global_blocklist",
            lambda e: {**_with_bad_lead(e), "settings": {"ignore_global_blocklist": True}},
        ),
        ("campaign_id", lambda e: {**_with_bad_lead(e), "campaign_id": 1}),
    ],
    ids=["lead", "lead-case", "settings", "top-level"],
)
def test_an_unknown_field_is_400_and_named(
    api: Api, campaign: int, leads_path: str, where: str, body_of: Any
) -> None:
    emails = unique_emails(2)
    error = assert_error(api.post(leads_path, json=body_of(emails)), 400, "invalid_request")
    assert error["message"] == f"Unknown field '{where}'."
    assert error["details"] == [
        {"loc": where, "type": "extra_forbidden", "msg": "Extra inputs are not permitted"}
    ]
    assert_nothing_stored(api, campaign, emails)


# --- limits on strings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("first_name", "'lead_list.1.first_name': String should have at most 500 characters."),
        ("company_url", "'lead_list.1.company_url': String should have at most 2000 characters."),
    ],
)
def test_a_megabyte_long_name_is_400(
    api: Api, campaign: int, leads_path: str, field: str, message: str
) -> None:
    emails = unique_emails(2)
    body = _with_bad_lead(emails, **{field: "n" * MIB})
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["message"] == message
    assert_nothing_stored(api, campaign, emails)


def test_a_megabyte_long_email_is_400(api: Api, campaign: int, leads_path: str) -> None:
    emails = unique_emails(1)
    body = {"lead_list": [{"email": emails[0]}, {"email": "e" * MIB + "@example.com"}]}
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["message"] == "'lead_list.1.email': String should have at most 1000 characters."
    assert_nothing_stored(api, campaign, emails)


def test_a_megabyte_long_unknown_field_is_not_echoed(
    api: Api, campaign: int, leads_path: str
) -> None:
    emails = unique_emails(2)
    name = "k" * MIB
    for body in (
        _with_bad_lead(emails, **{name: "x"}),
        _with_bad_lead(emails, custom_fields={name: "x"}),
    ):
        error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
        assert "k" * 61 not in error["message"]  # a location part is cut to 60 characters
        assert "kkk..." in error["message"]
    assert_nothing_stored(api, campaign, emails)


@pytest.mark.parametrize(
    "value",
    [
        "Ada\r\nBcc: victim@example.com",
        "Ada\n",
        "\tAda",
        "A\x00da",
        "A\x07da",
        "A\x1bda",
        "A\x7fda",
        "A\x85da",
        "A\u2028da",
    ],
    ids=["crlf", "lf", "tab", "nul", "bell", "escape", "del", "nel", "line-separator"],
)
@pytest.mark.parametrize("field", ["first_name", "last_name", "company_name", "location"])
def test_control_characters_in_a_name_are_400(
    api: Api, campaign: int, leads_path: str, field: str, value: str
) -> None:
    emails = unique_emails(2)
    error = assert_error(
        api.post(leads_path, json=_with_bad_lead(emails, **{field: value})), 400, "invalid_request"
    )
    assert error["message"] == (
        f"'lead_list.1.{field}': must be one line without control characters "
        "(no line breaks, tabs or NUL)."
    )
    assert_nothing_stored(api, campaign, emails)


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"email": "nul\x00@example.com"}, "lead_list.1.email"),
        ({"custom_fields": {"nul\x00key": "x"}}, "lead_list.1.custom_fields.nul\\u0000key.[key]"),
        ({"custom_fields": {"key": "nul\x00value"}}, "lead_list.1.custom_fields.key"),
        ({"phone_number": "\x00"}, "lead_list.1.phone_number"),
    ],
    ids=["email", "custom-field-key", "custom-field-value", "phone"],
)
def test_nul_bytes_are_400(
    api: Api, campaign: int, leads_path: str, fields: dict, where: str
) -> None:
    emails = unique_emails(2)
    error = assert_error(
        api.post(leads_path, json=_with_bad_lead(emails, **fields)), 400, "invalid_request"
    )
    assert error["message"].startswith(f"'{where}': ")
    assert "\x00" not in error["message"]
    assert_nothing_stored(api, campaign, emails)


def test_line_breaks_and_tabs_are_allowed_in_custom_field_text(api: Api, campaign: int) -> None:
    result = api.import_leads(
        campaign, [{"email": unique_emails(1)[0], "custom_fields": {"note": "one\r\ntwo\tthree"}}]
    )
    assert result["added_count"] == 1


# --- custom fields ----------------------------------------------------------------------------

NUMBER_MESSAGE = (
    "a custom field value must be a string of at most 5000 characters without control "
    "characters, a number between -9007199254740991 and 9007199254740991, true, false or null"
)


@pytest.mark.parametrize(
    ("literal", "message"),
    [
        ("NaN", NUMBER_MESSAGE),
        ("Infinity", NUMBER_MESSAGE),
        ("-Infinity", NUMBER_MESSAGE),
        ("1e400", NUMBER_MESSAGE),  # parses as infinity
        ("1e30", NUMBER_MESSAGE),
        ('{"nested": 1}', NUMBER_MESSAGE),
        ("[1, 2]", NUMBER_MESSAGE),
        ('"' + "v" * 5001 + '"', NUMBER_MESSAGE),
        ('"' + "0" * 5001 + '"', NUMBER_MESSAGE),  # too long, and not to be read as 0
        (
            str(10**30),
            "a number in a custom field must be between -9007199254740991 and "
            "9007199254740991; send a larger one as a string",
        ),
        (
            str(2**53),
            "a number in a custom field must be between -9007199254740991 and "
            "9007199254740991; send a larger one as a string",
        ),
    ],
    ids=[
        "nan",
        "inf",
        "-inf",
        "1e400",
        "1e30",
        "object",
        "list",
        "long-text",
        "long-digits",
        "10**30",
        "2**53",
    ],
)
def test_a_bad_custom_field_value_is_400(
    api: Api, campaign: int, leads_path: str, literal: str, message: str
) -> None:
    emails = unique_emails(2)
    raw = (
        f'{{"lead_list": [{{"email": "{emails[0]}"}}, '
        f'{{"email": "{emails[1]}", "custom_fields": {{"score": {literal}}}}}]}}'
    ).encode()
    error = assert_error(post_raw(api, leads_path, raw), 400, "invalid_request")
    assert error["message"] == f"'lead_list.1.custom_fields.score': {message}."
    assert_nothing_stored(api, campaign, emails)


def test_custom_field_values_at_the_limits_are_accepted(api: Api, campaign: int) -> None:
    fields = {
        "biggest": 2**53 - 1,
        "smallest": -(2**53 - 1),
        "ratio": 0.25,
        "flag": True,
        "empty": None,
        "text": "t" * 5000,
        "k" * 100: "longest key",
    }
    result = api.import_leads(campaign, [{"email": unique_emails(1)[0], "custom_fields": fields}])
    assert result["added_count"] == 1


def test_201_custom_fields_is_400_and_200_is_accepted(
    api: Api, campaign: int, leads_path: str
) -> None:
    emails = unique_emails(2)
    too_many = {f"field{i}": i for i in range(201)}
    error = assert_error(
        api.post(leads_path, json=_with_bad_lead(emails, custom_fields=too_many)),
        400,
        "invalid_request",
    )
    assert error["message"].startswith(
        "'lead_list.1.custom_fields': Dictionary should have at most 200 items"
    )
    assert_nothing_stored(api, campaign, emails)
    fields = {f"field{i}": i for i in range(200)}
    result = api.import_leads(campaign, [{"email": unique_emails(1)[0], "custom_fields": fields}])
    assert result["added_count"] == 1


@pytest.mark.parametrize("key", ["", "k" * 101])
def test_a_custom_field_key_that_is_empty_or_too_long_is_400(
    api: Api, campaign: int, leads_path: str, key: str
) -> None:
    emails = unique_emails(2)
    body = _with_bad_lead(emails, custom_fields={key: "x"})
    error = assert_error(api.post(leads_path, json=body), 400, "invalid_request")
    assert error["details"][0]["loc"].endswith(".[key]")
    assert_nothing_stored(api, campaign, emails)


# --- addresses beyond ASCII -------------------------------------------------------------------


def test_an_internationalised_domain_is_stored_in_punycode(
    api: Api, server: Server, campaign: int
) -> None:
    local = f"idn-{secrets.token_hex(4)}"
    result = api.import_leads(
        campaign,
        [{"email": f"{local}@müller.de"}, {"email": f"{local.upper()}@XN--MLLER-KVA.DE"}],
    )
    assert result["added_count"] == 1
    assert result["skipped_leads"] == [
        {"email": f"{local.upper()}@XN--MLLER-KVA.DE", "reason": "Duplicate in this request"}
    ]
    assert stored_lead(server, f"{local}@xn--mller-kva.de") is not None
    assert stored_lead(server, f"{local}@müller.de") is None
    # The same address spelled either way is the same lead afterwards too.
    again = api.import_leads(campaign, [{"email": f"{local}@xn--mller-kva.de"}])
    assert again["skipped_leads"] == [
        {"email": f"{local}@xn--mller-kva.de", "reason": "Already exists in this campaign"}
    ]
    # Spelled in Unicode, its stored form is not the one the lookups start on (db.overlap):
    # it is looked up again, and found.
    unicode_again = api.import_leads(
        campaign, [{"email": f"{local}@müller.de"}, {"email": f"new-{local}@müller.de"}]
    )
    assert unicode_again["added_count"] == 1
    assert unicode_again["skipped_leads"] == [
        {"email": f"{local}@müller.de", "reason": "Already exists in this campaign"}
    ]


def test_an_internationalised_domain_is_blocked_in_punycode(api: Api, campaign: int) -> None:
    response = api.post("/leads/block-list", json={"domains": ["bücher.example.org"]})
    assert response.status_code == 200, response.text
    assert response.json()["added_count"] == 1
    entries = api.get("/leads/block-list").json()["block_list"]
    assert [(e["value"], e["kind"]) for e in entries] == [("xn--bcher-kva.example.org", "domain")]
    result = api.import_leads(campaign, [{"email": "reader@bücher.example.org"}])
    assert result["skipped_leads"] == [
        {"email": "reader@bücher.example.org", "reason": "On global block list"}
    ]


def test_a_non_ascii_local_part_is_skipped_as_invalid(
    api: Api, server: Server, campaign: int
) -> None:
    ascii_email = unique_emails(1)[0]
    result = api.import_leads(campaign, [{"email": "jürgen@example.com"}, {"email": ascii_email}])
    assert result["added_count"] == 1
    assert result["skipped_leads"] == [{"email": "jürgen@example.com", "reason": "Invalid email"}]
    assert result["invalid_email_count"] == 1
    assert result["invalid_emails"] == ["jürgen@example.com"]
    assert stored_lead(server, "jürgen@example.com") is None


# --- campaigns --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "'name': String should have at least 1 character."),
        ("   ", "'name': must be one line with a visible character and without control"),
        ("n" * 256, "'name': String should have at most 255 characters."),
        ("Spring\nlaunch", "'name': must be one line with a visible character and without"),
        ("Spring\x00launch", "'name': must be one line with a visible character and without"),
        ("Spring launch\r\n", "'name': must be one line with a visible character and without"),
        (None, "'name': Input should be a valid string."),
        (42, "'name': Input should be a valid string."),
    ],
    ids=["empty", "blank", "256", "newline", "nul", "trailing-crlf", "null", "number"],
)
def test_a_bad_campaign_name_is_400(api: Api, name: Any, message: str) -> None:
    for path in ("/campaigns", "/campaigns/create"):
        error = assert_error(api.post(path, json={"name": name}), 400, "invalid_request")
        assert error["message"].startswith(message)
    assert api.get("/campaigns").json() == []


def test_campaign_names_at_the_limits(api: Api) -> None:
    longest = api.post("/campaigns", json={"name": "n" * 255})
    assert longest.status_code == 200 and longest.json()["name"] == "n" * 255
    padded = api.post("/campaigns", json={"name": "  Spring launch  "})
    assert padded.status_code == 200 and padded.json()["name"] == "Spring launch"
    unicode = api.post("/campaigns", json={"name": "Frühling 🌱 launch"})
    assert unicode.status_code == 200 and unicode.json()["name"] == "Frühling 🌱 launch"


@pytest.mark.parametrize("client_id", [True, "7", 1.5, [7]])
def test_a_client_id_that_is_not_an_integer_is_400(api: Api, client_id: Any) -> None:
    response = api.post("/campaigns", json={"name": "Spring", "client_id": client_id})
    error = assert_error(response, 400, "invalid_request")
    assert error["message"].startswith("'client_id': ")
    assert api.get("/campaigns").json() == []


def test_an_unknown_campaign_field_is_400(api: Api) -> None:
    error = assert_error(
        api.post("/campaigns", json={"name": "Spring", "status": "ACTIVE"}), 400, "invalid_request"
    )
    assert error["message"] == "Unknown field 'status'."
    assert api.get("/campaigns").json() == []


# --- ids in the path --------------------------------------------------------------------------


def _routes_with_ids() -> list[tuple[str, str]]:
    """Every (method, path) with an id in it, read from the app's OpenAPI schema, so that a
    route added later is held to the same rules."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", rate_limit="off"))
    return sorted(
        (method.upper(), path.removeprefix(API_PREFIX))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        # A tracking link's {token} is not an id (tests/test_tracking.py holds those routes).
        if "{" in path and "{token}" not in path
    )


WITH_IDS = _routes_with_ids()


def _with_ids(template: str, value: str) -> str:
    return re.sub(r"\{[a-z_]+\}", value, template)


def _body_for(method: str) -> dict | None:
    return {} if method in ("POST", "PATCH", "PUT") else None


@pytest.mark.parametrize("segment", ["abc", "1.5", "-1", "1e3", "0x10", "%20", "\uff11\uff12"])
@pytest.mark.parametrize(("method", "template"), WITH_IDS, ids=[f"{m} {p}" for m, p in WITH_IDS])
def test_an_id_that_is_not_an_integer_matches_no_endpoint(
    api: Api, method: str, template: str, segment: str
) -> None:
    response = api.request(method, _with_ids(template, segment), json=_body_for(method))
    error = assert_error(response, 404, "not_found")
    assert error["message"] == "No such endpoint."


@pytest.mark.parametrize("value", ["0", str(2**62 + 1), str(2**63), "9" * 40])
@pytest.mark.parametrize(("method", "template"), WITH_IDS, ids=[f"{m} {p}" for m, p in WITH_IDS])
def test_an_id_out_of_range_is_400(api: Api, method: str, template: str, value: str) -> None:
    response = api.request(method, _with_ids(template, value), json=_body_for(method))
    error = assert_error(response, 400, "invalid_request")
    name = re.search(r"\{([a-z_]+)\}", template).group(1)  # type: ignore[union-attr]
    assert error["message"].startswith(f"'path.{name}': Input should be ")


@pytest.mark.parametrize(("method", "template"), WITH_IDS, ids=[f"{m} {p}" for m, p in WITH_IDS])
def test_the_largest_id_is_a_plain_404(api: Api, method: str, template: str) -> None:
    bodies = {"/campaigns/{campaign_id}/leads": {"lead_list": [{"email": "a@example.com"}]}}
    body = bodies.get(template, _body_for(method))
    response = api.request(method, _with_ids(template, str(2**62)), json=body)
    if response.status_code == 400:  # a body this test cannot know; the id is not the problem
        assert not response.json()["error"]["message"].startswith("'path.")
        return
    error = assert_error(response, 404, "not_found")
    assert error["message"].endswith(" not found.")


def test_a_method_the_path_does_not_have_is_405_listing_the_ones_it_has(api: Api) -> None:
    response = api.request("PUT", "/campaigns")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"
    # A literal route beside an id route: not a campaign id that failed to parse.
    response = api.get("/campaigns/create")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "POST"


# --- block list -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/leads/block-list", {"emails": ["ok@example.com", 42]}, "emails.1"),
        ("/leads/block-list", {"emails": ["ok@example.com", None]}, "emails.1"),
        ("/leads/block-list", {"domains": ["example.org", {"domain": "x.com"}]}, "domains.1"),
        ("/leads/block-list", {"emails": "ok@example.com"}, "emails"),
        ("/leads/block-list", {"domains": {"example.org": True}}, "domains"),
        ("/leads/block-list", {"emails": ["ok@example.com", "a\x00@example.com"]}, "emails.1"),
        ("/leads/block-list", {"emails": ["ok@example.com", "x" * 1001]}, "emails.1"),
        (
            "/leads/add-domain-block-list",
            {"domain_block_list": ["example.org", 7]},
            "domain_block_list.1",
        ),
        ("/leads/add-domain-block-list", {"domain_block_list": "example.org"}, "domain_block_list"),
        (
            "/leads/add-domain-block-list",
            {"domain_block_list": ["example.org"], "client_id": "1"},
            "client_id",
        ),
    ],
)
def test_block_list_entries_that_are_not_strings_are_400(
    api: Api, path: str, body: dict, where: str
) -> None:
    error = assert_error(api.post(path, json=body), 400, "invalid_request")
    assert error["message"].startswith(f"'{where}': ")
    assert_lists_empty(api)


def test_an_unknown_block_list_field_is_400(api: Api) -> None:
    error = assert_error(
        api.post("/leads/block-list", json={"emails": ["ok@example.com"], "email": ["x@y.com"]}),
        400,
        "invalid_request",
    )
    assert error["message"] == "Unknown field 'email'."
    assert_lists_empty(api)


@pytest.mark.parametrize("search", ["a\x00b", "line\nbreak", "s" * 321])
def test_a_bad_search_is_400(api: Api, search: str) -> None:
    for path in ("/leads/block-list", "/leads/unsubscribes"):
        error = assert_error(api.get(path, params={"search": search}), 400, "invalid_request")
        assert error["message"].startswith("'query.search': ")


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"limit": "1001"}, "query.limit"),
        ({"limit": "ten"}, "query.limit"),
        ({"offset": "-1"}, "query.offset"),
        ({"offset": "9" * 30}, "query.offset"),
        ({"after": "9" * 30}, "query.after"),
        ({"after": "abc"}, "query.after"),
    ],
)
def test_bad_paging_is_400(api: Api, params: dict, where: str) -> None:
    for path in ("/campaigns", "/leads/block-list", "/leads/unsubscribes"):
        error = assert_error(api.get(path, params=params), 400, "invalid_request")
        assert error["message"].startswith(f"'{where}': ")


# --- authentication ---------------------------------------------------------------------------


def _unauthenticated(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=30)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"X-API-Key": ""}],
    ids=["nothing", "empty-bearer", "basic", "empty-header"],
)
def test_no_key_is_401_missing_api_key(server: Server, headers: dict) -> None:
    with _unauthenticated(server) as http:
        for method, path in (("GET", "/campaigns"), ("POST", "/campaigns")):
            response = http.request(method, path, headers=headers, json={"name": "x"})
            error = assert_error(response, 401, "missing_api_key")
            assert error["message"] == (
                "An API key is required: pass api_key, an Authorization bearer or X-API-Key."
            )


@pytest.mark.parametrize("how", ["query", "bearer", "header"])
def test_a_wrong_key_is_401_invalid_api_key(server: Server, api: Api, how: str) -> None:
    wrong = api.key[:-4] + ("AAAA" if not api.key.endswith("AAAA") else "BBBB")
    with _unauthenticated(server) as http:
        for key in (wrong, "x", "ol_" + "z" * 5000):
            response = http.get("/campaigns", **_credentials(how, key))
            error = assert_error(response, 401, "invalid_api_key")
            assert error["message"] == "The API key is not valid or has been revoked."
            assert len(key) < 10 or key not in response.text


def _credentials(how: str, key: str) -> dict[str, Any]:
    if how == "query":
        return {"params": {"api_key": key}}
    if how == "bearer":
        return {"headers": {"Authorization": f"Bearer {key}"}}
    return {"headers": {"X-API-Key": key}}


@pytest.mark.parametrize("how", ["query", "bearer", "header"])
def test_the_key_works_in_each_place(server: Server, api: Api, how: str) -> None:
    campaign = api.campaign("Keyed")
    with _unauthenticated(server) as http:
        response = http.get(f"/campaigns/{campaign}", **_credentials(how, api.key))
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Keyed"
        created = http.post("/campaigns", json={"name": f"via {how}"}, **_credentials(how, api.key))
        assert created.status_code == 200, created.text
    assert {c["name"] for c in api.get("/campaigns").json()} == {"Keyed", f"via {how}"}


def test_authentication_comes_before_validation(server: Server, api: Api) -> None:
    """Without a valid key, a body of the wrong shape is a 401, not a 400 that describes what
    the endpoint expects. (Only JSON that does not parse is refused before the key is read.)"""
    campaign = api.campaign()
    with _unauthenticated(server) as http:
        path = f"/campaigns/{campaign}/leads"
        assert_error(http.post(path, json={"lead_list": []}), 401, "missing_api_key")
        response = http.post(path, params={"api_key": "wrong"}, json={"leads": 1})
        assert_error(response, 401, "invalid_api_key")
        response = http.post(path, content=b"{}", headers={"content-type": "text/plain"})
        assert_error(response, 401, "missing_api_key")
        # The other half of the rule: a body that does not parse is answered first.
        for broken in (b'{"lead_list": [', b'{"lead_list": [{"email": "\xff@x.com"}]}'):
            response = http.post(path, content=broken, headers={"content-type": "application/json"})
            assert_error(response, 400, "malformed_json")


# --- tenant isolation -------------------------------------------------------------------------


def test_another_accounts_campaign_is_404(api: Api, other_api: Api) -> None:
    campaign = api.campaign("Mine")
    emails = unique_emails(2)
    api.import_leads(campaign, [{"email": emails[0]}])

    for response in (
        other_api.get(f"/campaigns/{campaign}"),
        other_api.delete(f"/campaigns/{campaign}"),
        other_api.post(f"/campaigns/{campaign}/leads", json={"lead_list": [{"email": emails[1]}]}),
    ):
        error = assert_error(response, 404, "not_found")
        assert error["message"] == "Campaign not found."
    # Exactly as if it did not exist.
    missing = other_api.get(f"/campaigns/{2**62}")
    assert missing.json() == other_api.get(f"/campaigns/{campaign}").json()

    assert other_api.get("/campaigns").json() == []
    assert api.get(f"/campaigns/{campaign}").json()["name"] == "Mine"
    # The owner's campaign holds the one lead it had, and nothing the other account sent.
    result = api.import_leads(campaign, [{"email": e} for e in emails])
    assert result["added_count"] == 1
    assert result["skipped_leads"] == [
        {"email": emails[0], "reason": "Already exists in this campaign"}
    ]


def test_another_accounts_list_entries_are_404_and_unseen(
    api: Api, other_api: Api, server: Server
) -> None:
    campaign = api.campaign()
    email = unique_emails(1)[0]
    api.import_leads(campaign, [{"email": email}])
    lead = stored_lead(server, email)
    assert api.post(f"/leads/{lead.id}/unsubscribe").status_code == 200
    blocked = api.post("/leads/block-list", json={"emails": ["spam@example.com"]})
    assert blocked.status_code == 200
    block_entry = api.get("/leads/block-list").json()["block_list"][0]["id"]
    unsubscribe_entry = api.get("/leads/unsubscribes").json()["unsubscribes"][0]["id"]

    error = assert_error(other_api.post(f"/leads/{lead.id}/unsubscribe"), 404, "not_found")
    assert error["message"] == "Lead not found."
    error = assert_error(other_api.delete(f"/leads/block-list/{block_entry}"), 404, "not_found")
    assert error["message"] == "Block list entry not found."
    error = assert_error(
        other_api.delete(f"/leads/unsubscribes/{unsubscribe_entry}"), 404, "not_found"
    )
    assert error["message"] == "Unsubscribe entry not found."

    for search in (None, "example"):
        params = {"search": search} if search else {}
        assert other_api.get("/leads/block-list", params=params).json()["block_list"] == []
        assert other_api.get("/leads/unsubscribes", params=params).json()["unsubscribes"] == []

    # The owner's entries are all still there.
    assert [e["id"] for e in api.get("/leads/block-list").json()["block_list"]] == [block_entry]
    unsubscribes = api.get("/leads/unsubscribes").json()["unsubscribes"]
    assert [(e["id"], e["email"]) for e in unsubscribes] == [(unsubscribe_entry, email)]
