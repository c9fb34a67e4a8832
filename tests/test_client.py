"""The Python SDK: in process (ASGI), against a real server on both backends, and retries
against a real HTTP server that answers 429 and 503 and loses answers on cue."""

from __future__ import annotations

import asyncio
import inspect
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from openlead.app import create_app
from openlead.client import (
    INVALID_FIELD_VALUE,
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    ImportSummary,
    LeadIn,
    NetworkError,
    NotFoundError,
    OpenleadError,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    SyncASGITransport,
    ValidationError,
    lifespan,
)
from openlead.client import _models as models
from openlead.client import _operations as ops
from openlead.client._import import match_skips
from openlead.client._operations import ROUTES
from openlead.client._protocol import ApiRequest, ApiResponse, TransportFailure, retry_delay
from openlead.config import Settings
from openlead.db.migrate import upgrade
from tests.faults import FaultyProxy
from tests.smtp_sink import SmtpSink
from tests.support import create_account

FAST = RetryPolicy(max_attempts=6, backoff_base=0.01, backoff_max=0.05, jitter=False)
IMPORT_PATH = r"^/campaigns/\d+/leads$"


def leads(n: int, prefix: str = "lead", start: int = 0) -> list[dict]:
    return [
        {"email": f"{prefix}{i}@example.com", "first_name": f"N{i}"}
        for i in range(start, start + n)
    ]


# --------------------------------------------------------------------------- in process


@pytest.fixture(scope="module")
def local_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('sdk') / 'openlead.db'}"
    upgrade(url)
    return url


def _app(url: str, **overrides: object):  # type: ignore[no-untyped-def]
    return create_app(Settings(database_url=url, rate_limit="off", **overrides))


@pytest.fixture
def local(local_db: str) -> Iterator[Client]:
    """A blocking client on the app in this process, on a fresh account."""
    key = create_account(local_db)
    with Client("http://openlead.test", key, transport=SyncASGITransport(_app(local_db))) as c:
        yield c


def test_sync_client_in_process(local: Client) -> None:
    assert local.health() is True
    campaign = local.create_campaign("In process")
    assert campaign.ok and campaign.name == "In process"
    local.add_to_block_list(domains=["blocked.example"])
    summary = local.import_leads(
        campaign.id,
        [
            {"email": "a@example.com", "first_name": "A", "custom_fields": {"title": "CEO"}},
            LeadIn(email="b@example.com", last_name="B"),
            {"email": "not-an-address"},
            {"email": "A@Example.com"},
            {"email": "x@blocked.example"},
        ],
    )
    assert isinstance(summary, ImportSummary)
    assert (summary.total, summary.added, summary.skipped) == (5, 2, 3)
    assert summary.skipped_by_reason == {
        "Invalid email": 1,
        "Duplicate in this request": 1,
        "On global block list": 1,
    }
    assert [(s.index, s.email, s.reason) for s in summary.skipped_leads] == [
        (2, "not-an-address", "Invalid email"),
        (3, "A@Example.com", "Duplicate in this request"),
        (4, "x@blocked.example", "On global block list"),
    ]
    page = local.list_campaign_leads(campaign.id, limit=1)
    assert page.total_leads == 2 and page.next_cursor is not None
    found = list(local.iter_campaign_leads(campaign.id, page_size=1))
    assert [lead.email for lead in found] == ["a@example.com", "b@example.com"]
    assert found[0].custom_fields == {"title": "CEO"}
    assert [c.id for c in local.iter_campaigns(page_size=1)] == [campaign.id]
    assert local.get_campaign(campaign.id).status == "DRAFTED"


