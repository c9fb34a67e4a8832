"""Schema-driven fuzzing: schemathesis generates requests from the app's own OpenAPI schema.

The app runs in process (ASGI) on a fresh database of its own, once per backend (so that,
with derandomised generation, every run sends the same requests to the same state). Each
operation gets schemathesis's coverage phase (boundary values, missing and extra fields, wrong
types, wrong content types, undeclared methods) and a bounded fuzzing phase of schema-valid
and schema-invalid requests. Every response goes through all of schemathesis's checks: never a
5xx, a documented status code and content type, a body that matches the documented schema, a
schema-invalid request refused with a 4xx, a schema-valid one never failing validation (see
``schema_valid_requests_pass_validation``), and a 405 that lists the path's methods.

Generated ids seldom name an object that exists, which would leave the interesting paths (an
import into a real campaign, deleting a real entry) untested; so a schema-valid path is aimed
at a live object of the fuzzing account in the coverage phase, and for an even id in the
fuzzing phase.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.meta import TestPhase
from schemathesis.python.asgi import shutdown_lifespans

from openlead.app import API_PREFIX, create_app
from openlead.config import Settings
from openlead.db.migrate import upgrade
from tests.support import (
    create_account,
    create_pg_database,
    drop_pg_database,
    postgres_reachable,
    query,
)

# Per operation and backend, besides the coverage phase's own cases.
MAX_EXAMPLES = 40
# The codes of a request the validation layer refused (as opposed to a rule of the domain).
VALIDATION_CODES = frozenset(
    {"invalid_request", "malformed_json", "missing_body", "unsupported_media_type"}
)
LIVE_EMAIL = "live-lead@fuzz.example.com"
LIVE_BLOCKED = "blocked@fuzz.example.com"


@dataclass
class Fuzzing:
    """The schema of one in-process app, its fuzzing account, and that account's live objects
    (made again whenever a fuzzed request has deleted them)."""

    schema: Any
    database_url: str
    key: str
    lead_id: int | None = None  # a lead is never deleted, only taken out of campaigns

    @property
    def auth(self) -> dict[str, str]:
        return {"X-API-Key": self.key}

    def call(self, method: str, path: str, **case: Any) -> Any:
        operation = self.schema[f"{API_PREFIX}{path}"][method]
        response = operation.Case(**case).call(headers=self.auth)
        assert response.status_code == 200, response.text
        return response.json()

    def campaign(self) -> int:
        campaigns = self.call("GET", "/campaigns")
        if campaigns:
            return campaigns[0]["id"]
        return self.call("POST", "/campaigns", body={"name": "Live"})["id"]

    def lead(self) -> int:
        """A lead in ``campaign()``."""
        self.call(
            "POST",
            "/campaigns/{campaign_id}/leads",
            path_parameters={"campaign_id": self.campaign()},
            body={
                "lead_list": [{"email": LIVE_EMAIL}],
                "settings": {
                    "ignore_global_block_list": True,
                    "ignore_unsubscribe_list": True,
                    "ignore_duplicate_leads_in_other_campaign": True,
                },
            },
        )
        if self.lead_id is None:
            rows = query(
                self.database_url,
                "SELECT l.id FROM leads l JOIN api_keys k ON k.account_id = l.account_id "
                "WHERE l.email = :email AND k.key_hash = :hash",
                email=LIVE_EMAIL,
                hash=_key_hash(self.key),
            )
            self.lead_id = rows[0][0]
        return self.lead_id

    def block_entry(self) -> int:
        self.call("POST", "/leads/block-list", body={"emails": [LIVE_BLOCKED]})
        return self.call("GET", "/leads/block-list")["block_list"][0]["id"]

    def unsubscribe_entry(self) -> int:
        self.call("POST", "/leads/{lead_id}/unsubscribe", path_parameters={"lead_id": self.lead()})
        return self.call("GET", "/leads/unsubscribes")["unsubscribes"][0]["id"]


def schema_valid_requests_pass_validation(ctx: Any, response: Any, case: Any) -> None:
    """schemathesis's ``positive_data_acceptance``, narrowed to what the schema can promise.

    A request the schema calls valid must never fail validation: that would mean the schema
    and the server disagree. It may still break a rule of the domain that no schema states (an
    unknown status, a campaign that cannot start), which is a 400 with a code of its own.
    """
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code < 400:
        return
    if response.status_code in (401, 404, 409, 429) or response.status_code >= 500:
        return  # not about the request's shape; a 5xx is not_a_server_error's to report
    code = response.json().get("error", {}).get("code")
    if response.status_code == 400 and code not in VALIDATION_CODES:
        return
    raise AssertionError(
        f"A request valid by the schema was refused: {response.status_code} {code}: "
        f"{response.text[:500]}"
    )


def _key_hash(key: str) -> str:
    from openlead.accounts.keys import key_hash

    return key_hash(key)


def _live_id(fuzzing: Fuzzing, path: str, name: str) -> int | None:
    live: dict[str, Callable[[], int]] = {
        "campaign_id": fuzzing.campaign,
        "lead_id": fuzzing.lead,
    }
    if name == "entry_id":
        return fuzzing.block_entry() if "/block-list/" in path else fuzzing.unsubscribe_entry()
    return live[name]() if name in live else None


def _aim_at_live_objects(case: Any, fuzzing: Fuzzing) -> None:
    meta = case.meta
    path_info = meta.components.get(ParameterLocation.PATH) if meta is not None else None
    if path_info is None or path_info.mode is not GenerationMode.POSITIVE:
        return  # a schema-invalid path must stay invalid
    coverage = meta.phase.name is TestPhase.COVERAGE
    # Lead ids first: making the live lead may make the live campaign.
    for name in sorted(case.path_parameters or {}, key=lambda n: n != "lead_id"):
        value = case.path_parameters[name]
        if isinstance(value, str) and value.isdigit():
            value = int(value)  # the coverage phase spells path values as they go on the wire
        if not isinstance(value, int) or (value % 2 and not coverage):
            continue
        live = _live_id(fuzzing, case.operation.path, name)
        if live is not None:
            case.path_parameters[name] = live


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_database(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'openlead.db'}"
        return
    problem = postgres_reachable()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@pytest.fixture(scope="module")
def fuzzing(fuzz_database: str, tmp_path_factory: Any) -> Iterator[Fuzzing]:
    database_url = fuzz_database
    upgrade(database_url)
    key = create_account(database_url)
    settings = Settings(
        database_url=database_url,
        rate_limit="off",
        data_dir=tmp_path_factory.mktemp("fuzz-data"),
        # Fuzzed mailboxes name hosts that do not exist; nothing here is about sending.
        sender=False,
    )
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", app)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=MAX_EXAMPLES
    )
    schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])
    try:
        yield Fuzzing(schema, database_url, key)
    finally:
        shutdown_lifespans()  # closes the app's engines before the database is dropped


@pytest.fixture(scope="module")
def fuzz_schema(fuzzing: Fuzzing) -> Any:
    return fuzzing.schema


@pytest.fixture(autouse=True)
def _subtest_names(request: pytest.FixtureRequest) -> None:
    # schemathesis 4 names each operation's subtest by rewriting ``Node._nodeid``, an attribute
    # pytest 9 no longer has; give it one to rewrite.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_never_fails_and_matches_its_schema(case: Any, fuzzing: Fuzzing) -> None:
    _aim_at_live_objects(case, fuzzing)
    case.call_and_validate(
        headers=fuzzing.auth, additional_checks=[schema_valid_requests_pass_validation]
    )
