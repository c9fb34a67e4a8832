"""A real SMTP server for the sending tests: aiosmtpd on a free port, in a thread of its own.

It keeps every message it accepted, parsed, and can be told to refuse an address (a 550 at
RCPT TO, a bounce), to defer one (a 451), to require a login, or to take its time over DATA.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    received_at: float

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""


@dataclass
class _Handler:
    sink: SmtpSink

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:  # noqa: E501
        address = address.lower()
        if address in self.sink.refuse:
            return "550 5.1.1 No such user here"
        if address in self.sink.defer:
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.sink.lock:
            self.sink.messages.append(
                Received(envelope.mail_from, list(envelope.rcpt_tos), message, time.time())
            )
        return "250 Message accepted"


@dataclass
class SmtpSink:
    port: int = field(default_factory=free_port)
    user: str | None = None  # a login is required when set
    password: str | None = None
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    data_delay: float = 0.0
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:  # noqa: E501
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
        self._controller = Controller(
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
