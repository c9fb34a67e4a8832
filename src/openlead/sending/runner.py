"""Running the dispatcher: inside ``openlead serve`` or as ``openlead worker``.

On PostgreSQL any number of dispatchers run at once (their claims skip each other's rows). On
SQLite one runs: a lock file beside the database says which; another process waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from openlead.config import Settings
from openlead.db.engine import Database
from openlead.replies.reader import ReplyReader
from openlead.sending.dispatcher import Dispatcher
from openlead.vault import Vault

log = logging.getLogger("openlead.sending")
LOCK_POLL_SECONDS = 2.0


def _lock_path(settings: Settings) -> Path | None:
    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.sender-lock")


def _try_lock(path: Path) -> IO[str] | None:
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


@contextlib.asynccontextmanager
async def sender_lock(settings: Settings, stopping: asyncio.Event) -> AsyncIterator[bool]:
    """Hold the SQLite database's one dispatcher slot, waiting for it; False if ``stopping``
    came first. On PostgreSQL there is nothing to hold."""
    path = _lock_path(settings)
    if path is None:
        yield True
        return
    handle = _try_lock(path)
    if handle is None:
        log.info("another process sends for %s; waiting for it to stop", path.name)
    while handle is None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), LOCK_POLL_SECONDS)
        if stopping.is_set():
            yield False
            return
        handle = _try_lock(path)
    try:
        yield True
    finally:
        handle.close()


async def run_dispatcher(
    database: Database, vault: Vault, settings: Settings, stopping: asyncio.Event
) -> None:
    async with sender_lock(settings, stopping) as held:
        if not held:
            return
        dispatcher = Dispatcher(database, vault, settings).run(stopping)
        if not settings.reply_check_seconds:
            await dispatcher
            return
        # The replies are read by whichever process sends: on SQLite the one holding the lock.
        await asyncio.gather(dispatcher, ReplyReader(database, vault, settings).run(stopping))
