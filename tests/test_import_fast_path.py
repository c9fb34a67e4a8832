"""The import's fast paths behave as the plain ones did.

- The body is validated from the raw bytes (``ImportRequest.model_validate_json``) instead of
  FastAPI's ``json.loads`` then ``validate_python``: whatever the fast parse accepts, the plain
  one accepts with the same values; whatever it refuses goes the plain way, so the error
  answers are FastAPI's own.
- The lead writes are plain SQL per database: ids in request order, the merge rule, and the
  JSON null an event without data has always stored.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from openlead.campaigns import service as campaigns
from openlead.db.engine import create_database
from openlead.db.migrate import upgrade
from openlead.leads import repository
from openlead.leads import service as leads
from openlead.leads.importer import Candidate
from openlead.leads.schemas import (
    MAX_CUSTOM_FIELD_TEXT,
    MAX_GIVEN_EMAIL,
    MAX_NUMBER,
    CustomFieldValue,
    ImportBody,
    ImportRequest,
    ImportResult,
    LeadIn,
)
from openlead.leads.schemas import _CustomFieldMembers as CustomFieldMembers
from tests.support import create_account, query

_PLAIN = TypeAdapter(ImportRequest)


def _fast(body: bytes) -> ImportRequest | None:
    try:
        return ImportRequest.model_validate_json(body)
    except ValidationError:
        return None


def _plain(body: bytes) -> ImportRequest | None:
    try:
        return _PLAIN.validate_python(json.loads(body))
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError are both
        return None


TRICKY_BODIES = [
    b'{"lead_list":[{"email":"a\tb@x.com"}]}',  # a raw control character in a string
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":"a\nb"}}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":"\\udc00"}}]}',  # lone surrogate
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":NaN}}]}',
    b'{"lead_list":[{"email":"a@x.com","email":"b@x.com"}]}',  # a repeated key
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":1,"k":"x"}}]}',
    b'\xef\xbb\xbf{"lead_list":[{"email":"a@x.com"}]}',  # a byte order mark
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":1e400}}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":12345678901234567890}}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"i":1.0,"j":-0.0,"k":1E2}}]}',
    b'{"lead_list":[{"email":"a@x.com"}],"settings":{"ignore_global_block_list":1}}',
    b'{"lead_list":[{"email":"a@x.com"}],"settings":{"ignore_global_block_list":"true"}}',
    b'{"lead_list":[{"email":"a@x.com"}]} ',
    b'{"lead_list":[{"email":"a@x.com"}]} x',
    b'{"lead_list":[{"email":"\xff@x.com"}]}',  # not UTF-8
    b'{"lead_list":[{"email":5}]}',
    b'{"lead_list":[{"email":null,"first_name":"A"}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"":1}}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":true,"l":false,"m":null}}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":9007199254740992}}]}',
    b'{"lead_list":[{"email":"a@x.com","custom_fields":{"k":9007199254740991.5}}]}',
]


@pytest.mark.parametrize("body", TRICKY_BODIES)
def test_fast_parse_accepts_only_what_the_plain_parse_accepts(body: bytes) -> None:
    fast = _fast(body)
    if fast is not None:
        plain = _plain(body)
        assert plain is not None
        assert fast.model_dump() == plain.model_dump()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**60), max_value=2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_leads = st.dictionaries(
    st.sampled_from(["email", "first_name", "website", "custom_fields", "firstname"]),
    st.one_of(_scalars, st.dictionaries(st.text(max_size=4), _scalars, max_size=3)),
    max_size=4,
)
_bodies = st.fixed_dictionaries(
    {"lead_list": st.lists(_leads, max_size=3)},
    optional={
        "settings": st.dictionaries(st.sampled_from(["ignore_unsubscribe_list", "x"]), _scalars)
    },
)


@settings(max_examples=300, deadline=None)
@given(_bodies)
def test_fast_parse_agrees_with_the_plain_parse(body: dict) -> None:
    raw = json.dumps(body).encode()  # the standard library writes NaN and Infinity too
    fast = _fast(raw)
    plain = _plain(raw)
    assert (fast is None) == (plain is None)
    if fast is not None and plain is not None:
        assert fast.model_dump() == plain.model_dump()


@settings(max_examples=300, deadline=None)
@given(_bodies)
def test_the_addresses_read_ahead_are_the_validated_ones(body: dict) -> None:
    """What the lookups start on (read before validation) is what the import then plans on,
    or nothing, when the body is not shaped like an import."""
    raw = json.dumps(body).encode()
    ahead = ImportBody.read(raw, validate=False).addresses()
    validated = _fast(raw)
    if ahead is not None and validated is not None:
        assert ahead == [lead.email for lead in validated.lead_list]


_BARE_VALUE = TypeAdapter(CustomFieldMembers)
_EXPLAINED_VALUE = TypeAdapter(CustomFieldValue)
_EDGE_NUMBERS = [MAX_NUMBER, MAX_NUMBER + 1, 2**53, 2**63, 10**30, 10**400, float(MAX_NUMBER)]


def _accepts(adapter: TypeAdapter, value: object, as_json: bool) -> bool:
    try:
        if as_json:
            adapter.validate_json(json.dumps(value))
        else:
            adapter.validate_python(value)
    except (ValidationError, ValueError):
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        _scalars,
        st.sampled_from(_EDGE_NUMBERS + [-n for n in _EDGE_NUMBERS]),
        st.integers(),
        st.text(min_size=MAX_CUSTOM_FIELD_TEXT - 1, max_size=MAX_CUSTOM_FIELD_TEXT + 1),
        st.lists(_scalars, max_size=2),
        st.dictionaries(st.text(max_size=2), _scalars, max_size=2),
    ),
    st.booleans(),
)
def test_custom_field_values_are_read_bare_as_the_explaining_check_reads_them(
    value: object, as_json: bool
) -> None:
    """Custom fields are validated with the bare union and only a refused object is read
    again to explain it (``schemas.CustomFields``): both must refuse exactly the same values,
    the out-of-range integers the explaining check names included."""
    assert _accepts(_BARE_VALUE, value, as_json) == _accepts(_EXPLAINED_VALUE, value, as_json)


@pytest.mark.parametrize("body", TRICKY_BODIES)
def test_tricky_bodies_read_ahead_as_validated(body: bytes) -> None:
    try:
        ahead = ImportBody.read(body, validate=False).addresses()
    except ValueError:  # FastAPI's own reading refuses it too, before the endpoint
        assert _plain(body) is None
        return
    validated = _fast(body)
    if ahead is not None and validated is not None:
        assert ahead == [lead.email for lead in validated.lead_list]


@pytest.mark.parametrize("body", TRICKY_BODIES)
def test_a_body_validated_at_the_endpoint_is_taken_or_refused_as_the_plain_parse_does(
    body: bytes,
) -> None:
    """Where the body is validated before the endpoint (SQLite), one that the fast parse
    refuses is answered from the standard library's reading it kept: the very request the
    plain parse makes of it, or its error."""
    try:
        read = ImportBody.read(body, validate=True)
    except ValueError:  # FastAPI's own reading refuses it too, before the endpoint
        assert _plain(body) is None
        return
    plain = _plain(body)
    try:
        request = read.request()
    except (RequestValidationError, HTTPException):
        assert plain is None
        return
    assert plain is not None
    assert request.model_dump() == plain.model_dump()


def test_an_address_too_long_for_the_schema_is_not_read_ahead() -> None:
    """Screening a megabyte-long address took most of a second; the body is refused anyway."""
    at_limit = json.dumps({"lead_list": [{"email": "a" * MAX_GIVEN_EMAIL}]}).encode()
    assert ImportBody.read(at_limit, validate=False).addresses() == ["a" * MAX_GIVEN_EMAIL]
    over = json.dumps({"lead_list": [{"email": "a" * (MAX_GIVEN_EMAIL + 1)}]}).encode()
    assert ImportBody.read(over, validate=False).addresses() is None
    assert _fast(over) is None


class _MisreadBody(ImportBody):
    """A body whose early reading of the addresses disagrees with its validation."""

    def addresses(self) -> list[str | None] | None:
        return ["other@misread.example"]


def test_an_import_plans_on_the_validated_addresses_when_the_early_reading_differs(
    database_url: str,
) -> None:
    upgrade(database_url)
    create_account(database_url)
    account_id = query(database_url, "SELECT MAX(id) FROM accounts")[0][0]
    raw = json.dumps(
        {"lead_list": [{"email": "kept@misread.example"}, {"email": "kept@misread.example"}]}
    ).encode()

    async def run() -> tuple[int, ImportResult]:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                campaign = (await campaigns.create(conn, account_id, "misread")).id
                result = await leads.import_leads(conn, account_id, campaign, _MisreadBody(raw))
        finally:
            await database.dispose()
        return campaign, result

    campaign, result = asyncio.run(run())
    assert (result.added_count, result.duplicate_count) == (1, 1)
    stored = query(
        database_url,
        "SELECT l.email FROM leads AS l JOIN campaign_leads AS cl ON cl.lead_id = l.id "
        "WHERE cl.campaign_id = :c",
        c=campaign,
    )
    assert stored == [("kept@misread.example",)]


def test_openapi_still_documents_the_import_body(server) -> None:
    import httpx

    spec = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    body = spec["paths"]["/api/v1/campaigns/{campaign_id}/leads"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ImportRequest"}
    assert "ImportRequest" in spec["components"]["schemas"]


def _batch(*leads: dict[str, object]) -> tuple[list[Candidate], list[LeadIn]]:
    """Leads of a request and each one's candidate, at its position."""
    given = [LeadIn(**lead) for lead in leads]
    return [Candidate(i, str(lead.email), str(lead.email)) for i, lead in enumerate(given)], given


