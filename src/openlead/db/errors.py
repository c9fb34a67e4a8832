"""Failures of the moment rather than of the request.

*Busy*: another transaction held a lock for longer than this process waits for it (SQLite's
busy timeout, PostgreSQL's lock_timeout), two transactions deadlocked, or no pooled connection
came free in time; the transaction rolled back. *Unreachable*: no connection to the database
could be made, so no transaction began. Either way nothing was stored, and the same request
(or the dispatcher's same write) may well succeed when it is made again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Literal

from sqlalchemy import exc as sa_exc

# lock_not_available (lock_timeout ran out), deadlock_detected, serialization_failure.
_BUSY_SQLSTATES = ("55P03", "40P01", "40001")
# The connection_exception class, cannot_connect_now (starting up, shutting down),
# too_many_connections: what a PostgreSQL server answers a connection it will not take.
_UNREACHABLE_SQLSTATES = ("08", "57P03", "53300")
# invalid_authorization_specification (a wrong user or password), invalid_catalog_name (no
# such database): the database URL's mistakes, which waiting will not mend.
_MISCONFIGURED_SQLSTATES = ("28", "3D000")
# SQLITE_BUSY and SQLITE_LOCKED as the sqlite3 module words them.
_SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")


Momentary = Literal["busy", "unreachable"]


class DatabaseUnavailable(Exception):
    """No connection to the database could be made (db/engine.py raises it on connecting
    only, so no transaction began)."""


def is_unreachable(exc: BaseException) -> bool:
    """Whether connecting failed because the database cannot be reached or will not take
    the connection now: refused, timed out, starting up, shutting down, full."""
    return any(isinstance(cause, OSError) for cause in _chain(exc)) or _has_sqlstate(
        exc, _UNREACHABLE_SQLSTATES
    )


def is_misconfigured(exc: BaseException) -> bool:
    """Whether PostgreSQL refused the connection for what the URL says: user, password or
    database name."""
    return _has_sqlstate(exc, _MISCONFIGURED_SQLSTATES)


def momentary(exc: BaseException) -> Momentary | None:
    """What made ``exc`` a failure of the moment, or None when it is not one."""
    if any(isinstance(cause, DatabaseUnavailable) for cause in _chain(exc)):
        return "unreachable"
    return "busy" if is_busy(exc) else None


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


def _has_sqlstate(exc: BaseException, codes: tuple[str, ...]) -> bool:
    """Whether PostgreSQL's code for ``exc`` (asyncpg's, raw or wrapped) is one of ``codes``
    or in one of their classes (a two-character prefix)."""
    return any(
        isinstance(sqlstate := getattr(cause, "sqlstate", None), str) and sqlstate.startswith(codes)
        for cause in _chain(exc)
    )


def is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is the database being busy, not the request being wrong."""
    if isinstance(exc, sa_exc.TimeoutError):  # the pool had no connection to give in time
        return True
    return _has_sqlstate(exc, _BUSY_SQLSTATES) or any(
        isinstance(cause, sqlite3.OperationalError) and str(cause).startswith(_SQLITE_BUSY_MESSAGES)
        for cause in _chain(exc)
    )


def describe(exc: BaseException) -> str:
    """The driver's own words, one line: SQLAlchemy's message adds the statement and its
    parameters, which hold leads' addresses and do not belong in a log line."""
    reason = getattr(exc, "orig", None) or exc
    lines = str(reason).strip().splitlines()
    return lines[0] if lines else type(reason).__name__
