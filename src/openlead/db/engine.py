"""Engines and the unit of work.

SQLite allows one writer at a time. Rather than letting concurrent write transactions
collide on the lock upgrade (which fails at once with SQLITE_BUSY, whatever the busy
timeout), writes go through their own engine with a single connection and start with
``BEGIN IMMEDIATE``; reads use a separate pool and see a consistent WAL snapshot.
PostgreSQL uses one engine for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from openlead.db.errors import DatabaseUnavailable, describe, is_unreachable

# How long a statement waits for another transaction's lock by default: on SQLite another
# process writing (a worker, a CLI import), on PostgreSQL a row or advisory lock. Past it the
# request fails, and answers 503 database_busy (db/errors.py).
DEFAULT_LOCK_TIMEOUT_SECONDS = 30.0


def sqlite_pragmas(lock_timeout_seconds: float) -> tuple[str, ...]:
    """Every connection's, reading or writing."""
    return (
        "journal_mode=WAL",
        "foreign_keys=ON",
        f"busy_timeout={round(lock_timeout_seconds * 1000)}",
        "synchronous=NORMAL",
    )


# The one writing connection. Its defaults (a 2 MiB page cache, a checkpoint every 1000 WAL
# pages) made a 400-lead import mostly I/O: the random-order address indexes outgrow the
# cache within a few thousand leads, and each commit's ~800 dirty pages set off a checkpoint
# (copy back and fsync) almost every time. 64 MiB of cache and a checkpoint per ~40 MiB of
# WAL (a dozen imports, whose pages overlap) cut the database's own time per import by more
# than half (docs/performance.md). Readers keep the default: their cache is emptied whenever
# another connection writes.
SQLITE_WRITER_PRAGMAS = ("cache_size=-65536", "wal_autocheckpoint=10000")


def _prepare_sqlite(engine: AsyncEngine, begin: str, pragmas: tuple[str, ...]) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control away from the driver so BEGIN is ours to issue.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        # Straight to aiosqlite: one hand-off to its thread, where a statement through
        # SQLAlchemy's cursor is three (every request and every group of the sender begins).
        connection.connection.dbapi_connection.run_async(lambda driver: driver.execute(begin))


def _replace_closed_connections(engine: AsyncEngine) -> None:
    """A pooled PostgreSQL connection that the server closed while it sat idle (a restart, a
    failover, an administrator, an idle timeout on the way) is replaced on checkout, so that
    it does not fail the request that takes it next. Its driver already knows it is closed:
    no round trip, unlike SQLAlchemy's pre-ping, which would cost one per transaction."""

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(_dbapi_connection, _record, proxy) -> None:  # type: ignore[no-untyped-def]
        if proxy.driver_connection.is_closed():
            raise DisconnectionError("the server closed this pooled connection")


def ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


async def _connect(engine: AsyncEngine) -> AsyncConnection:
    """A connection from the pool; one that could not be made is raised as
    DatabaseUnavailable, since nothing began (db/errors.py)."""
    try:
        return await engine.connect()
    except Exception as exc:
        if is_unreachable(exc):
            raise DatabaseUnavailable(describe(exc)) from exc
        raise


@asynccontextmanager
async def _transaction(engine: AsyncEngine, **options: Any) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``, with a connection that could not be made told apart (``_connect``).
    ``options`` are the connection's execution options for this transaction (reset when it
    goes back to the pool)."""
    conn = await _connect(engine)
    try:
        if options:
            await conn.execution_options(**options)
        async with conn.begin():
            yield conn
    finally:
        await conn.close()


@dataclass
class Database:
    """The engines of one database, and the transactions the app runs on them."""

    url: str
    reader: AsyncEngine
    writer: AsyncEngine

    @property
    def is_sqlite(self) -> bool:
        return self.reader.dialect.name == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with _transaction(self.writer) as conn:
            yield conn

    @asynccontextmanager
    async def read(self, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """``snapshot``: every statement sees the database as the first one did. SQLite's
        reads always do; PostgreSQL's default (READ COMMITTED) takes a snapshot a statement,
        so this asks for REPEATABLE READ READ ONLY. Only reads of several statements that must
        agree (an export in batches) need it."""
        options: dict[str, Any] = {}
        if snapshot and not self.is_sqlite:
            options = {"isolation_level": "REPEATABLE READ", "postgresql_readonly": True}
        async with _transaction(self.reader, **options) as conn:
            yield conn

    async def dispose(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()


class HeldWriter:
    """Write transactions one after another on one connection kept for them, begun and
    committed by asyncpg itself on PostgreSQL; on SQLite, ``Database.write``.

    For the sender's groups of writes, several hundred a second: SQLAlchemy's transaction (its
    BEGIN deferred to the first statement, which then goes through its cursor, its COMMIT, and
    the connection's trip to and from the pool) cost four times the client CPU of asyncpg's own
    on a kept connection (0.35 against 0.08 ms, docs/performance.md). Statements that go
    through SQLAlchemy all the same run in a savepoint of that transaction, released before it
    commits. A transaction that fails gives its connection up; the next takes a new one."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._conn: AsyncConnection | None = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        if self._database.is_sqlite:
            async with self._database.write() as conn:
                yield conn
            return
        conn = await self._connection()
        try:
            raw = await conn.get_raw_connection()
            async with raw.driver_connection.transaction():
                yield conn
                if conn.in_transaction():
                    await conn.commit()
        except BaseException:
            await self._give_up(conn)
            raise

    async def _connection(self) -> AsyncConnection:
        """The kept connection; a new one when the server has closed it meanwhile (a restart,
        an idle timeout), as the pool does on checkout (``_replace_closed_connections``)."""
        conn = self._conn
        if conn is not None:
            raw = await conn.get_raw_connection()
            if not raw.driver_connection.is_closed():
                return conn
            await self._give_up(conn)
        self._conn = await _connect(self._database.writer)
        return self._conn

    async def _give_up(self, conn: AsyncConnection) -> None:
        self._conn = None
        with suppress(Exception):
            # SQLAlchemy's savepoint, if one was open, goes with the connection.
            await conn.invalidate()
        with suppress(Exception):
            await conn.close()

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


def create_database(
    url: str, pool_size: int = 10, lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS
) -> Database:
    if url.startswith("sqlite"):
        ensure_sqlite_directory(url)
        pragmas = sqlite_pragmas(lock_timeout_seconds)
        writer = create_async_engine(url, pool_size=1, max_overflow=0, pool_timeout=120)
        _prepare_sqlite(writer, "BEGIN IMMEDIATE", pragmas + SQLITE_WRITER_PRAGMAS)
        reader = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        _prepare_sqlite(reader, "BEGIN", pragmas)
        return Database(url=url, reader=reader, writer=writer)
    lock_timeout = {"lock_timeout": f"{round(lock_timeout_seconds * 1000)}ms"}
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=60,
        connect_args={"server_settings": lock_timeout},
    )
    _replace_closed_connections(engine)
    return Database(url=url, reader=engine, writer=engine)
