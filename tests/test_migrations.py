"""The migrations build exactly the schema ``db/tables.py`` declares, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from openlead.db.migrate import upgrade
from openlead.db.tables import metadata
from tests.support import create_pg_database, drop_pg_database, postgres_reachable


@pytest.fixture(params=["sqlite", "postgres"])
def migrated(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh database, migrated; its synchronous URL."""
    if request.param == "sqlite":
        path = tmp_path / "openlead.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        yield f"sqlite:///{path}"
        return
    problem = postgres_reachable()
    if problem:
        pytest.skip(f"PostgreSQL unreachable: {problem}")
    name, url = create_pg_database()
    try:
        upgrade(url)
        yield url.replace("postgresql+asyncpg://", "postgresql+psycopg://")
    finally:
        drop_pg_database(name)


def _ignored(difference: tuple) -> bool:
    # Server defaults are compared by their SQL text, which each database spells its own way.
    return difference[0] == "modify_default"


def test_the_migrated_schema_is_the_declared_one(migrated: str) -> None:
    engine = create_engine(migrated)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            differences = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    flat = [d for group in differences for d in (group if isinstance(group, list) else [group])]
    assert [d for d in flat if not _ignored(d)] == []
