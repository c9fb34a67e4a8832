"""Python work done while the database executes a statement.

With one client sending one request at a time, every millisecond the server spends in Python
between two statements is a millisecond the database waits, and the other way round. A
statement started here is on its way before the caller goes on; the caller then does work
that needs neither its answer nor the connection, and the connection is free again when the
block ends, however it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

T = TypeVar("T")


def runs_beside_python(dialect: str) -> bool:
    """Whether a statement on this kind of database (SQLAlchemy's dialect name) makes progress
    while Python holds the interpreter.

    PostgreSQL's does: it runs in the server. SQLite's runs in aiosqlite's thread, which takes
    the interpreter lock back between rows; a long call such as pydantic's validation keeps it
    for up to the switch interval (5 ms) each time, so beside one the statement stalls and
    ends later than it would alone (an import was 3% slower, servers side by side).
    """
    return dialect == "postgresql"


@asynccontextmanager
async def started(statement: Coroutine[Any, Any, T]) -> AsyncIterator[asyncio.Future[T]]:
    """Run ``statement`` (one round trip, or one hand-off to SQLite's thread) beside the block.

    The block must not use the connection; after it, ``.result()`` of the yielded future is
    the statement's result or raises its error.
    """
    task = asyncio.ensure_future(statement)
    # One turn of the loop runs the task to its first wait: the statement has been sent.
    await asyncio.sleep(0)
    try:
        yield task
    finally:
        cancelled = False
        # The transaction's end must not meet the statement still running on its connection,
        # not even when this request is being cancelled.
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                cancelled = True
        if not task.cancelled():
            task.exception()  # retrieved: the block's own error, if any, is the one raised
        if cancelled:
            raise asyncio.CancelledError
