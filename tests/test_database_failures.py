"""The database failing for a moment is not the request's fault.

A lock held elsewhere for longer than the server waits for it (OPENLEAD_LOCK_TIMEOUT_SECONDS)
is a 503 database_busy with Retry-After, never a 500, and the request stored nothing; the
dispatcher's writes wait it out. So is a database out of reach: 503 database_unavailable, and
the dispatcher's writes wait until it is back. A PostgreSQL connection the server closed while
it sat in the pool is replaced, not handed to a request. The CLI says such things in one line.

Real servers on both backends; the lock is another connection's transaction, as another
process's (a worker, a CLI import, an operator's psql) would be.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from openlead.accounts import service as accounts
from openlead.db.engine import create_database
from openlead.db.errors import (
    DatabaseUnavailable,
    describe,
    is_busy,
    is_unreachable,
    momentary,
)
from openlead.db.migrate import upgrade
from openlead.sending.journal import RETRY_SECONDS, Journal
from tests.support import (
    PG_ADMIN_URL,
    Server,
    free_port,
    postgres_reachable,
    query,
    serving,
)
from tests.tcp_relay import TcpRelay

LOCK_TIMEOUT_SECONDS = 0.3


@pytest.fixture
def busy_server(fresh_database_url: str, tmp_path: Path) -> Iterator[Server]:
    with serving(
        fresh_database_url,
        tmp_path,
        OPENLEAD_LOCK_TIMEOUT_SECONDS=str(LOCK_TIMEOUT_SECONDS),
        OPENLEAD_SENDER_INTERVAL_SECONDS="0.1",
    ) as instance:
        yield instance


@pytest.fixture
def server_without_sender(fresh_database_url: str, tmp_path: Path) -> Iterator[Server]:
    """Only requests take the pool's connections: none of the dispatcher's ticks meets a
    closed one first and clears the pool for them."""
    with serving(fresh_database_url, tmp_path, OPENLEAD_SENDER="false") as instance:
        yield instance


@contextmanager
def writer_elsewhere(database_url: str) -> Iterator[None]:
    """Another connection's transaction, holding what creating an account or a campaign and
    importing leads write to, until the block ends."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    import psycopg

    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        conn.execute("LOCK TABLE accounts, campaigns, leads IN EXCLUSIVE MODE")
        yield
        conn.rollback()


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers={"X-API-Key": server.key}, timeout=30)


def _assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    error = response.json()["error"]
    assert error["code"] == "database_busy"
    assert "Nothing was stored" in error["message"]
    assert set(error) == {"code", "message", "details"}


def test_an_import_that_waits_too_long_for_a_lock_is_503_and_stores_nothing(busy_server):
    with _client(busy_server) as api:
        campaign = api.post("/campaigns/create", json={"name": "Busy"}).json()["id"]
        body = {"lead_list": [{"email": "kept.private@example.com", "first_name": "Ann"}]}
        with writer_elsewhere(busy_server.database_url):
            started = time.monotonic()
            _assert_busy(api.post(f"/campaigns/{campaign}/leads", json=body))
            waited = time.monotonic() - started
            # Reads go on beside the writer: WAL on SQLite, MVCC on PostgreSQL.
            assert api.get(f"/campaigns/{campaign}").status_code == 200
        assert LOCK_TIMEOUT_SECONDS <= waited < 10
        assert api.get(f"/campaigns/{campaign}/leads").json()["total_leads"] == 0
        again = api.post(f"/campaigns/{campaign}/leads", json=body)
        assert again.status_code == 200
        assert again.json()["added_count"] == 1
    log = busy_server.log()
    assert "database busy on POST /api/v1/campaigns/" in log
    assert "internal_error" not in log and "unhandled error" not in log
    # The warning is the driver's one line, not SQLAlchemy's statement and its parameters.
    assert "kept.private@example.com" not in log