def test_errors_are_typed_and_carry_the_server_fields(local: Client, local_db: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        local.get_campaign(987654)
    assert missing.value.code == "not_found"
    assert missing.value.status_code == 404
    assert missing.value.message == "Campaign not found."
    campaign = local.create_campaign("Errors")
    with pytest.raises(ValidationError) as invalid:
        local.add_leads(campaign.id, [{"email": "a@example.com", "firstname": "typo"}])
    assert invalid.value.code == "invalid_request"
    assert invalid.value.details[0]["loc"] == "lead_list.0.firstname"
    local.import_leads(campaign.id, [{"email": "status@example.com"}])
    lead = local.find_lead("status@example.com")
    with pytest.raises(ValidationError) as status:
        local.change_lead_status(campaign.id, lead.id, "MAYBE")
    assert status.value.code == "invalid_status"
    assert "INTERESTED" in status.value.details["valid"]
    app = _app(local_db)
    with (
        Client(
            "http://openlead.test", "ol_wrong_key_0000000000", transport=SyncASGITransport(app)
        ) as c,
        pytest.raises(AuthenticationError) as denied,
    ):
        c.list_campaigns()
    assert denied.value.code == "invalid_api_key"
    assert isinstance(denied.value, OpenleadError)


def test_import_reads_lazily_and_counts_every_lead(local: Client) -> None:
    """A generator is read one batch at a time: never more than a batch ahead of what the
    server has answered, so a million leads need no more memory than 400."""
    campaign = local.create_campaign("Lazy")
    consumed = 0
    ahead: list[int] = []

    def generate() -> Iterator[dict]:
        nonlocal consumed
        for i in range(2_050):
            consumed += 1
            yield {"email": f"lazy{i % 2_000}@example.com"}  # the last 50 repeat earlier ones

    def progress(summary: ImportSummary) -> None:
        ahead.append(consumed - summary.total)

    seen: list[str] = []
    summary = local.import_leads(
        campaign.id,
        generate(),
        batch_size=300,
        on_progress=progress,
        on_skipped=lambda s: seen.append(s.reason),
        keep_skipped=10,
    )
    assert max(ahead) <= 300
    assert summary.batches == 7 and summary.requests == 7  # the import requests
    assert (summary.total, summary.added, summary.skipped) == (2_050, 2_000, 50)
    assert summary.skipped_by_reason == {"Already exists in this campaign": 50}
    assert len(summary.skipped_leads) == 10 and summary.skipped_leads_omitted == 40
    assert seen == ["Already exists in this campaign"] * 50
    assert summary.skipped_leads[0].index == 2_000


def test_skip_invalid_skips_refused_leads_and_keeps_the_rest(local: Client) -> None:
    campaign = local.create_campaign("Invalid values")
    batch = [
        {"email": "ok1@example.com"},
        {"email": "long@example.com", "first_name": "x" * 600},
        {"email": "ok2@example.com", "custom_fields": {"n": "fine"}},
        {"email": "ctrl@example.com", "company_name": "Acme\nInc"},
    ]
    with pytest.raises(ValidationError) as refused:
        local.import_leads(campaign.id, batch)
    assert refused.value.summary is not None and refused.value.summary.added == 0
    summary = local.import_leads(campaign.id, batch, skip_invalid=True)
    assert (summary.added, summary.skipped) == (2, 2)
    assert {s.email: s.reason for s in summary.skipped_leads} == {
        "long@example.com": INVALID_FIELD_VALUE,
        "ctrl@example.com": INVALID_FIELD_VALUE,
    }
    assert "first_name" in (summary.skipped_leads[0].detail or "")
    # A mistake in the program (an unknown field) is never skipped silently.
    with pytest.raises(ValidationError):
        local.import_leads(
            campaign.id, [{"email": "t@example.com", "firstname": "A"}], skip_invalid=True
        )


def test_skip_invalid_skips_a_lead_that_a_merge_would_take_past_200_custom_fields(
    local: Client,
) -> None:
    first = local.create_campaign("First")
    wide = {f"a{i}": i for i in range(150)}
    local.import_leads(first.id, [{"email": "wide@example.com", "custom_fields": wide}])
    second = local.create_campaign("Second")
    batch = [
        {"email": "ok@example.com"},
        {"email": "wide@example.com", "custom_fields": {f"b{i}": i for i in range(51)}},
    ]
    settings = {"ignore_duplicate_leads_in_other_campaign": True}
    with pytest.raises(ValidationError):
        local.import_leads(second.id, batch, settings=settings)
    summary = local.import_leads(second.id, batch, settings=settings, skip_invalid=True)
    assert (summary.added, summary.skipped) == (1, 1)
    (skipped,) = summary.skipped_leads
    assert skipped.email == "wide@example.com" and skipped.reason == INVALID_FIELD_VALUE
    assert "would have 201" in (skipped.detail or "")


def test_a_batch_over_the_body_limit_is_split(local_db: str) -> None:
    key = create_account(local_db)
    app = _app(local_db, max_body_bytes=20_000)
    with Client("http://openlead.test", key, transport=SyncASGITransport(app)) as client:
        campaign = client.create_campaign("Split")
        big = [
            {"email": f"big{i}@example.com", "custom_fields": {"bio": "y" * 150}}
            for i in range(400)
        ]
        summary = client.import_leads(campaign.id, big)
    assert (summary.added, summary.skipped, summary.batches) == (400, 0, 1)
    assert summary.requests > 2


def test_settings_are_checked_and_sent(local: Client) -> None:
    campaign = local.create_campaign("Settings")
    local.add_to_block_list(emails=["blocked@example.com"])
    with pytest.raises(ValueError, match="Unknown import setting"):
        local.import_leads(
            campaign.id, [{"email": "a@example.com"}], settings=["ignore_everything"]
        )
    summary = local.import_leads(
        campaign.id, [{"email": "blocked@example.com"}], settings=["ignore_global_block_list"]
    )
    assert summary.added == 1


async def test_async_client_in_process(local_db: str) -> None:
    key = await asyncio.to_thread(create_account, local_db)  # it runs its own event loop
    app = _app(local_db)
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with AsyncClient("http://openlead.test", key, transport=transport) as client:
            assert await client.health()
            campaign = await client.create_campaign("Async")

            async def generate():  # an async iterable works as the input
                for lead in leads(450, "async"):
                    yield lead

            summary = await client.import_leads(campaign.id, generate())
            assert (summary.added, summary.batches) == (450, 2)
            again = await client.import_leads(campaign.id, leads(3, "async"))
            assert again.skipped_by_reason == {"Already exists in this campaign": 3}
            emails = [lead.email async for lead in client.iter_campaign_leads(campaign.id)]
            assert len(emails) == 450
            with pytest.raises(NotFoundError):
                await client.get_lead(10**12)
            buffer = io.BytesIO()
            written = await client.export_leads(campaign.id, buffer)
            assert written == len(buffer.getvalue()) and buffer.getvalue().count(b"\r\n") == 451


def test_both_clients_have_the_same_surface() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name not in ("close", "aclose")
        }

    sync, asynchronous = public(Client), public(AsyncClient)
    assert sync.keys() == asynchronous.keys()
    for name, signature in sync.items():
        assert list(signature.parameters) == list(asynchronous[name].parameters), name
        coroutine = inspect.iscoroutinefunction(getattr(AsyncClient, name))
        assert coroutine or name.startswith("iter_"), name


