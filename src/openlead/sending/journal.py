"""The dispatcher's writes, committed in groups.

Every message needs one write that must be durable before its content goes to the SMTP server
(the "sending" mark), and a few that may follow later (the outcome, the lead's next step, the
events). Each mailbox's session waits for its own mark; many sessions run at once, so their
marks and everybody's outcomes share one transaction: one commit serves them all.

An operation is a coroutine function of the transaction's connection. ``run`` waits for the
commit that holds it and returns its result; ``post`` does not wait (``drain`` does, for all of
them). The writes every message makes (its mark, its outcome) go in as payloads of a *batch*
(``run_in``, ``post_in``): a group writes all of one batch's payloads with a few statements,
however many there are, rather than a few statements each. Should a group fail, each of its
entries is tried again in a transaction of its own, so one bad write cannot take the others
down with it; a group the database was too busy for (a lock held elsewhere past the lock
timeout) or could not be reached for is tried again whole until it commits.

Writes to the rows every worker contends for (a mailbox's and a campaign's counters) are kept
back to the end of each transaction and made in one order, campaigns then mailboxes, by id:
the order the claim takes its locks in, so two transactions never wait for each other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.engine import Database, HeldWriter
from openlead.db.errors import describe, momentary
from openlead.sending import repository

log = logging.getLogger("openlead.sending")
# A group the database was too busy for, or could not be reached for, is tried again after
# this long.
RETRY_SECONDS = 1.0
# On SQLite a group waits this long for more writes, unless it has this many already.
LINGER_SECONDS = 0.002
GROUP_ENOUGH = 16
# On PostgreSQL the writes nobody waits for (outcomes, events) gather for this long, or until
# there are this many: a group's cost is mostly its round trips, whatever it holds.
LATER_LINGER_SECONDS = 0.02
LATER_ENOUGH = 64


@dataclass
class Returns:
    """Reservations given back in one transaction: (account, mailbox id, quarter hour) or
    (account, campaign id, day) → count."""

    mailboxes: dict[tuple[int, int, int], int] = field(default_factory=lambda: defaultdict(int))
    new_leads: dict[tuple[int, int, str], int] = field(default_factory=lambda: defaultdict(int))

    def mailbox(self, account_id: int, mailbox_id: int, quarter: int, count: int = 1) -> None:
        self.mailboxes[(account_id, mailbox_id, quarter)] += count

    def new_lead(self, account_id: int, campaign_id: int, day: str, count: int = 1) -> None:
        self.new_leads[(account_id, campaign_id, day)] += count

    async def apply(self, conn: AsyncConnection) -> None:
        for (account_id, campaign_id, day), count in sorted(self.new_leads.items()):
            await repository.return_new_leads(conn, account_id, campaign_id, day, count)
        for (account_id, mailbox_id, quarter), count in sorted(self.mailboxes.items()):
            await repository.return_to_mailbox(conn, account_id, mailbox_id, quarter, count)


Operation = Callable[[AsyncConnection, Returns], Awaitable[Any]]
# Many writes of one kind, done together: (connection, returns, their payloads) -> a result
# for each payload, in order.
Batch = Callable[[AsyncConnection, Returns, list[Any]], Awaitable[list[Any]]]


async def _each(conn: AsyncConnection, returns: Returns, operations: list[Any]) -> list[Any]:
    return [await operation(conn, returns) for operation in operations]


@dataclass
class _Entry:
    batch: Batch
    payload: Any
    done: asyncio.Future[Any]


class _Stream:
    """A queue of writes committed one group at a time. A group waits up to ``linger`` for
    company, unless ``enough`` writes are queued or somebody is waiting for them all."""

    def __init__(self, database: Database, linger: float, enough: int) -> None:
        self._writer = HeldWriter(database)
        self._linger = linger
        self._enough = enough
        self.queue: list[_Entry] = []
        self._wake = asyncio.Event()
        self._waiting: asyncio.Future[None] | None = None
        self.task: asyncio.Task[None] | None = None

    def add(self, entry: _Entry) -> None:
        self.queue.append(entry)
        self._wake.set()
        if len(self.queue) >= self._enough:
            self.hurry()
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._flush_forever())

    async def close(self) -> None:
        await self._writer.close()

    def hurry(self) -> None:
        """The group being gathered goes now."""
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(None)

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._linger and len(self.queue) < self._enough:
                # A transaction costs about as much whatever it holds; a moment's wait lets
                # the other sessions' writes join it. Each session has its next mark on its way
                # while its current message goes, so it seldom waits for this.
                self._waiting = loop.create_future()
                timer = loop.call_later(self._linger, self.hurry)
                await self._waiting
                timer.cancel()
            group, self.queue = self.queue, []
            if group:
                await self._commit(group)

    async def _commit(self, group: list[_Entry]) -> None:
        try:
            results = await self._waiting_out(group)
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0], error=exc)
                return
            log.warning("a group of %d writes failed; trying each alone", len(group))
            for entry in group:
                await self._commit([entry])
            return
        for entry in group:
            _settle(entry, result=results[id(entry)])

    async def _waiting_out(self, group: list[_Entry]) -> dict[int, Any]:
        """The group's transaction, made again for as long as the database is busy (another
        transaction held a lock past the lock timeout) or cannot be reached. The failed one
        rolled back whole or never began, so trying again cannot write anything twice, and
        giving up would lose what it records (an outcome nobody waits for is only logged
        when it fails)."""
        while True:
            try:
                return await self._transaction(group)
            except Exception as exc:
                reason = momentary(exc)
                if reason is None:
                    raise
                log.warning(
                    "the database is %s (%s); %d writes wait %.0f s to be tried again",
                    reason,
                    describe(exc),
                    len(group),
                    RETRY_SECONDS,
                )
            await asyncio.sleep(RETRY_SECONDS)

    async def _transaction(self, group: list[_Entry]) -> dict[int, Any]:
        """One transaction: each batch once with all its entries, in the order the batches
        first came, then the reservations given back."""
        by_batch: dict[Batch, list[_Entry]] = {}
        for entry in group:
            by_batch.setdefault(entry.batch, []).append(entry)
        returns = Returns()
        results: dict[int, Any] = {}
        async with self._writer.transaction() as conn:
            for batch, entries in by_batch.items():
                answers = await batch(conn, returns, [e.payload for e in entries])
                results.update((id(e), answer) for e, answer in zip(entries, answers, strict=True))
            await returns.apply(conn)
        return results


class Journal:
    """Group commits. On SQLite one group at a time, each waiting a moment for company. On
    PostgreSQL the writes a session waits for (``urgent``: its next mark) have a stream of
    their own, whose groups do not wait, so that they never queue behind a group of outcomes;
    the outcomes' groups gather for longer instead (docs/performance.md).

    Nothing committed in one stream depends on the other's order: whatever follows a mark
    (its outcome, a bounce, a mailbox failing) is only submitted once the mark has committed.
    """

    def __init__(self, database: Database) -> None:
        self._pending: set[asyncio.Future[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        if database.is_sqlite:
            # One writer: a second stream would only wait for the first.
            self._later = self._urgent = _Stream(database, LINGER_SECONDS, GROUP_ENOUGH)
        else:
            self._urgent = _Stream(database, 0.0, 1)
            self._later = _Stream(database, LATER_LINGER_SECONDS, LATER_ENOUGH)

    def _submit(self, batch: Batch, payload: Any, urgent: bool = False) -> asyncio.Future[Any]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        # Asking for the running loop costs a system call (CPython checks the process id).
        done: asyncio.Future[Any] = self._loop.create_future()
        self._pending.add(done)
        done.add_done_callback(self._pending.discard)
        (self._urgent if urgent else self._later).add(_Entry(batch, payload, done))
        return done

    async def run(self, operation: Operation) -> Any:
        """Do ``operation`` in the next group; its result once that group has committed."""
        return await self._submit(_each, operation)

    def post(self, operation: Operation) -> None:
        """Do ``operation`` in the next group, without waiting for it."""
        self._submit(_each, operation).add_done_callback(_log_failure)

    async def run_in(self, batch: Batch, payload: Any) -> Any:
        """Add ``payload`` to the next group's ``batch``; its result once that has committed."""
        return await self._submit(batch, payload)

    def submit_in(self, batch: Batch, payload: Any, urgent: bool = False) -> asyncio.Future[Any]:
        """``run_in`` without waiting: the future of its result."""
        return self._submit(batch, payload, urgent)

    def post_in(self, batch: Batch, payload: Any) -> None:
        self._submit(batch, payload).add_done_callback(_log_failure)

    async def drain(self) -> None:
        """Wait until everything submitted so far has committed (or failed)."""
        while self._pending:
            self._urgent.hurry()
            self._later.hurry()
            await asyncio.wait(set(self._pending))

    async def close(self) -> None:
        await self.drain()
        tasks = {stream.task for stream in (self._later, self._urgent) if stream.task is not None}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in {self._later, self._urgent}:
            await stream.close()


def _settle(entry: _Entry, result: Any = None, error: BaseException | None = None) -> None:
    if entry.done.done():
        return
    if error is not None:
        entry.done.set_exception(error)
    else:
        entry.done.set_result(result)


def _log_failure(done: asyncio.Future[Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.error("a dispatcher write failed", exc_info=done.exception())