def test_creating_a_campaign_while_another_writer_holds_the_lock_is_503(busy_server):
    with _client(busy_server) as api:
        with writer_elsewhere(busy_server.database_url):
            _assert_busy(api.post("/campaigns/create", json={"name": "Waits"}))
        assert api.get("/campaigns").json() == []
        assert api.post("/campaigns/create", json={"name": "Waits"}).status_code == 200


def test_the_dispatcher_waits_out_a_busy_database_without_failing(busy_server):
    with writer_elsewhere(busy_server.database_url):
        deadline = time.monotonic() + 10
        while "the database is busy" not in busy_server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
    log = busy_server.log()
    assert "the database is busy" in log
    assert "dispatcher tick failed" not in log


def test_connections_the_database_closed_while_pooled_are_replaced(server_without_sender):
    server = server_without_sender
    if server.backend != "postgres":
        pytest.skip("a SQLite database has no connection to lose")
    import psycopg

    def statuses() -> set[int]:
        def one(_: int) -> int:
            with _client(server) as api:
                return api.get("/campaigns").status_code

        with ThreadPoolExecutor(4) as pool:  # several pooled connections in use at once
            return set(pool.map(one, range(24)))

    assert statuses() == {200}
    url = make_url(server.database_url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as admin:
        # What a restart, a failover or an administrator does to the server's connections.
        closed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert closed is not None and closed[0] >= 2
    time.sleep(0.3)
    assert statuses() == {200}


@pytest.fixture
def relayed_url(fresh_database_url: str) -> Iterator[tuple[str, TcpRelay]]:
    """The test's PostgreSQL database behind a relay the test can cut."""
    if not fresh_database_url.startswith("postgresql"):
        pytest.skip("a SQLite database is a file: it cannot go out of reach")
    url = make_url(fresh_database_url)
    relay = TcpRelay(url.host or "127.0.0.1", url.port or 5432).up()
    try:
        yield url.set(port=relay.port).render_as_string(hide_password=False), relay
    finally:
        relay.close()


def test_a_database_out_of_reach_is_503_and_the_server_recovers_when_it_is_back(
    relayed_url, tmp_path
):
    url, relay = relayed_url
    with serving(url, tmp_path, OPENLEAD_SENDER="false") as server, _client(server) as api:
        campaign = api.post("/campaigns/create", json={"name": "Away"}).json()["id"]
        body = {"lead_list": [{"email": "ann@example.com"}]}
        relay.down()
        time.sleep(0.3)
        answers = (api.post(f"/campaigns/{campaign}/leads", json=body), api.get("/campaigns"))
        for response in answers:
            assert response.status_code == 503, response.text
            assert response.headers["Retry-After"] == "2"
            assert response.json()["error"]["code"] == "database_unavailable"
        relay.up()
        assert api.get(f"/campaigns/{campaign}/leads").json()["total_leads"] == 0
        assert api.post(f"/campaigns/{campaign}/leads", json=body).json()["added_count"] == 1
        log = server.log()
    assert "database unreachable on POST /api/v1/campaigns/" in log
    assert "unhandled error" not in log


async def _posted_through(
    database_url: str, obstacle: AbstractContextManager[object], caplog: pytest.LogCaptureFixture
) -> list[tuple]:
    """What a write the dispatcher posts (nobody waits for it) leaves in the database, when
    ``obstacle`` stands in its way for longer than a retry: the accounts' names."""
    await asyncio.to_thread(upgrade, database_url)  # it runs a loop of its own
    database = create_database(database_url, pool_size=2, lock_timeout_seconds=0.2)
    journal = Journal(database)

    async def record(conn, _returns) -> None:  # type: ignore[no-untyped-def]
        await accounts.create_account(conn, "recorded")

    caplog.set_level(logging.WARNING, logger="openlead.sending")
    try:
        with obstacle:
            journal.post(record)
            await asyncio.sleep(RETRY_SECONDS + 0.5)  # more than one try
        await journal.drain()
    finally:
        await journal.close()
        await database.dispose()
    assert "a dispatcher write failed" not in caplog.text
    return await asyncio.to_thread(query, database_url, "SELECT name FROM accounts")


async def test_the_dispatcher_s_writes_wait_for_a_database_out_of_reach(relayed_url, caplog):
    url, relay = relayed_url
    assert await _posted_through(url, relay.cut(), caplog) == [("recorded",)]
    assert "the database is unreachable" in caplog.text


async def test_the_dispatcher_s_writes_wait_out_a_busy_database(fresh_database_url, caplog):
    """An outcome or an event is only logged when its write fails: were a busy database a
    failure, what it records would be lost."""
    obstacle = writer_elsewhere(fresh_database_url)
    assert await _posted_through(fresh_database_url, obstacle, caplog) == [("recorded",)]
    assert "the database is busy" in caplog.text


LOCKED = sqlite3.OperationalError("database is locked")


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("failure", "busy"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (sqlite3.OperationalError("database table is locked: leads"), True),
        (sqlite3.OperationalError("no such table: leads"), False),
        (_DriverError("55P03"), True),  # lock_timeout
        (_DriverError("40P01"), True),  # deadlock
        (_DriverError("23505"), False),  # a unique violation is the request's
        (sa_exc.TimeoutError("QueuePool limit reached"), True),
        (sa_exc.OperationalError("BEGIN", {}, LOCKED), True),
        (sa_exc.DBAPIError("INSERT", {}, _DriverError("55P03")), True),
        (ValueError("database is locked"), False),  # the words alone are not the driver's
    ],
)
def test_which_failures_are_the_database_being_busy(failure: Exception, busy: bool):
    assert is_busy(failure) is busy
    assert momentary(failure) == ("busy" if busy else None)