def test_every_endpoint_has_a_method() -> None:
    """Read from the app's OpenAPI schema (as the tenancy test does): a new endpoint without an
    SDK method fails here."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:", rate_limit="off"))
    served = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }
    served.add(("GET", "/healthz"))  # outside the schema
    compat = {("POST", "/campaigns/create")}  # the same as POST /campaigns
    # The links in every email (unsubscribe page and one-click, open pixel, click redirect):
    # called by recipients' mail clients with a signed token, never with an API key, so they
    # are no part of the SDK.
    tracking = {
        ("GET", "/u/{token}"),
        ("POST", "/u/{token}"),
        ("GET", "/t/o/{token}"),
        ("GET", "/t/c/{token}"),
    }
    covered = set(ROUTES.values())
    assert served - compat - tracking - covered == set()
    assert covered - served == set()
    for name in ROUTES:
        assert hasattr(Client, name) and hasattr(AsyncClient, name), name


def test_sequence_models_mirror_the_server() -> None:
    from openlead.sequences import schemas

    for name in (
        "Delay",
        "Variant",
        "Step",
        "Sequences",
        "SequencesSaved",
        "VariantPreview",
        "StepPreview",
        "Preview",
        "TemplateProblem",
        "VariableCheck",
        "SequenceCheck",
    ):
        server, mirror = getattr(schemas, name), getattr(models, name)
        assert list(server.model_fields) == list(mirror.model_fields), name


def test_url_and_key_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLEAD_URL", "http://example.test:9000")
    monkeypatch.setenv("OPENLEAD_API_KEY", "ol_from_env_000000000")
    with Client() as client:
        assert client.base_url == "http://example.test:9000/api/v1"
        assert client.api_key == "ol_from_env_000000000"
    with Client("http://other.test/api/v1/", "explicit") as client:
        assert (client.base_url, client.api_key) == ("http://other.test/api/v1", "explicit")
    with pytest.raises(TypeError, match="SyncASGITransport"):
        Client(transport=httpx.ASGITransport(app=None))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- pure parts


def test_match_skips_finds_each_skipped_lead() -> None:
    # The first copy added, the later ones duplicates.
    assert match_skips(["a", "a"], ["a", "b", "a", "a"]) == [2, 3]
    # Every copy skipped (an invalid address is invalid each time).
    assert match_skips(["x", "x"], ["x", "b", "x"]) == [0, 2]
    # A different spelling earlier: every copy of this spelling is a duplicate.
    assert match_skips(["b", "a@x"], ["A@X", "b", "a@x"]) == [1, 2]
    assert match_skips([None, "c"], ["a", None, "c"]) == [1, 2]


def test_retry_rules() -> None:
    write = ApiRequest("POST", "/campaigns")
    read = ApiRequest("GET", "/campaigns", idempotent=True)

    def answer(status: int, content: bytes = b"", **headers: str) -> ApiResponse:
        return ApiResponse(status, headers, content, "http://x")

    openlead_500 = b'{"error": {"code": "internal_error", "message": "failed", "details": null}}'
    assert retry_delay(answer(429, **{"Retry-After": "3"}), write, FAST, 1) == 3
    assert retry_delay(answer(503), read, FAST, 1) == 0.01
    assert retry_delay(answer(503), write, FAST, 1) is None  # a proxy's 503: maybe it ran
    assert retry_delay(answer(500, openlead_500), write, FAST, 1) == 0.01  # rolled back
    assert retry_delay(answer(400), read, FAST, 1) is None
    assert retry_delay(answer(503), read, FAST, FAST.max_attempts) is None
    connect = TransportFailure(httpx.ConnectError("refused"), sent=False)
    broken = TransportFailure(httpx.ReadError("reset"), sent=True)
    assert retry_delay(connect, write, FAST, 1) == 0.01
    assert retry_delay(broken, write, FAST, 1) is None
    assert retry_delay(broken, read, FAST, 2) == 0.02
    assert RetryPolicy(backoff_base=1, backoff_max=5, jitter=False).backoff(10) == 5


# --------------------------------------------------------------------------- a real server


def test_every_endpoint_against_a_real_server(api) -> None:  # type: ignore[no-untyped-def]
    with Client(api.server.base_url, api.key, retry=FAST) as client:
        assert client.health()
        campaign = client.create_campaign("Every endpoint")
        summary = client.import_leads(
            campaign.id,
            [
                {
                    "email": "ada@acme.com",
                    "first_name": "Ada",
                    "company_name": "Acme",
                    "custom_fields": {"title": "CTO"},
                },
                {"email": "bob@acme.com", "first_name": "Bob"},
                {"email": "cy@acme.com"},
            ],
        )
        assert summary.added == 3
        assert (
            client.add_leads(campaign.id, [{"email": "ada@acme.com"}]).already_added_to_campaign
            == 1
        )
        ada = client.find_lead("ADA@acme.com")
        assert ada.first_name == "Ada" and ada.campaigns[0].campaign_id == campaign.id
        assert client.get_lead(ada.id).email == "ada@acme.com"
        updated = client.update_lead(ada.id, last_name="Lovelace", custom_fields={"team": "R&D"})
        assert updated.last_name == "Lovelace" and updated.custom_fields == {
            "title": "CTO",
            "team": "R&D",
        }
        changed = client.change_lead_status(campaign.id, ada.id, "INTERESTED")
        assert (changed.previous_status, changed.status) == ("NOT_CONTACTED", "INTERESTED")
        activity = client.get_lead_activity(campaign.id, ada.id)
        assert [e.type for e in activity.events][:2] == ["LEAD_ADDED", "STATUS_CHANGED"]
        first = client.get_lead_activity(campaign.id, ada.id, limit=1)
        assert [e.type for e in first.events] == ["LEAD_ADDED"] and first.next_cursor
        rest = client.get_lead_activity(campaign.id, ada.id, after=first.next_cursor)
        assert [e.type for e in rest.events] == [e.type for e in activity.events][1:]
        statistics = client.get_campaign_statistics(campaign.id)
        assert statistics.total_leads == 3 and statistics.by_status["INTERESTED"] == 1
        exported = client.export_leads(campaign.id)
        assert exported.startswith(b"id,email") and b"ada@acme.com" in exported

        saved = client.save_sequences(
            campaign.id,
            [
                {
                    "seq_number": 1,
                    "seq_delay_details": {"delay_in_days": 0},
                    "subject": "Hi {{first_name}}",
                    "email_body": "Hello {{ first_name }} at {{company_name}}",
                }
            ],
        )
        assert saved.sequences[0].subject == "Hi {{first_name}}"
        assert client.get_sequences(campaign.id).sequences[0].seq_number == 1
        check = client.check_sequences(campaign.id)
        assert check.total_leads == 3 and {v.name for v in check.variables} >= {"first_name"}
        preview = client.preview_lead(campaign.id, ada.id)
        assert preview.ok and preview.steps[0].variants[0].subject == "Hi Ada"

        bob = client.find_lead("bob@acme.com")
        unsubscribed = client.unsubscribe_lead_from_campaign(campaign.id, bob.id)
        assert unsubscribed.status == "UNSUBSCRIBED"
        cy = client.find_lead("cy@acme.com")
        assert client.unsubscribe_lead(cy.id).already_unsubscribed is False
        entries = client.list_unsubscribes()
        assert [e.email for e in entries.unsubscribes] == ["cy@acme.com"]
        assert [e.email for e in client.iter_unsubscribes(search="cy")] == ["cy@acme.com"]
        assert client.delete_unsubscribe(entries.unsubscribes[0].id).ok
        assert client.remove_lead_from_campaign(campaign.id, cy.id).ok

        added = client.add_to_block_list(emails=["spam@bad.com", "nope"], domains=["bad.org"])
        assert (added.added_count, added.invalid) == (2, ["nope"])
        assert client.add_domain_block_list(["x@bad.net", "bad.net"]).added_count == 2
        blocks = client.list_block_list(search="bad")
        assert len(blocks.block_list) == 4
        assert len(list(client.iter_block_list(page_size=1))) == 4
        assert client.delete_block_list_entry(blocks.block_list[0].id).ok

        assert [c.id for c in client.list_campaigns().campaigns] == [campaign.id]
        assert client.delete_campaign(campaign.id).ok
        with pytest.raises(NotFoundError):
            client.get_campaign(campaign.id)


async def test_async_client_against_a_real_server(api) -> None:  # type: ignore[no-untyped-def]
    async with AsyncClient(api.server.base_url, api.key, retry=FAST) as client:
        campaign = await client.create_campaign("Async, real")
        summary = await client.import_leads(campaign.id, leads(1_000, "real"))
        assert (summary.added, summary.batches) == (1_000, 3)
        page = await client.list_campaign_leads(campaign.id, limit=1000)
        assert page.total_leads == 1_000
        with pytest.raises(AuthenticationError):
            async with AsyncClient(api.server.base_url, "ol_not_a_key_000000000") as other:
                await other.list_campaigns()


def test_rate_limited_answers_are_retried_after_retry_after(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A server of its own with a tight rate limit: the client waits as told, and gives up
    with RateLimitedError when it may not wait any more."""
    from tests.support import Server, free_port

    limited = Server(
        backend=server.backend,
        database_url=server.database_url,
        port=free_port(),
        key=server.key,
        log_path=tmp_path / "limited.log",
        env={"OPENLEAD_RATE_LIMIT": "3/second"},
    )
    limited.start()
    try:
        key = create_account(server.database_url)
        with Client(limited.base_url, key, retry=FAST) as client:
            started = time.monotonic()
            for _ in range(8):
                client.list_campaigns()
            assert time.monotonic() - started >= 1.0  # at least one Retry-After was honoured
        impatient = RetryPolicy(max_attempts=1)
        with Client(limited.base_url, key, retry=impatient) as client:
            with pytest.raises(RateLimitedError) as limited_error:
                for _ in range(10):
                    client.list_campaigns()
            assert limited_error.value.retry_after is not None
            assert limited_error.value.code == "rate_limited"
    finally:
        limited.stop()


