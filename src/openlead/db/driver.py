"""Statements handed to the database driver itself, inside the connection's transaction.

For the sender's writes, made for every message. Through SQLAlchemy, each statement on
aiosqlite is four hand-offs between the event loop and the driver's thread (a cursor, the
statement, its rows, closing the cursor), each a queue, a thread wake-up and a wake-up of the
loop; on the driver it is one (docs/performance.md). The SQL is the same text with the same
parameters, so the statement goes to ``exec_driver_sql`` unchanged where there is no gain:
PostgreSQL's driver makes one round trip either way, and SQLAlchemy begins its transaction
there at the first statement, so it must see them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def _sqlite_driver(conn: AsyncConnection) -> Any | None:
    """The aiosqlite connection under ``conn``; its transaction is already open (``BEGIN``
    is issued when SQLAlchemy's begins: db/engine.py)."""
    if conn.dialect.name != "sqlite":
        return None
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def fetch_rows(conn: AsyncConnection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """The rows of one statement, as tuples (or SQLAlchemy rows), in one hand-off."""
    driver = await _sqlite_driver(conn)
    if driver is None:
        return list((await conn.exec_driver_sql(sql, tuple(parameters))).all())
    return list(await driver.execute_fetchall(sql, parameters))


async def execute_many(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement for each of ``rows``, in one hand-off."""
    driver = await _sqlite_driver(conn)
    if driver is None:
        await conn.exec_driver_sql(sql, list(rows))
        return
    await driver.executemany(sql, rows)
