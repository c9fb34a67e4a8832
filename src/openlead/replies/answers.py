"""What an arrived message is: which of our emails it answers, who wrote it, and whether a
person did. Pure.

A reply names the email it answers in ``In-Reply-To`` and its thread in ``References``
(RFC 5322 §3.6.4); every mail client in use keeps them. An out-of-office notice or another
automatic answer says so (``Auto-Submitted``, RFC 3834, or the older ``X-Autoreply``,
``X-Autorespond`` and ``Precedence: auto_reply``); it is recorded, but is not the lead
answering. A delivery report (a bounce that arrived later, ``multipart/report``, RFC 3464) is
not a reply: it is read for the recipients that failed for good. So is a bounce in plain
text that lists them in ``X-Failed-Recipients``, as Exim (common on hosted SMTP) writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from openlead.addresses import normalise_email

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_AUTOMATIC_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}
_REPORT = re.compile(r"^\s*multipart/report\b", re.IGNORECASE)
_SYSTEM_SENDERS = ("mailer-daemon@", "postmaster@")
# The parts of a delivery report that quote the email it is about: whole, or its headers.
_QUOTED = {"message/rfc822", "text/rfc822-headers", "message/rfc822-headers"}
# A server's reply quoted on a line of its own in a plain-text bounce, "550 5.1.1 ...", with
# or without its enhanced status (RFC 3463).
_SMTP_REPLY = re.compile(r"^[ \t]*([45])\d\d[ -]([45]\.\d{1,3}\.\d{1,3}\b)?", re.M)
_QUOTED_MESSAGE_ID = re.compile(r"^Message-ID:[ \t]*(<[^<>\s]{1,250}>)", re.I | re.M)
_parser = BytesHeaderParser(policy=compat32)


@dataclass(frozen=True)
class Answer:
    message_id: str | None
    # The Message-IDs it names, nearest first: In-Reply-To, then References from the end.
    answers: tuple[str, ...]
    sender: str | None  # the From address, as leads' addresses are stored
    subject: str
    automatic: bool
    report: bool
    received_at: datetime | None


def _header(headers, name: str) -> str:  # type: ignore[no-untyped-def]
    value = headers.get(name)
    return " ".join(str(value).split()) if value is not None else ""


def _automatic(headers) -> bool:  # type: ignore[no-untyped-def]
    submitted = _header(headers, "Auto-Submitted").lower()
    if submitted and not submitted.startswith("no"):
        return True
    if headers.get("X-Autoreply") is not None or headers.get("X-Autorespond") is not None:
        return True
    return _header(headers, "Precedence").lower() in _AUTOMATIC_PRECEDENCE


def _is_report(headers, sender: str | None) -> bool:  # type: ignore[no-untyped-def]
    return (
        bool(_REPORT.match(_header(headers, "Content-Type")))
        or headers.get("X-Failed-Recipients") is not None
        or (sender or "").startswith(_SYSTEM_SENDERS)
    )


def _sender(headers) -> str | None:  # type: ignore[no-untyped-def]
    senders = [address for _, address in getaddresses([_header(headers, "From")]) if address]
    return normalise_email(senders[0]) if senders else None


def is_report(raw_headers: bytes) -> bool:
    """Whether a message is a delivery report, whose content is read, not a reply."""
    headers = _parser.parsebytes(raw_headers)
    return _is_report(headers, _sender(headers))


def read_answer(raw_headers: bytes, received_at: datetime | None) -> Answer:
    headers = _parser.parsebytes(raw_headers)
    named: list[str] = _MESSAGE_ID.findall(_header(headers, "In-Reply-To"))
    named += reversed(_MESSAGE_ID.findall(_header(headers, "References")))
    own = _MESSAGE_ID.findall(_header(headers, "Message-ID"))
    sender = _sender(headers)
    return Answer(
        message_id=own[0] if own else None,
        answers=tuple(dict.fromkeys(named)),
        sender=sender,
        subject=_header(headers, "Subject")[:200],
        automatic=_automatic(headers),
        report=_is_report(headers, sender),
        received_at=received_at,
    )


@dataclass(frozen=True)
class Failure:
    """One recipient a delivery report says could not be reached, for good."""

    recipient: str  # as leads' addresses are stored
    status: str  # the enhanced status code, 5.x.x (RFC 3463)
    diagnostic: str  # the remote server's words, when the report has them


@dataclass(frozen=True)
class Report:
    """What a delivery report says: the Message-ID of the email it is about, when it quotes
    that email's headers, and the recipients that failed for good."""

    original_message_id: str | None
    failures: tuple[Failure, ...]