# --------------------------------------------------------------------------- faults


@pytest.fixture
def proxy(server) -> Iterator[FaultyProxy]:  # type: ignore[no-untyped-def]
    faulty = FaultyProxy(server.base_url.removesuffix("/api/v1")).start()
    try:
        yield faulty
    finally:
        faulty.stop()


def _members(api, campaign_id: int) -> list[str]:  # type: ignore[no-untyped-def]
    with Client(api.server.base_url, api.key) as client:
        return [lead.email for lead in client.iter_campaign_leads(campaign_id)]


def test_429_with_retry_after_and_503_are_retried(api, proxy: FaultyProxy) -> None:  # type: ignore[no-untyped-def]
    proxy.on("POST", IMPORT_PATH, [("status", 429, {"Retry-After": "1"}), ("status", 503, {})])
    with Client(proxy.base_url, api.key, retry=FAST) as client:
        campaign = client.create_campaign("Retried")
        started = time.monotonic()
        summary = client.import_leads(campaign.id, leads(900, "retried"))
        waited = time.monotonic() - started
    assert waited >= 1.0  # Retry-After: 1 was honoured, not the 10 ms backoff
    assert proxy.seen("POST", IMPORT_PATH) == ["status 429", "status 503", "pass", "pass", "pass"]
    assert (summary.added, summary.skipped, summary.retries) == (900, 0, 2)
    assert len(_members(api, campaign.id)) == 900


