"""Test support: real databases, a real server process, and accounts made through the service."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openlead.accounts import service as accounts
from openlead.db.engine import create_database

PG_ADMIN_URL = os.environ.get("OPENLEAD_TEST_PG", "postgresql://127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_reachable() -> str | None:
    """None when PostgreSQL answers; otherwise why it does not."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means: skip loudly, with the reason
        return f"{type(exc).__name__}: {exc}"
    return None


def create_pg_database() -> tuple[str, str]:
    """A fresh, empty database; returns (name, async SQLAlchemy URL)."""
    import psycopg

    name = f"openlead_test_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_account(database_url: str, name: str | None = None) -> str:
    """A new account with one key, made through the same service the CLI uses."""

    async def run() -> str:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.write() as conn:
                account_id = await accounts.create_account(
                    conn, name or f"acct-{secrets.token_hex(6)}"
                )
                return await accounts.create_key(conn, account_id)
        finally:
            await database.dispose()

    return asyncio.run(run())


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it has not stopped within ``timeout`` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)


@dataclass
class Server:
    """An ``openlead serve`` process on a free port."""

    backend: str
    database_url: str
    port: int
    key: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        env = {
            **os.environ,
            "OPENLEAD_BOOTSTRAP_API_KEY": self.key,
            "OPENLEAD_RATE_LIMIT": "off",
            # The generated secret key goes beside the log, never into the working tree.
            "OPENLEAD_DATA_DIR": str(self.log_path.parent),
            **self.env,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "openlead.cli",
                "serve",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def stop(self) -> None:
        stop_process(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def backend_of(database_url: str) -> str:
    return "postgres" if database_url.startswith("postgresql") else "sqlite"


@contextmanager
def serving(database_url: str, folder: Path, **env: str) -> Iterator[Server]:
    """A real ``openlead serve`` on ``database_url``, its log and generated secret in
    ``folder``, with ``env`` on top of the test defaults."""
    instance = Server(
        backend=backend_of(database_url),
        database_url=database_url,
        port=free_port(),
        key="ol_bootstrap_" + secrets.token_urlsafe(24),
        log_path=folder / "server.log",
        env=env,
    )
    instance.start()
    try:
        yield instance
    finally:
        instance.stop()


class Api:
    """A client for one account, passing the key the way the guide does."""

    def __init__(self, server: Server, key: str) -> None:
        self.server = server
        self.key = key
        self.http = httpx.Client(base_url=server.base_url, timeout=60)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        params = dict(kwargs.pop("params", {}) or {})
        params.setdefault("api_key", self.key)
        return self.http.request(method, path, params=params, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)

    def campaign(self, name: str = "Test campaign") -> int:
        response = self.post("/campaigns", json={"name": name})
        assert response.status_code == 200, response.text
        return response.json()["id"]

    def import_leads(self, campaign_id: int, leads: list[dict], **settings: bool) -> dict:
        body: dict[str, Any] = {"lead_list": leads}
        if settings:
            body["settings"] = settings
        response = self.post(f"/campaigns/{campaign_id}/leads", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.http.close()


def query(database_url: str, sql: str, **params: Any) -> list[tuple]:
    """Read the database directly, to check what a request stored."""
    from sqlalchemy import text

    async def run() -> list[tuple]:
        database = create_database(database_url, pool_size=1)
        try:
            async with database.read() as conn:
                return [tuple(r) for r in (await conn.execute(text(sql), params)).all()]
        finally:
            await database.dispose()

    return asyncio.run(run())
