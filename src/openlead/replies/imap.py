"""Reading a mailbox's inbox over IMAP: the headers of the messages that came since the last
read. Blocking (the standard library's ``imaplib``), so it runs in a thread; an inbox is read
once a minute, not once a message.

The inbox is opened read-only (``EXAMINE``) and headers are fetched with ``BODY.PEEK``: reading
for replies marks nothing as seen and moves nothing. Only a delivery report's content is
fetched, its first bytes.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime

from openlead.replies.answers import is_report
from openlead.sending.smtp import MailboxConfig

# What deciding about a message needs, and no more: a reply's body is never fetched.
HEADER_FIELDS = (
    "MESSAGE-ID IN-REPLY-TO REFERENCES FROM SUBJECT AUTO-SUBMITTED X-AUTOREPLY "
    "X-AUTORESPOND PRECEDENCE CONTENT-TYPE X-FAILED-RECIPIENTS"
)
# UIDs fetched in one command.
FETCH_CHUNK = 100
# How much of a delivery report is fetched: its explanation and the quoted headers come first.
REPORT_BYTES = 65536
_UID = re.compile(rb"\bUID (\d+)")
_INTERNALDATE = re.compile(rb'\bINTERNALDATE "([^"]+)"')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class InboxUnavailable(Exception):
    """The inbox could not be reached, or its server would not let us in."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message


@dataclass(frozen=True)
class Arrival:
    uid: int
    headers: bytes
    received_at: datetime | None  # the server's INTERNALDATE
    content: bytes | None = None  # fetched for delivery reports only (their first bytes)


@dataclass(frozen=True)
class Reading:
    """What one read found: the inbox's UIDVALIDITY, the messages after the cursor (oldest
    first, at most the limit), and whether more are waiting."""

    uidvalidity: int
    arrivals: list[Arrival]
    last_uid: int  # the highest UID looked at (the new cursor)
    more: bool


def _text(exc: BaseException) -> str:
    message = exc.args[0] if exc.args else type(exc).__name__
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return " ".join(str(message).split())[:500] or type(exc).__name__


def _connect(config: MailboxConfig) -> imaplib.IMAP4:
    try:
        if config.security == "SSL":
            context = ssl.create_default_context()
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=context, timeout=config.timeout
            )
        else:
            client = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise InboxUnavailable("connect", _text(exc)) from None
    if config.security == "STARTTLS":
        try:
            client.starttls(ssl.create_default_context())
        except (OSError, imaplib.IMAP4.error) as exc:
            _close(client)
            raise InboxUnavailable("tls", _text(exc)) from None
    try:
        client.login(config.user_name, config.password)
    except (OSError, imaplib.IMAP4.error) as exc:
        _close(client)
        raise InboxUnavailable("login", _text(exc)) from None
    return client


def _close(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (OSError, imaplib.IMAP4.error):
        client.shutdown()


def _received(found: re.Match[bytes] | None) -> datetime | None:
    if found is None:
        return None
    try:
        moment = datetime.strptime(found.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None
    return moment.astimezone(UTC)


def _literals(data: list) -> Iterator[tuple[int, bytes, bytes]]:
    """The FETCH answer's messages as (UID, prefix, literal): each is a (prefix, literal)
    pair, then a closing line."""
    for item in data:
        if isinstance(item, tuple) and len(item) >= 2:
            uid = _UID.search(item[0])
            if uid is not None:
                yield int(uid.group(1)), item[0], item[1]


def _arrivals(data: list) -> list[Arrival]:
    return [
        Arrival(uid, literal, _received(_INTERNALDATE.search(prefix)))
        for uid, prefix, literal in _literals(data)
    ]


def _fetch(client: imaplib.IMAP4, uids: list[int], query: str) -> list:
    answer: list = []
    for start in range(0, len(uids), FETCH_CHUNK):
        chunk = ",".join(map(str, uids[start : start + FETCH_CHUNK]))
        answer += _ok(client.uid("FETCH", chunk, query))
    return answer


def _with_reports(client: imaplib.IMAP4, arrivals: list[Arrival]) -> list[Arrival]:
    """The delivery reports among ``arrivals`` with their content."""
    reports = [a.uid for a in arrivals if is_report(a.headers)]
    if not reports:
        return arrivals
    query = f"(UID BODY.PEEK[]<0.{REPORT_BYTES}>)"
    contents = {uid: literal for uid, _, literal in _literals(_fetch(client, reports, query))}
    return [replace(a, content=contents.get(a.uid)) for a in arrivals]


def _ok(answer: tuple[str, list]) -> list:
    status, data = answer
    if status != "OK":
        raise imaplib.IMAP4.error(data[0] if data else status)
    return data


def imap_date(day: date) -> str:
    """A date as IMAP's SEARCH SINCE wants it (English month names, whatever the locale)."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def check_login(config: MailboxConfig) -> None:
    """Connect, encrypt and log in as a read would, and open the inbox; or
    ``InboxUnavailable``."""
    client = _connect(config)
    try:
        _ok(client.select("INBOX", readonly=True))
    except (OSError, imaplib.IMAP4.error) as exc:
        raise InboxUnavailable("read", _text(exc)) from None
    finally:
        _close(client)


def read_new(
    config: MailboxConfig, uidvalidity: int | None, last_uid: int | None, since: date, limit: int
) -> Reading:
    """The inbox's messages after ``last_uid``; when there is no cursor for this UIDVALIDITY,
    none are read and the cursor starts at the inbox's end, unless there was no cursor at all:
    then the messages received since ``since`` (the day the mailbox was added) are read."""
    client = _connect(config)
    try:
        try:
            _ok(client.select("INBOX", readonly=True))
            # The SELECT's untagged answer; response() names it, not "OK".
            current = int(client.response("UIDVALIDITY")[1][0])
            if uidvalidity is not None and uidvalidity != current:
                # The old UIDs mean nothing now: start after the newest message.
                uids = [int(u) for u in _ok(client.uid("SEARCH", None, "ALL"))[0].split()]
                return Reading(current, [], max(uids, default=0), False)
            first = last_uid is None
            criteria = f"SINCE {imap_date(since)}" if first else f"UID {last_uid + 1}:*"
            found = _ok(client.uid("SEARCH", None, criteria))[0].split()
            # "n:*" always names the newest message, even when its UID is below n.
            uids = sorted(u for u in map(int, found) if last_uid is None or u > last_uid)
            wanted, more = uids[:limit], len(uids) > limit
            query = f"(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS ({HEADER_FIELDS})])"
            arrivals = _with_reports(client, _arrivals(_fetch(client, wanted, query)))
            top = wanted[-1] if wanted else (last_uid or 0)
            return Reading(current, sorted(arrivals, key=lambda a: a.uid), top, more)
        except (OSError, imaplib.IMAP4.error, ValueError, IndexError) as exc:
            raise InboxUnavailable("read", _text(exc)) from None
    finally:
        _close(client)