def test_a_lost_answer_is_not_counted_twice(api, proxy: FaultyProxy) -> None:  # type: ignore[no-untyped-def]
    """The server commits the second batch, then the connection drops before the answer.
    The retry hears 'Already exists' for all of it; the summary still says they were added."""
    proxy.on("POST", IMPORT_PATH, ["pass", "drop_after"])
    with Client(proxy.base_url, api.key, retry=FAST) as client:
        campaign = client.create_campaign("Lost answer")
        summary = client.import_leads(campaign.id, leads(1_000, "lost"))
    assert proxy.seen("POST", IMPORT_PATH) == ["pass", "drop_after", "pass", "pass"]
    assert (summary.total, summary.added, summary.skipped) == (1_000, 1_000, 0)
    assert summary.skipped_by_reason == {}
    assert (summary.reconciled_batches, summary.unverified, summary.retries) == (1, 0, 1)
    assert len(_members(api, campaign.id)) == 1_000


def test_a_lost_answer_with_leads_already_there(api, proxy: FaultyProxy) -> None:  # type: ignore[no-untyped-def]
    """Some leads of the lost batch really were in the campaign before: they stay skipped,
    the ones the lost attempt added count as added, each lead named right."""
    with Client(api.server.base_url, api.key) as direct:
        campaign = direct.create_campaign("Lost answer, mixed")
        before = leads(5, "mixed", start=50)  # in the second batch of 40
        assert direct.import_leads(campaign.id, before).added == 5
    proxy.on("POST", IMPORT_PATH, ["pass", "drop_after"])
    with Client(proxy.base_url, api.key, retry=FAST) as client:
        summary = client.import_leads(campaign.id, leads(100, "mixed"), batch_size=40)
    assert (summary.added, summary.skipped, summary.unverified) == (95, 5, 0)
    assert summary.skipped_by_reason == {"Already exists in this campaign": 5}
    assert sorted(s.email for s in summary.skipped_leads) == sorted(x["email"] for x in before)
    assert {s.index for s in summary.skipped_leads} == set(range(50, 55))
    assert summary.reconciled_batches == 1
    assert len(_members(api, campaign.id)) == 100


def test_a_request_lost_on_the_way_is_sent_again(api, proxy: FaultyProxy) -> None:  # type: ignore[no-untyped-def]
    proxy.on("POST", IMPORT_PATH, ["drop_before", "drop_before"])
    with Client(proxy.base_url, api.key, retry=FAST) as client:
        campaign = client.create_campaign("Lost request")
        client.import_leads(campaign.id, leads(10, "again", start=5))
        summary = client.import_leads(campaign.id, leads(20, "again"))
    # The first import's two drops, then its answer; then the second import.
    assert proxy.seen("POST", IMPORT_PATH) == ["drop_before", "drop_before", "pass", "pass"]
    assert (summary.added, summary.skipped) == (10, 10)


def test_giving_up_says_how_far_the_import_got(api, proxy: FaultyProxy) -> None:  # type: ignore[no-untyped-def]
    proxy.on("POST", IMPORT_PATH, ["pass"] + [("status", 503, {})] * 10)
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01, jitter=False)
    with Client(proxy.base_url, api.key, retry=policy) as client:
        campaign = client.create_campaign("Gives up")
        with pytest.raises(ServerError) as failed:
            client.import_leads(campaign.id, leads(900, "gives-up"))
    assert failed.value.status_code == 503
    assert failed.value.summary is not None
    assert (failed.value.summary.added, failed.value.summary.total) == (400, 800)


def test_a_write_that_is_not_safe_to_repeat_is_not_repeated(api, proxy: FaultyProxy) -> None:  # type: ignore[no-untyped-def]
    proxy.on("POST", r"^/campaigns$", ["drop_after"])
    with Client(proxy.base_url, api.key, retry=FAST) as client:
        with pytest.raises(NetworkError):
            client.create_campaign("Once")
        assert [c.name for c in client.list_campaigns().campaigns] == ["Once"]


# --------------------------------------------------------------------------- sending

