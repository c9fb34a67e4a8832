"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def is_postgres(conn: AsyncConnection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_for(conn: AsyncConnection, table: Table) -> Any:
    """An INSERT that supports ON CONFLICT on the connection's database."""
    if is_postgres(conn):
        return postgresql.insert(table)
    return sqlite.insert(table)
