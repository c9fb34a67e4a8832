"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_for(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's database."""
    if is_postgres(conn):
        return postgresql.insert(table)
    return sqlite.insert(table)


_sqlite = sqlite.dialect()
_sqlite_timestamp = DateTime(timezone=True).dialect_impl(_sqlite).bind_processor(_sqlite)


def timestamp_text(conn: AsyncConnection, moment: datetime | None) -> str | None:
    """A timestamp as the column stores it, for a value carried inside a JSON parameter:
    SQLAlchemy's text on SQLite (so that it compares with the stored ones), ISO-8601 on
    PostgreSQL (cast to timestamptz by the statement)."""
    if moment is None:
        return None
    if is_postgres(conn):
        return moment.isoformat()
    return _sqlite_timestamp(moment)


def timestamp_value(conn: AsyncConnection, moment: datetime | None) -> Any:
    """A timestamp as a driver parameter: the datetime on PostgreSQL, SQLAlchemy's stored text
    on SQLite (for statements run on the driver, past SQLAlchemy's bind processing)."""
    if moment is None or is_postgres(conn):
        return moment
    return _sqlite_timestamp(moment)
