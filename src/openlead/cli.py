"""The ``openlead`` command: serve, worker, migrate, accounts and keys; and the client commands
``leads``, ``campaigns`` and ``block`` (``openlead.cli_client``), which talk to a server
through the SDK.

The server's modules (SQLAlchemy, Alembic, the app) are imported inside the commands that
use them, so that a client command such as ``openlead leads import`` starts fast and small.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from openlead.cli_client import register as register_client_commands

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from openlead.config import Settings

app = typer.Typer(help="openlead: self-hosted lead management and outreach.", no_args_is_help=True)
accounts_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
# The client commands (leads, campaigns, block) talk to a server through the SDK.
register_client_commands(app)

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="OPENLEAD_DATABASE_URL", help="SQLAlchemy URL"),
]
T = TypeVar("T")
BOOTSTRAP_ACCOUNT = "default"


def _settings(database_url: str | None) -> Settings:
    from openlead.config import Settings

    settings = Settings()
    if database_url:
        settings.database_url = database_url
    return settings


def _in_transaction(url: str, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    from openlead.db.engine import create_database

    async def run() -> T:
        database = create_database(url, pool_size=1)
        try:
            async with database.write() as conn:
                return await work(conn)
        finally:
            await database.dispose()

    with _told_plainly():
        return asyncio.run(run())


def _fail(message: str) -> NoReturn:
    typer.echo(message, err=True)
    raise typer.Exit(code=1)


def _database_problem(exc: Exception) -> str | None:
    """What to tell the operator when ``exc`` is the database's state rather than a bug."""
    from openlead.db.errors import describe, is_misconfigured, is_unreachable, momentary

    reason = momentary(exc)
    # migrate connects through Alembic, not db/engine.py: its failure to connect is raw.
    if reason == "unreachable" or is_unreachable(exc):
        return f"Cannot reach the database: {describe(exc)}"
    if is_misconfigured(exc):
        return f"The database refused the connection: {describe(exc)}"
    if reason == "busy":
        return f"The database is busy (another process holds its lock): {describe(exc)}"
    return None


@contextmanager
def _told_plainly() -> Iterator[None]:
    """What an operator can act on (a duplicate name, a short bootstrap key, a database out
    of reach) ends the command with one line on stderr and exit code 1, not a traceback."""
    from openlead.accounts.service import AccountError

    try:
        yield
    except AccountError as exc:
        _fail(str(exc))
    except Exception as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        _fail(problem)