def test_lead_writes_keep_order_merge_rule_and_event_shape(database_url: str) -> None:
    upgrade(database_url)
    create_account(database_url)
    account_id = query(database_url, "SELECT MAX(id) FROM accounts")[0][0]
    now = datetime.now(UTC)

    async def run() -> tuple[list[int], list[int], int]:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                campaign = (await campaigns.create(conn, account_id, "fast path")).id
                first = await repository.upsert_leads(
                    conn,
                    account_id,
                    *_batch(
                        {
                            "email": "zed@fast.example",
                            "first_name": "Zed",
                            "custom_fields": {"a": 1},
                        },
                        {"email": "amy@fast.example", "last_name": "Old", "website": "w"},
                    ),
                    now,
                )
            async with database.write() as conn:
                # A new lead between two known ones: the ids follow the batch, not the table.
                second = await repository.upsert_leads(
                    conn,
                    account_id,
                    *_batch(
                        {"email": "amy@fast.example", "last_name": "New"},
                        {"email": "bob@fast.example"},
                        {"email": "zed@fast.example", "custom_fields": {"b": "x", "a": None}},
                    ),
                    now,
                )
                await repository.add_leads(
                    conn,
                    account_id,
                    campaign,
                    *_batch({"email": "cy@fast.example", "custom_fields": {"n": 2.5}}),
                    frozenset(),
                    "NOT_CONTACTED",
                    True,
                    False,
                    "LEAD_ADDED",
                    now,
                )
        finally:
            await database.dispose()
        return first, second, campaign

    first, second, campaign = asyncio.run(run())
    assert second[0] == first[1] and second[2] == first[0]
    assert second[1] not in first
    rows = {
        email: (first_name, last_name, website, custom)
        for email, first_name, last_name, website, custom in query(
            database_url,
            "SELECT email, first_name, last_name, website, custom_fields FROM leads "
            "WHERE account_id = :a AND email LIKE '%@fast.example'",
            a=account_id,
        )
    }

    def custom(value: object) -> object:
        return json.loads(value) if isinstance(value, str) else value

    assert rows["amy@fast.example"][:3] == (None, "New", "w")  # given wins, absent is kept
    assert custom(rows["zed@fast.example"][3]) == {"a": 1, "b": "x"}  # merged key by key
    assert rows["zed@fast.example"][0] == "Zed"
    assert custom(rows["bob@fast.example"][3]) == {}
    assert custom(rows["cy@fast.example"][3]) == {"n": 2.5}
    ((status, ignore_block, ignore_unsub),) = query(
        database_url,
        "SELECT status, ignore_block_list, ignore_unsubscribe_list FROM campaign_leads "
        "WHERE account_id = :a AND campaign_id = :c",
        a=account_id,
        c=campaign,
    )
    assert (status, bool(ignore_block), bool(ignore_unsub)) == ("NOT_CONTACTED", True, False)
    ((event_type, data),) = query(
        database_url,
        "SELECT type, CAST(data AS TEXT) FROM lead_events "
        "WHERE account_id = :a AND campaign_id = :c",
        a=account_id,
        c=campaign,
    )
    # What SQLAlchemy's JSON type always stored for "no data": the JSON null, not SQL NULL.
    assert (event_type, data) == ("LEAD_ADDED", "null")