def _recipient_failure(fields) -> Failure | None:  # type: ignore[no-untyped-def]
    action = _header(fields, "Action").lower()
    status = _header(fields, "Status")
    # A delayed or relayed message may still arrive; only "failed" with a 5.x.x is a bounce.
    if action != "failed" or not status.startswith("5"):
        return None
    final = _header(fields, "Final-Recipient") or _header(fields, "Original-Recipient")
    recipient = normalise_email(final.rpartition(";")[2].strip().strip("<>"))
    if recipient is None:
        return None
    diagnostic = _header(fields, "Diagnostic-Code").partition(";")[2].strip()
    return Failure(recipient, status.split()[0], diagnostic[:500])


def _quoted_message_id(part: Message) -> str | None:
    """The Message-ID of the email a report quotes (whole, or its headers alone)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        quoted = payload[0] if payload else None
    else:
        quoted = _parser.parsebytes(part.get_payload(decode=True) or b"")
    if quoted is None:
        return None
    found = _MESSAGE_ID.findall(_header(quoted, "Message-ID"))
    return found[0] if found else None


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    try:
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    except (LookupError, ValueError):  # a charset Python does not know, or not a text one
        return payload.decode("utf-8", "replace")


def _listed_failures(message: Message, explanation: str) -> list[Failure]:
    """The recipients of ``X-Failed-Recipients``, when the explanation does not show the
    failure to be a temporary one that ran out of time (a 4xx: the address may be good)."""
    reply = _SMTP_REPLY.search(explanation)
    if reply is not None and reply.group(1) != "5":
        return []
    enhanced = reply.group(2) if reply is not None else None
    status = enhanced if enhanced is not None and enhanced.startswith("5") else "5.0.0"
    diagnostic = ""
    if reply is not None:
        end = explanation.find("\n", reply.end())
        diagnostic = explanation[reply.start() : end if end >= 0 else None].strip()[:500]
    listed = getaddresses([_header(message, "X-Failed-Recipients")])
    recipients = dict.fromkeys(r for _, a in listed if (r := normalise_email(a)) is not None)
    return [Failure(recipient, status, diagnostic) for recipient in recipients]


def read_report(content: bytes) -> Report:
    """A delivery report read from the message's content (which may be cut short: what
    matters comes first). One with a ``message/delivery-status`` part is read by it alone;
    one without is read from ``X-Failed-Recipients`` and its text, where the copy of the email
    it returns shows that email's Message-ID."""
    message = message_from_bytes(content, policy=compat32)
    original: str | None = None
    failures: list[Failure] = []
    structured = False
    explained: Message | None = None  # the first text part: a plain bounce's explanation
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            structured = True
            for fields in part.get_payload() or []:
                failure = _recipient_failure(fields)
                if failure is not None:
                    failures.append(failure)
        elif kind in _QUOTED and original is None:
            original = _quoted_message_id(part)
        elif kind == "text/plain" and explained is None:
            explained = part
    if structured or message.get("X-Failed-Recipients") is None:
        return Report(original, tuple(failures))
    text = _text(explained) if explained is not None else ""
    quoted = _QUOTED_MESSAGE_ID.search(text)
    if original is None and quoted is not None:
        original = quoted.group(1)
    explanation = text[: quoted.start()] if quoted is not None else text
    return Report(original, tuple(_listed_failures(message, explanation)))