PASSWORD = "Sesame-8f3b1c"  # the sink's; every test below checks it is never echoed
STEP = {
    "seq_number": 1,
    "seq_delay_details": {"delay_in_days": 0},
    "subject": "Hi",
    "email_body": "Hello {{ first_name | default: 'there' }}",
}
SCHEDULE = {"timezone": "UTC", "days_of_the_week": [1], "start_hour": "09:00", "end_hour": "17:00"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server that wants the login u / PASSWORD."""
    smtp = SmtpSink(user="u", password=PASSWORD).start()
    try:
        yield smtp
    finally:
        smtp.stop()


def _not_echoed(*things: object) -> None:
    for thing in things:
        assert PASSWORD not in str(thing) and PASSWORD not in repr(thing)


def test_the_password_is_not_in_the_request_repr_only_in_its_body() -> None:
    mailbox = SmtpSink(port=2525, user="u", password=PASSWORD).mailbox()  # not started
    request = next(ops.save_email_account(FAST, **mailbox))
    assert isinstance(request, ApiRequest) and request.idempotent is False  # a create
    _not_echoed(request)
    assert f'"password":"{PASSWORD}"'.encode() in (request.body() or b"")
    update = next(ops.save_email_account(FAST, **mailbox, email_account_id=7))
    assert update.idempotent is True  # an update says the same thing twice
    assert (update.json or {})["id"] == 7


def test_email_accounts_in_process(local: Client, sink: SmtpSink) -> None:
    saved = local.save_email_account(**sink.mailbox("Sam@Example.com"))
    assert saved.ok and saved.id > 0
    assert (saved.from_email, saved.user_name, saved.smtp_port) == (
        "sam@example.com",
        "u",
        sink.port,
    )
    assert (saved.has_password, saved.state, saved.sent_today) == (True, "OK", 0)
    assert "password" not in saved.model_dump()
    _not_echoed(saved, saved.model_dump_json())
    assert local.get_email_account(saved.id).model_dump() == saved.model_dump(exclude={"ok"})

    worked = local.test_email_account(saved.id)
    assert (worked.ok, worked.stage) == (True, None)
    # An update names the mailbox and gives every field again; a wrong password fails at login.
    local.save_email_account(
        **sink.mailbox("sam@example.com", password="wrong"), email_account_id=saved.id
    )
    refused = local.test_email_account(saved.id)
    assert (refused.ok, refused.stage, refused.smtp_code) == (False, "login", 535)
    _not_echoed(refused)
    # An update without a password keeps the stored one.
    fields = {**sink.mailbox("sam@example.com", max_email_per_day=5), "password": None}
    again = local.save_email_account(**fields, email_account_id=saved.id)
    assert again.id == saved.id and again.max_email_per_day == 5
    assert local.test_email_account(saved.id).ok is False  # still the wrong one
    local.save_email_account(**sink.mailbox("sam@example.com"), email_account_id=saved.id)
    assert local.test_email_account(saved.id).ok is True

    second = local.save_email_account(**sink.mailbox("second@example.com", smtp_port=1))
    unreachable = local.test_email_account(second.id)
    assert (unreachable.ok, unreachable.stage) == (False, "connect")
    assert local.list_email_accounts().email_accounts[0].id == saved.id
    page = local.list_email_accounts(limit=1)
    assert [m.id for m in page.email_accounts] == [saved.id] and page.next_cursor is not None
    assert [m.id for m in local.list_email_accounts(after=page.next_cursor).email_accounts] == [
        second.id
    ]
    assert [m.id for m in local.iter_email_accounts(page_size=1)] == [saved.id, second.id]

    assert local.delete_email_account(second.id).ok
    with pytest.raises(NotFoundError):
        local.get_email_account(second.id)
    with pytest.raises(NotFoundError):
        local.delete_email_account(second.id)
    assert [m.id for m in local.iter_email_accounts()] == [saved.id]


def test_email_account_errors_are_typed_and_never_show_the_password(
    local: Client, sink: SmtpSink
) -> None:
    with pytest.raises(ValidationError) as security:
        local.save_email_account(**sink.mailbox(smtp_security="TLS"))
    assert security.value.code == "invalid_request"
    assert security.value.details[0]["loc"] == "smtp_security"
    with pytest.raises(ValidationError) as host:
        local.save_email_account(**sink.mailbox(smtp_host="mail.example.com\r\nRCPT TO:<x@y>"))
    assert host.value.details[0]["loc"] == "smtp_host"
    with pytest.raises(ValidationError) as port:
        local.save_email_account(**sink.mailbox(smtp_port=70_000))
    assert port.value.details[0]["loc"] == "smtp_port"
    with pytest.raises(ValidationError) as address:
        local.save_email_account(**sink.mailbox("not-an-address"))
    assert address.value.code == "invalid_email"
    with pytest.raises(ValidationError) as no_password:
        local.save_email_account(**{**sink.mailbox(), "password": None})
    assert no_password.value.code == "missing_password"
    with pytest.raises(ValidationError) as bad_password:
        local.save_email_account(**sink.mailbox(password=PASSWORD + "\n"))
    assert bad_password.value.details[0]["loc"] == "password"
    saved = local.save_email_account(**sink.mailbox())
    with pytest.raises(ConflictError) as duplicate:
        local.save_email_account(**sink.mailbox())  # the same address again, without its id
    assert duplicate.value.code == "email_account_exists"
    assert duplicate.value.details == {"id": saved.id}
    with pytest.raises(NotFoundError):
        local.save_email_account(**sink.mailbox("new@example.com"), email_account_id=10**12)
    for error in (security, host, port, address, no_password, bad_password, duplicate):
        _not_echoed(error.value, error.value.details)
    assert [m.id for m in local.iter_email_accounts()] == [saved.id]  # the failures stored none


def test_campaign_sending_setup_in_process(local: Client, sink: SmtpSink) -> None:
    campaign = local.create_campaign("Sending setup")
    mailbox = local.save_email_account(**sink.mailbox())

    not_ready = pytest.raises(ValidationError)
    with not_ready as refused:
        local.change_campaign_status(campaign.id, "START")
    assert refused.value.code == "campaign_not_ready"
    assert [r["code"] for r in refused.value.details["reasons"]] == [
        "no_sequence",
        "no_email_account",
        "no_schedule",
    ]

    attached = local.add_campaign_email_accounts(campaign.id, [mailbox.id, mailbox.id])
    assert attached.campaign_id == campaign.id
    assert [m.id for m in attached.email_accounts] == [mailbox.id]
    listed = local.list_campaign_email_accounts(campaign.id)
    assert [m.from_email for m in listed.email_accounts] == [mailbox.from_email]
    with pytest.raises(NotFoundError) as unknown:
        local.add_campaign_email_accounts(campaign.id, [mailbox.id, 10**12])
    assert unknown.value.details == {"missing": [10**12]}
    with pytest.raises(ValidationError):
        local.add_campaign_email_accounts(campaign.id, [])
    assert local.remove_campaign_email_accounts(campaign.id, [mailbox.id]).email_accounts == []
    assert local.list_campaign_email_accounts(campaign.id).email_accounts == []
    with pytest.raises(NotFoundError):
        local.list_campaign_email_accounts(10**12)

    start = datetime(2030, 1, 2, 8, 0, tzinfo=UTC)
    scheduled = local.save_campaign_schedule(
        campaign.id,
        timezone="America/New_York",
        days_of_the_week=[5, 1, 2, 3, 4],
        start_hour="09:00",
        end_hour="17:30",
        min_time_btw_emails=15,
        schedule_start_time=start,
    )
    assert scheduled.ok and scheduled.id == campaign.id
    assert scheduled.schedule.days_of_the_week == [1, 2, 3, 4, 5]
    assert (scheduled.schedule.start_hour, scheduled.schedule.end_hour) == ("09:00", "17:30")
    assert scheduled.schedule.min_time_btw_emails == 15
    assert scheduled.schedule.max_new_leads_per_day == 100  # left out: the default
    assert scheduled.schedule.schedule_start_time == "2030-01-02T08:00:00.000Z"
    assert local.get_campaign(campaign.id).schedule == scheduled.schedule
    for wrong, code in (
        ({"timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"start_hour": "18:00"}, "invalid_schedule"),
        ({"days_of_the_week": [7]}, "invalid_request"),
        ({"end_hour": "5pm"}, "invalid_request"),
    ):
        with pytest.raises(ValidationError) as invalid:
            local.save_campaign_schedule(campaign.id, **{**SCHEDULE, **wrong})
        assert invalid.value.code == code, wrong
    assert local.get_campaign(campaign.id).schedule == scheduled.schedule  # unchanged

    settings = local.update_campaign_settings(
        campaign.id, track_settings=["DONT_TRACK_LINK_CLICK"], stop_lead_settings="OPEN_AN_EMAIL"
    )
    assert settings.settings.track_settings == ["DONT_TRACK_LINK_CLICK"]
    assert settings.settings.stop_lead_settings == "OPEN_AN_EMAIL"
    footer = local.update_campaign_settings(campaign.id, unsubscribe_text="No more, thanks")
    assert footer.settings.unsubscribe_text == "No more, thanks"
    assert footer.settings.track_settings == ["DONT_TRACK_LINK_CLICK"]  # left out: kept
    with pytest.raises(ValidationError) as setting:
        local.update_campaign_settings(campaign.id, stop_lead_settings="NEVER")
    assert setting.value.details[0]["loc"] == "stop_lead_settings"
    assert local.get_campaign(campaign.id).settings == footer.settings

    local.save_sequences(campaign.id, [STEP])
    with pytest.raises(ValidationError) as still:
        local.change_campaign_status(campaign.id, "START")
    assert [r["code"] for r in still.value.details["reasons"]] == ["no_email_account"]
    local.add_campaign_email_accounts(campaign.id, [mailbox.id])
    started = local.change_campaign_status(campaign.id, "START")
    assert (started.previous_status, started.status) == ("DRAFTED", "ACTIVE")
    assert local.change_campaign_status(campaign.id, "START").previous_status == "ACTIVE"
    assert local.change_campaign_status(campaign.id, "PAUSED").status == "PAUSED"
    with pytest.raises(ValidationError):
        local.change_campaign_status(campaign.id, "RESUME")
    assert local.change_campaign_status(campaign.id, "STOPPED").status == "STOPPED"
    with pytest.raises(ConflictError) as stopped:
        local.change_campaign_status(campaign.id, "START")
    assert stopped.value.code == "campaign_stopped"
    assert local.get_campaign(campaign.id).status == "STOPPED"
    with pytest.raises(NotFoundError):
        local.change_campaign_status(10**12, "PAUSED")


def test_sending_against_a_real_server(api, other_api, sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    with (
        Client(api.server.base_url, api.key, retry=FAST) as client,
        Client(other_api.server.base_url, other_api.key, retry=FAST) as other,
    ):
        mailbox = client.save_email_account(**sink.mailbox())
        assert mailbox.has_password and mailbox.state == "OK"
        assert client.test_email_account(mailbox.id).ok  # the server reached the sink
        wrong = client.save_email_account(
            **sink.mailbox(password="wrong"), email_account_id=mailbox.id
        )
        assert wrong.id == mailbox.id
        login = client.test_email_account(mailbox.id)
        assert (login.ok, login.stage, login.smtp_code) == (False, "login", 535)
        client.save_email_account(**sink.mailbox(), email_account_id=mailbox.id)
        assert client.test_email_account(mailbox.id).ok
        assert [m.id for m in client.iter_email_accounts()] == [mailbox.id]

        campaign = client.create_campaign("Sending, real")
        client.save_sequences(campaign.id, [STEP])
        assert [
            m.id
            for m in client.add_campaign_email_accounts(campaign.id, [mailbox.id]).email_accounts
        ] == [mailbox.id]
        client.save_campaign_schedule(
            campaign.id,
            timezone="Europe/Berlin",
            days_of_the_week=[1, 2, 3, 4, 5],
            start_hour="08:00",
            end_hour="18:00",
            max_new_leads_per_day=20,
        )
        client.update_campaign_settings(campaign.id, send_as_plain_text=True)
        read = client.get_campaign(campaign.id)
        assert read.schedule is not None and read.schedule.max_new_leads_per_day == 20
        assert read.settings is not None and read.settings.send_as_plain_text is True
        assert client.change_campaign_status(campaign.id, "START").status == "ACTIVE"
        assert client.change_campaign_status(campaign.id, "PAUSED").status == "PAUSED"

        # Another account's mailbox and campaign do not exist for this key.
        theirs = other.create_campaign("Theirs")
        for attempt in (
            lambda: other.get_email_account(mailbox.id),
            lambda: other.test_email_account(mailbox.id),
            lambda: other.delete_email_account(mailbox.id),
            lambda: other.save_email_account(
                **sink.mailbox("x@example.com"), email_account_id=mailbox.id
            ),
            lambda: other.add_campaign_email_accounts(theirs.id, [mailbox.id]),
            lambda: other.remove_campaign_email_accounts(theirs.id, [mailbox.id]),
            lambda: other.list_campaign_email_accounts(campaign.id),
            lambda: other.add_campaign_email_accounts(campaign.id, [mailbox.id]),
            lambda: other.change_campaign_status(campaign.id, "STOPPED"),
            lambda: other.update_campaign_settings(campaign.id, unsubscribe_text="x"),
            lambda: other.save_campaign_schedule(campaign.id, **SCHEDULE),
        ):
            with pytest.raises(NotFoundError) as missing:
                attempt()
            assert missing.value.status_code == 404
        assert other.list_email_accounts().email_accounts == []
        # ...and nothing of it changed.
        assert client.get_email_account(mailbox.id).from_email == mailbox.from_email
        assert client.get_campaign(campaign.id).status == "PAUSED"
        assert [m.id for m in client.list_campaign_email_accounts(campaign.id).email_accounts] == [
            mailbox.id
        ]

        with pytest.raises(ValidationError) as invalid:
            client.save_email_account(**{**sink.mailbox("y@example.com"), "smtp_port": "25"})
        assert invalid.value.details[0]["loc"] == "smtp_port"  # strict: a string is no port
        _not_echoed(invalid.value, invalid.value.details)
        assert client.remove_campaign_email_accounts(campaign.id, [mailbox.id]).email_accounts == []
        assert client.delete_email_account(mailbox.id).ok
        with pytest.raises(NotFoundError):
            client.test_email_account(mailbox.id)


async def test_async_sending_against_a_real_server(api, sink: SmtpSink) -> None:  # type: ignore[no-untyped-def]
    async with AsyncClient(api.server.base_url, api.key, retry=FAST) as client:
        first = await client.save_email_account(**sink.mailbox("one@example.com"))
        second = await client.save_email_account(**sink.mailbox("two@example.com"))
        assert (await client.test_email_account(second.id)).ok
        ids = [m.id async for m in client.iter_email_accounts(page_size=1)]
        assert ids == [first.id, second.id]
        assert (await client.get_email_account(first.id)).from_email == "one@example.com"
        campaign = await client.create_campaign("Async sending")
        added = await client.add_campaign_email_accounts(campaign.id, [first.id, second.id])
        assert [m.id for m in added.email_accounts] == [first.id, second.id]
        left = await client.remove_campaign_email_accounts(campaign.id, [first.id])
        assert [m.id for m in left.email_accounts] == [second.id]
        listed = await client.list_campaign_email_accounts(campaign.id)
        assert [m.id for m in listed.email_accounts] == [second.id]
        saved = await client.save_campaign_schedule(
            campaign.id,
            timezone="UTC",
            days_of_the_week=[0, 6],
            start_hour="00:00",
            end_hour="24:00",
        )
        assert saved.schedule.end_hour == "24:00"
        settings = await client.update_campaign_settings(campaign.id, track_settings=[])
        assert settings.settings.track_settings == []
        with pytest.raises(ValidationError) as not_ready:
            await client.change_campaign_status(campaign.id, "START")
        assert [r["code"] for r in not_ready.value.details["reasons"]] == ["no_sequence"]
        assert (await client.change_campaign_status(campaign.id, "STOPPED")).status == "STOPPED"
        assert (await client.delete_email_account(first.id)).ok
        with pytest.raises(NotFoundError):
            await client.get_email_account(first.id)
