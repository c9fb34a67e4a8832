"""What an arrived message is: which of our emails it answers, who wrote it, and whether a
person did. Pure.

A reply names the email it answers in ``In-Reply-To`` and its thread in ``References``
(RFC 5322 §3.6.4); every mail client in use keeps them. An out-of-office notice or another
automatic answer says so (``Auto-Submitted``, RFC 3834, or the older ``X-Autoreply``,
``X-Autorespond`` and ``Precedence: auto_reply``); it is recorded, but is not the lead
answering. A delivery report (a bounce that arrived later, ``multipart/report``) is not a
reply at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

from openlead.addresses import normalise_email

_MESSAGE_ID = re.compile(r"<[^<>\s]{1,250}>")
_AUTOMATIC_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}
_REPORT = re.compile(r"^\s*multipart/report\b", re.IGNORECASE)
_SYSTEM_SENDERS = ("mailer-daemon@", "postmaster@")
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


def read_answer(raw_headers: bytes, received_at: datetime | None) -> Answer:
    headers = _parser.parsebytes(raw_headers)
    named: list[str] = _MESSAGE_ID.findall(_header(headers, "In-Reply-To"))
    named += reversed(_MESSAGE_ID.findall(_header(headers, "References")))
    own = _MESSAGE_ID.findall(_header(headers, "Message-ID"))
    senders = [address for _, address in getaddresses([_header(headers, "From")]) if address]
    sender = normalise_email(senders[0]) if senders else None
    return Answer(
        message_id=own[0] if own else None,
        answers=tuple(dict.fromkeys(named)),
        sender=sender,
        subject=_header(headers, "Subject")[:200],
        automatic=_automatic(headers),
        report=bool(_REPORT.match(_header(headers, "Content-Type")))
        or (sender or "").startswith(_SYSTEM_SENDERS),
        received_at=received_at,
    )