def _run_fast(main: Awaitable[None]) -> None:
    """Run on uvloop, as ``openlead serve`` does through uvicorn, where it is installed."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)  # type: ignore[arg-type]
    else:
        uvloop.run(main)  # type: ignore[arg-type]


def _settle_the_heap() -> None:
    """What exists at start-up (modules, the app, its schemas) lives as long as the process:
    frozen, the garbage collector stops walking it on every full collection. A 400-lead import
    or a dispatcher's batch holds thousands of new objects at once, so collections also run
    less often (docs/performance.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Apply the database migrations."""
    from openlead.db.migrate import upgrade

    with _told_plainly():
        upgrade(_settings(database_url).database_url)
    typer.echo("Database is up to date.", err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(envvar="OPENLEAD_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="OPENLEAD_PORT")] = 8000,
    database_url: DatabaseUrl = None,
    sender: Annotated[
        bool,
        typer.Option(
            "--sender/--no-sender",
            envvar="OPENLEAD_SENDER",
            help="Run the dispatcher in this process (on by default).",
        ),
    ] = True,
) -> None:
    """Migrate the database, create the first account if there is none, and serve the API."""
    import uvicorn

    from openlead.accounts import service as accounts
    from openlead.app import create_app
    from openlead.db.migrate import upgrade

    settings = _settings(database_url)
    settings.sender = sender
    # Links in emails lead here unless OPENLEAD_PUBLIC_URL says otherwise.
    settings.host, settings.port = host, port
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    with _told_plainly():
        upgrade(settings.database_url)
    bootstrap_key = os.environ.get("OPENLEAD_BOOTSTRAP_API_KEY") or None
    key = _in_transaction(
        settings.database_url,
        lambda conn: accounts.bootstrap(conn, BOOTSTRAP_ACCOUNT, bootstrap_key),
    )
    if key is not None and bootstrap_key is not None:
        # The operator chose the key; repeating it would only put it into a log.
        typer.echo(f"Created account '{BOOTSTRAP_ACCOUNT}' with OPENLEAD_BOOTSTRAP_API_KEY.")
    elif key is not None:
        typer.echo(f"Created account '{BOOTSTRAP_ACCOUNT}'. Its API key (shown once):")
        typer.echo(f"  {key}")
    typer.echo(f"openlead listening on http://{host}:{port}/api/v1", err=True)
    api = create_app(settings)
    _settle_the_heap()
    uvicorn.run(
        api,
        host=host,
        port=port,
        access_log=False,
        log_level=settings.log_level,
    )


@app.command()
def worker(database_url: DatabaseUrl = None) -> None:
    """Run the dispatcher on its own: send due emails until stopped (SIGTERM or Ctrl-C).

    On PostgreSQL any number of workers (and servers) send at once; on SQLite only one
    process sends, and a worker waits while another holds the database's sender lock. The
    database must be migrated already (``openlead migrate`` or ``openlead serve``).
    """
    import signal

    from openlead.db.engine import create_database
    from openlead.sending.runner import run_dispatcher
    from openlead.vault import Vault, load_master_secret

    settings = _settings(database_url)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        database = create_database(
            settings.database_url, lock_timeout_seconds=settings.lock_timeout_seconds
        )
        vault = Vault(load_master_secret(settings.secret_key, settings.secret_dir))
        try:
            await run_dispatcher(database, vault, settings, stopping)
        finally:
            await database.dispose()

    typer.echo("openlead worker sending; stop it with Ctrl-C.", err=True)
    _settle_the_heap()
    _run_fast(run())


@accounts_app.command("create")
def accounts_create(name: str, database_url: DatabaseUrl = None) -> None:
    """Create an account and print its first API key."""
    from openlead.accounts import service as accounts

    async def work(conn: AsyncConnection) -> str:
        account_id = await accounts.create_account(conn, name)
        return await accounts.create_key(conn, account_id)

    key = _in_transaction(_settings(database_url).database_url, work)
    typer.echo(key)


@keys_app.command("create")
def keys_create(
    account: Annotated[str, typer.Option("--account", help="Account name")],
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key; the key alone is printed on stdout."""
    from openlead.accounts import service as accounts

    async def work(conn: AsyncConnection) -> str:
        return await accounts.create_key(conn, await accounts.account_id_by_name(conn, account))

    key = _in_transaction(_settings(database_url).database_url, work)
    typer.echo(key)


@keys_app.command("list")
def keys_list(
    account: Annotated[str | None, typer.Option("--account", help="Account name")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List API keys (never the keys themselves: only their ids and state)."""
    from openlead.accounts import service as accounts
    from openlead.accounts.repository import list_keys
    from openlead.clock import iso

    async def work(conn: AsyncConnection):  # type: ignore[no-untyped-def]
        account_id = await accounts.account_id_by_name(conn, account) if account else None
        return await list_keys(conn, account_id)

    rows = _in_transaction(_settings(database_url).database_url, work)
    typer.echo("id\taccount\tcreated_at\trevoked_at")
    for row in rows:
        typer.echo(
            f"{row.id}\t{row.account_name}\t{iso(row.created_at)}\t{iso(row.revoked_at) or '-'}"
        )


@keys_app.command("revoke")
def keys_revoke(key_id: int, database_url: DatabaseUrl = None) -> None:
    """Revoke an API key by its id (see `openlead keys list`)."""
    from openlead.accounts import service as accounts

    revoked = _in_transaction(
        _settings(database_url).database_url, lambda conn: accounts.revoke_key(conn, key_id)
    )
    if not revoked:
        _fail(f"No active key with id {key_id}.")
    typer.echo(f"Key {key_id} revoked.", err=True)


if __name__ == "__main__":
    app()
