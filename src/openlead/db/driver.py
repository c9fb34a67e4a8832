"""Statements handed to the database driver itself, inside the connection's transaction.

For the sender's writes, made for every message. Through SQLAlchemy, each statement on
aiosqlite is four hand-offs between the event loop and the driver's thread (a cursor, the
statement, its rows, closing the cursor), each a queue, a thread wake-up and a wake-up of the
loop; on the driver it is one. On asyncpg the round trips are the same either way, but
SQLAlchemy's execution context and cursor emulation cost more Python than the statement
(docs/performance.md). The SQL is the same text with the same parameters either way.

SQLAlchemy begins a PostgreSQL transaction at the first statement it runs, so a statement
goes to asyncpg directly only once the connection is in one; SQLite's ``BEGIN`` is issued
when SQLAlchemy's transaction begins (db/engine.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def _driver(conn: AsyncConnection) -> tuple[str, Any] | None:
    """(dialect, the driver's connection under ``conn``) when it is inside the transaction."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    name = conn.dialect.name
    if name == "sqlite" or (name == "postgresql" and driver.is_in_transaction()):
        return name, driver
    return None


async def fetch_rows(conn: AsyncConnection, sql: str, parameters: Sequence[Any]) -> list[Any]:
    """The rows of one statement, as tuples (or rows of the driver)."""
    found = await _driver(conn)
    if found is None:
        return list((await conn.exec_driver_sql(sql, tuple(parameters))).all())
    name, driver = found
    if name == "sqlite":
        return list(await driver.execute_fetchall(sql, parameters))
    return list(await driver.fetch(sql, *parameters))


async def execute_many(conn: AsyncConnection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One statement for each of ``rows``."""
    found = await _driver(conn)
    if found is None:
        await conn.exec_driver_sql(sql, list(rows))
        return
    await found[1].executemany(sql, rows)