@pytest.mark.parametrize(
    ("failure", "unreachable"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), True),
        (TimeoutError(), True),
        (_DriverError("57P03"), True),  # the database system is starting up
        (_DriverError("53300"), True),  # too many connections
        (_DriverError("08006"), True),  # connection failure
        (_DriverError("3D000"), False),  # no such database: the configuration's, not the moment's
        (sa_exc.DBAPIError("connect", {}, _DriverError("57P03")), True),
    ],
)
def test_which_failures_to_connect_are_the_database_out_of_reach(
    failure: Exception, unreachable: bool
):
    assert is_unreachable(failure) is unreachable
    # Only a failure to connect, which nothing began before, is reported as out of reach.
    assert momentary(failure) is None
    try:
        raise DatabaseUnavailable(describe(failure)) from failure
    except DatabaseUnavailable as wrapped:
        assert momentary(wrapped) == "unreachable"


def test_a_busy_failure_is_described_in_the_driver_s_words_alone():
    wrapped = sa_exc.OperationalError(
        "INSERT INTO leads VALUES (?)", ("ann@example.com",), sqlite3.OperationalError("locked")
    )
    assert describe(wrapped) == "locked"


def _openlead(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openlead.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def _said_in_one_line(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode == 1, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr  # rich's frames
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("command", [("migrate",), ("keys", "list"), ("accounts", "create", "x")])
def test_a_cli_command_says_in_one_line_that_the_database_is_out_of_reach(command):
    nothing_there = f"postgresql+asyncpg://127.0.0.1:{free_port()}/test"
    result = _openlead(*command, "--database-url", nothing_there)
    _said_in_one_line(result, "Cannot reach the database: ")


def test_a_cli_command_says_in_one_line_that_the_database_refused_it():
    if postgres_reachable() is not None:
        pytest.skip("PostgreSQL unreachable")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    result = _openlead("keys", "list", "--database-url", f"{base}/openlead_no_such_database")
    _said_in_one_line(result, 'The database refused the connection: database "openlead_no_such')


def test_serve_says_in_one_line_that_the_bootstrap_key_is_too_short(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'openlead.db'}"
    result = _openlead(
        "serve",
        "--port",
        str(free_port()),
        "--database-url",
        url,
        OPENLEAD_BOOTSTRAP_API_KEY="short",
        OPENLEAD_DATA_DIR=str(tmp_path),
        OPENLEAD_LOG_LEVEL="warning",
    )
    _said_in_one_line(result, "An API key must be at least 16 characters.")
