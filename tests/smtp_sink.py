"""A real SMTP server for the sending tests: aiosmtpd on a free port, in a thread of its own.

It keeps every message it accepted, parsed, and can be told to refuse an address (a 550 at
RCPT TO, a bounce), to defer one (a 451), to answer one with any reply at RCPT TO or at DATA,
to refuse a sender (a 553 at MAIL FROM), to refuse RSET, to require a login, or to take its
time over DATA. Like every aiosmtpd server (and Postfix), it keeps a refused transaction open
until RSET: another MAIL FROM is a 503.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from functools import cached_property
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.support import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    received_at: float
    peer: tuple[str, int] | None = None  # the client's end of the connection it came over

    @cached_property
    def message(self) -> EmailMessage:
        # Parsed when first read, not in the server's thread: a run of thousands of messages
        # is not held up by the parser.
        return message_from_bytes(self.content, policy=policy.default)  # type: ignore[return-value]

    @cached_property
    def headers(self) -> EmailMessage:
        """The header block alone: quicker to read than the whole message."""
        return BytesHeaderParser(policy=policy.default).parsebytes(self.content)  # type: ignore[return-value]

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    @property
    def message_id(self) -> str:
        return str(self.headers["Message-ID"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    sink: SmtpSink

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.sink.refuse_senders:
            return "553 5.7.1 Sender address rejected"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        address = address.lower()
        if address in self.sink.refuse:
            return "550 5.1.1 No such user here"
        if address in self.sink.replies:
            return self.sink.replies[address]
        if address in self.sink.defer:
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:
        return "502 5.5.2 Command not implemented" if self.sink.refuse_reset else "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        for address in envelope.rcpt_tos:
            if address in self.sink.data_replies:
                return self.sink.data_replies[address]
        with self.sink.lock:
            self.sink.messages.append(
                Received(
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    envelope.content,
                    time.time(),
                    _peer(session.peer),
                )
            )
        return "250 Message accepted"


def _peer(peer: Any) -> tuple[str, int] | None:
    return (str(peer[0]), int(peer[1])) if peer else None


class _CountingSMTP(SMTP):
    """Keeps the sink's set of open connections."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        sink = self.event_handler.sink
        with sink.lock:
            sink.open_peers.add(_peer(self.session.peer))
            sink.connections += 1
            sink.most_open = max(sink.most_open, len(sink.open_peers))

    def connection_lost(self, error: Exception | None) -> None:
        sink = self.event_handler.sink
        with sink.lock:
            sink.open_peers.discard(_peer(self.session.peer))
        super().connection_lost(error)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpSink:
    port: int = field(default_factory=free_port)
    user: str | None = None  # a login is required when set
    password: str | None = None
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    replies: dict[str, str] = field(default_factory=dict)  # address -> its reply at RCPT TO
    data_replies: dict[str, str] = field(default_factory=dict)  # address -> the reply to DATA
    refuse_senders: set[str] = field(default_factory=set)  # a 553 at MAIL FROM
    refuse_reset: bool = False  # a 502 to RSET
    data_delay: float = 0.0
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    open_peers: set[tuple[str, int] | None] = field(default_factory=set)
    connections: int = 0  # opened so far
    most_open: int = 0  # the most connections open at once so far
    _controller: Controller | None = None

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> SmtpSink:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs = {
                "authenticator": self._authenticate,
                "auth_require_tls": False,
                "auth_required": True,
            }
        self._controller = _Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def open_connections(self) -> set[tuple[str, int] | None]:
        with self.lock:
            return set(self.open_peers)

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.received()
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, the sink has {len(self.received())}")

    def mailbox(self, from_email: str = "sender@openlead.example", **extra: Any) -> dict:
        """The body of an ``/email-accounts/save`` that sends through this sink."""
        return {
            "from_name": "Sam Sender",
            "from_email": from_email,
            "user_name": self.user or from_email,
            "password": self.password or "",
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_security": "NONE",
            "max_email_per_day": 1000,
            **extra,
        }
