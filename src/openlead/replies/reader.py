"""The loop that reads every mailbox's inbox for replies, beside the dispatcher (inside
``openlead serve`` or ``openlead worker``).

Each pass claims the inboxes not read for ``reply_check_seconds`` (the claim is a conditional
update of ``imap_checked_at``, so that two workers on PostgreSQL never read one inbox at once),
reads what arrived after each one's cursor, and records it in the transaction that moves the
cursor: a reply is recorded once, and a read that fails records nothing and is tried again at
the next pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.engine import Row

from openlead.clock import utcnow
from openlead.config import Settings
from openlead.db.engine import Database
from openlead.replies import imap, repository, service
from openlead.replies.answers import Answer, Report, read_answer, read_report
from openlead.sending.smtp import MailboxConfig
from openlead.vault import Vault, VaultError

log = logging.getLogger("openlead.replies")
T = TypeVar("T")
# Inboxes claimed per pass, and messages read per transaction.
INBOXES_PER_PASS = 20
MESSAGES_PER_READ = 200


def inbox_config(row: Row, vault: Vault, timeout: float) -> MailboxConfig:
    """How to reach and log in to a mailbox's inbox: as for SMTP unless it says otherwise.
    Without a security setting, port 993 (or none) is TLS from the start, any other STARTTLS.
    ``VaultError`` when the password cannot be decrypted with this installation's key."""
    security = row.imap_security or ("SSL" if row.imap_port in (None, 993) else "STARTTLS")
    port = row.imap_port or (993 if security == "SSL" else 143)
    stored = row.imap_password_encrypted
    if stored is None:
        stored = row.password_encrypted
    return MailboxConfig(
        host=row.imap_host,
        port=port,
        security=security,
        user_name=row.imap_user_name or row.user_name,
        password=vault.decrypt(stored) if stored else "",
        timeout=timeout,
    )


async def _in_own_thread(function: Callable[..., T], *args: Any) -> T:
    """A blocking call in a daemon thread of its own. A process that stops does not wait for
    it, as it waits for the default pool's threads: an inbox whose server does not answer
    would otherwise hold the stop for the whole timeout."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if outcome.done():  # given up on
            return
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(result)

    def work() -> None:
        result, error = None, None
        try:
            result = function(*args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=work, name="openlead-inbox-read", daemon=True).start()
    return await outcome


class _Overtaken(Exception):
    """Another reader moved the inbox's cursor while this one read."""


class ReplyReader:
    def __init__(
        self,
        database: Database,
        vault: Vault,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.vault = vault
        self.settings = settings
        self.clock = clock
        self.interval = timedelta(seconds=settings.reply_check_seconds)

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self._pass_unless(stopping)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=self.settings.reply_check_seconds)

    async def _pass_unless(self, stopping: asyncio.Event) -> None:
        """One pass, given up when the process stops: a read still waiting for its server is
        left to its thread, its cursor unmoved, and what it would have found is read later."""
        passing = asyncio.create_task(self._pass())
        halting = asyncio.create_task(stopping.wait())
        try:
            await asyncio.wait({passing, halting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (passing, halting):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await passing

    async def _pass(self) -> None:
        try:
            await self.tick()
        except Exception:
            log.exception("reading the inboxes failed; trying again at the next pass")

    async def tick(self) -> int:
        """Read every inbox that is due; the number of replies and bounces recorded."""
        now = self.clock()
        async with self.database.write() as conn:
            due = await repository.inboxes_due(conn, now - self.interval, INBOXES_PER_PASS)
            claimed = [row for row in due if await repository.claim_inbox(conn, row, now)]
        # Side by side: an inbox whose server does not answer holds up only itself (each read
        # is a thread of its own, at most INBOXES_PER_PASS at once).
        results = await asyncio.gather(
            *(self._read(row) for row in claimed), return_exceptions=True
        )
        recorded = 0
        for row, result in zip(claimed, results, strict=True):
            if isinstance(result, BaseException):
                # Its cursor did not move: what it found is read again at its next turn.
                log.error("reading the inbox of mailbox %s failed", row.id, exc_info=result)
            else:
                recorded += result
        return recorded

    async def _failed(self, row: Row, error: str) -> None:
        log.warning(
            "the inbox of mailbox %s (account %s) could not be read: %s",
            row.id,
            row.account_id,
            error,
        )
        async with self.database.write() as conn:
            await repository.set_inbox_error(conn, row, error)

    async def _read(self, row: Row) -> int:
        try:
            config = inbox_config(row, self.vault, self.settings.smtp_timeout_seconds)
        except VaultError as exc:
            await self._failed(row, f"password: {exc}")
            return 0
        cursor = (row.imap_uidvalidity, row.imap_last_uid)
        since = (row.created_at - timedelta(days=1)).date()
        recorded = 0
        while True:
            try:
                reading = await _in_own_thread(
                    imap.read_new, config, *cursor, since, MESSAGES_PER_READ
                )
            except imap.InboxUnavailable as exc:
                await self._failed(row, str(exc))
                return recorded
            try:
                recorded += await self._record(row, cursor, reading)
            except _Overtaken:
                return recorded
            cursor = (reading.uidvalidity, reading.last_uid)
            if not reading.more:
                return recorded

    async def _record(
        self, row: Row, cursor: tuple[int | None, int | None], reading: imap.Reading
    ) -> int:
        now = self.clock()
        recorded = 0
        async with self.database.write() as conn:
            moved = await repository.move_cursor(
                conn, row, cursor, (reading.uidvalidity, reading.last_uid)
            )
            if not moved:
                raise _Overtaken
            for arrival in reading.arrivals:
                read = _read_arrival(row, arrival)
                if read is None:
                    continue
                answer, report = read
                if report is not None:
                    recorded += await service.record_report(conn, row, report, now)
                elif not answer.report and await service.record(conn, row, answer, now):
                    recorded += 1
        return recorded


def _read_arrival(row: Row, arrival: imap.Arrival) -> tuple[Answer, Report | None] | None:
    """What a message is, and the report it holds; None, logged, for one that cannot be read.
    Skipping it is the lesser harm: the cursor moves past it, where a message that failed
    every read would stop the inbox's reading for good."""
    try:
        answer = read_answer(arrival.headers, arrival.received_at)
        content = arrival.content if answer.report else None
        return answer, read_report(content) if content is not None else None
    except Exception:
        log.exception("mailbox %s: message UID %s cannot be read; skipped", row.id, arrival.uid)
        return None
