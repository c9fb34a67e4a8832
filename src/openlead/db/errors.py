"""Failures of the moment rather than of the request.

Another transaction held a lock for longer than this process waits for it (SQLite's busy
timeout, PostgreSQL's lock_timeout), the two transactions deadlocked, or no pooled
connection came free in time. The transaction rolled back, so the request stored nothing,
and the same request may well succeed when it is sent again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

# lock_not_available (lock_timeout ran out), deadlock_detected, serialization_failure.
_BUSY_SQLSTATES = frozenset({"55P03", "40P01", "40001"})
# SQLITE_BUSY and SQLITE_LOCKED as the sqlite3 module words them.
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wrapped (``orig``) and what it was raised from."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        pending.extend((getattr(current, "orig", None), current.__cause__, current.__context__))


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is the database being busy, not the request being wrong."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to give in time
        return True
    for cause in _chain(exc):
        if getattr(cause, "sqlstate", None) in _BUSY_SQLSTATES:
            return True
        if isinstance(cause, sqlite3.OperationalError) and str(cause).startswith(
            _SQLITE_BUSY_MESSAGES
        ):
            return True
    return False


def describe(exc: BaseException) -> str:
    """The driver's own words, one line: SQLAlchemy's message adds the statement and its
    parameters, which hold leads' addresses and do not belong in a log line."""
    reason = getattr(exc, "orig", None) or exc
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__