def test_known_and_new_leads_added_together_keep_the_request_order(database_url: str) -> None:
    """On PostgreSQL new leads are inserted and known ones merged by two statements in one:
    the events still follow the request, and a known lead stays one row, merged."""
    upgrade(database_url)
    create_account(database_url)
    account_id = query(database_url, "SELECT MAX(id) FROM accounts")[0][0]
    now = datetime.now(UTC)

    async def add(conn, campaign: int, known: frozenset[str], *leads: dict) -> None:  # type: ignore[no-untyped-def]
        await repository.add_leads(
            conn,
            account_id,
            campaign,
            *_batch(*leads),
            known,
            "NOT_CONTACTED",
            False,
            False,
            "LEAD_ADDED",
            now,
        )

    async def run() -> int:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                first = (await campaigns.create(conn, account_id, "mix first")).id
                await add(
                    conn,
                    first,
                    frozenset(),
                    {"email": "old@mix.example", "first_name": "Old", "custom_fields": {"a": 1}},
                )
            async with database.write() as conn:
                second = (await campaigns.create(conn, account_id, "mix second")).id
                await add(
                    conn,
                    second,
                    frozenset({"old@mix.example"}),
                    {"email": "new1@mix.example"},
                    {"email": "old@mix.example", "last_name": "L", "custom_fields": {"b": 2}},
                    {"email": "new2@mix.example"},
                )
        finally:
            await database.dispose()
        return second

    second = asyncio.run(run())
    in_order = ["new1@mix.example", "old@mix.example", "new2@mix.example"]
    events = query(
        database_url,
        "SELECT l.email FROM lead_events AS e JOIN leads AS l ON l.id = e.lead_id "
        "WHERE e.campaign_id = :c ORDER BY e.id",
        c=second,
    )
    assert [email for (email,) in events] == in_order
    members = query(
        database_url,
        "SELECT l.email FROM campaign_leads AS m JOIN leads AS l ON l.id = m.lead_id "
        "WHERE m.campaign_id = :c",
        c=second,
    )
    assert sorted(email for (email,) in members) == sorted(in_order)
    ((first_name, last_name, custom),) = query(
        database_url,
        "SELECT first_name, last_name, custom_fields FROM leads WHERE email = 'old@mix.example'",
    )
    custom = json.loads(custom) if isinstance(custom, str) else custom
    assert (first_name, last_name, custom) == ("Old", "L", {"a": 1, "b": 2})
