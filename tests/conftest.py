"""One fixture, two backends: every test that takes ``server`` or ``api`` runs on SQLite and
on PostgreSQL. When PostgreSQL is unreachable its tests are skipped with the reason."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.smtp_sink import SmtpSink
from tests.support import (
    Api,
    Server,
    backend_of,
    create_account,
    create_pg_database,
    drop_pg_database,
    postgres_reachable,
    serving,
)

BACKENDS = ["sqlite", "postgres"]
_pg_problem: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = postgres_reachable()
    if problem:
        _pg_problem.append(problem)
        warnings.warn(
            f"PostgreSQL is unreachable; its tests will be SKIPPED: {problem}", stacklevel=1
        )


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    if _pg_problem:
        terminalreporter.section("PostgreSQL SKIPPED", sep="!", red=True, bold=True)
        terminalreporter.line(f"PostgreSQL tests did not run: {_pg_problem[0]}", red=True)


@contextmanager
def _database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database: a file in ``folder``, or a scratch PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'openlead.db'}"
        return
    if _pg_problem:
        pytest.skip(f"PostgreSQL unreachable: {_pg_problem[0]}")
    name, url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(name)


@contextmanager
def _serving(database_url: str, tmp_path_factory, **env: str) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp(f"server-{backend_of(database_url)}")
    with serving(database_url, folder, **env) as instance:
        yield instance


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with _database(request.param, tmp_path_factory.mktemp("sqlite")) as url:
        yield url


@pytest.fixture(scope="session")
def server(database_url: str, tmp_path_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """A real ``openlead serve``, its dispatcher running as it does by default."""
    with _serving(database_url, tmp_path_factory) as instance:
        yield instance


@pytest.fixture(scope="session", params=BACKENDS)
def quiet_server(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Server]:  # type: ignore[no-untyped-def]
    """A real server on a database of its own, with no dispatcher: the test runs the
    dispatcher's ticks itself, at the moments it chooses."""
    with (
        _database(request.param, tmp_path_factory.mktemp("sqlite")) as url,
        _serving(url, tmp_path_factory, OPENLEAD_SENDER="false") as instance,
    ):
        yield instance


@contextmanager
def _account(server: Server) -> Iterator[Api]:
    """A client for a new account on ``server``, closed at the end."""
    client = Api(server, create_account(server.database_url))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def api(server: Server) -> Iterator[Api]:
    """A fresh account on the running server, so tests never see each other's lists."""
    with _account(server) as client:
        yield client


@pytest.fixture
def other_api(server: Server) -> Iterator[Api]:
    """A second account, for tenant-isolation checks."""
    with _account(server) as client:
        yield client


@pytest.fixture(params=BACKENDS)
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own on each backend: no session server sends from it
    (the session's server runs its sender on ``database_url``)."""
    with _database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) that keeps what it accepts."""
    instance = SmtpSink().start()
    yield instance
    instance.stop()


@pytest.fixture
def quiet(quiet_server: Server) -> Iterator[Api]:
    """A fresh account on the server without a dispatcher. Its campaigns are stopped at the
    end, so that no later test's ticks (which serve every account) send for them."""
    with _account(quiet_server) as client:
        yield client
        for listed in client.get("/campaigns").json():
            client.post(f"/campaigns/{listed['id']}/status", json={"status": "STOPPED"})


@pytest.fixture
def quiet_other(quiet_server: Server) -> Iterator[Api]:
    """A second account on the server without a dispatcher, for tenant-isolation checks."""
    with _account(quiet_server) as client:
        yield client
