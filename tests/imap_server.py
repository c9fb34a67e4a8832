"""A real IMAP server for the reply tests: pymap's in-memory backend, in a process of its own
on a free port, with one user. Messages are put into its inbox with IMAP ``APPEND``, as a mail
server's delivery would leave them."""

from __future__ import annotations

import imaplib
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from tests.support import free_port, stop_process


@dataclass
class ImapServer:
    log_path: Path
    user: str = "inbox@sender.example"
    password: str = "imap-secret-pw"
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> ImapServer:
        self.port = free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from pymap.main import main; sys.exit(main())",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "dict",
                "--demo-user",
                self.user,
                "--demo-password",
                self.password,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self._client().logout()
                return self
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log_text = self.log_path.read_text()
                    raise RuntimeError(f"pymap did not start: {log_text}") from exc
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.process, timeout=10)

    def _client(self) -> imaplib.IMAP4:
        return imaplib.IMAP4("127.0.0.1", self.port, timeout=10)

    def deliver(self, content: bytes, received_at: datetime | None = None) -> None:
        """Put a message into the inbox, as the server's delivery would."""
        client = self._client()
        try:
            client.login(self.user, self.password)
            when = imaplib.Time2Internaldate(received_at.timestamp()) if received_at else None
            status, data = client.append("INBOX", None, when, content)
            assert status == "OK", data
        finally:
            client.logout()

    def inbox_settings(self, **extra: Any) -> dict:
        """The fields of an ``/email-accounts/save`` that read this server's inbox."""
        return {
            "imap_host": "127.0.0.1",
            "imap_port": self.port,
            "imap_security": "NONE",
            "imap_user_name": self.user,
            "imap_password": self.password,
            **extra,
        }


def message(
    sender: str,
    subject: str = "Re: Quick question",
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    body: str = "Thanks, tell me more.",
    sent_at: datetime | None = None,
    **headers: str,
) -> bytes:
    """An email as a lead's client writes it (extra headers by name: ``Auto_Submitted``)."""
    lines = [
        f"From: Someone <{sender}>",
        "To: inbox@sender.example",
        f"Subject: {subject}",
        f"Message-ID: <{time.time_ns()}.reply@{sender.rpartition('@')[2]}>",
    ]
    if sent_at is not None:
        lines.append(f"Date: {format_datetime(sent_at)}")
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append("References: " + " ".join(references))
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n" + body + "\r\n").encode()


def delivery_report(
    recipient: str,
    original_message_id: str | None,
    action: str = "failed",
    status: str = "5.1.1",
    quoted: str = "text/rfc822-headers",
) -> bytes:
    """A delivery status notification (RFC 3464) as a receiving server sends it back, quoting
    the original's headers (``quoted``: ``text/rfc822-headers`` or ``message/rfc822``)."""
    boundary = "report-boundary"
    original = (
        f"From: Sam Sender <sam@sender.example>\r\nTo: {recipient}\r\n"
        + (f"Message-ID: {original_message_id}\r\n" if original_message_id else "")
        + "Subject: Quick question\r\n"
    )
    if quoted == "message/rfc822":
        original += "\r\nHi there.\r\n"
    lines = [
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>",
        "To: sam@sender.example",
        "Subject: Undelivered Mail Returned to Sender",
        "Auto-Submitted: auto-replied",
        f"Message-ID: <{time.time_ns()}.report@mx.example.com>",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        f"--{boundary}",
        "Content-Type: text/plain",
        "",
        "Your message could not be delivered.",
        "",
        f"--{boundary}",
        "Content-Type: message/delivery-status",
        "",
        "Reporting-MTA: dns; mx.example.com",
        "",
        f"Final-Recipient: rfc822; {recipient}",
        f"Action: {action}",
        f"Status: {status}",
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: Recipient address rejected",
        "",
        f"--{boundary}",
        f"Content-Type: {quoted}",
        "",
        original,
        f"--{boundary}--",
        "",
    ]
    return "\r\n".join(lines).encode()


def plain_bounce(
    recipient: str,
    original_message_id: str | None,
    reply: str | None = "550 5.1.1 <{recipient}>: Recipient address rejected: User unknown",
) -> bytes:
    """A bounce in plain text, as Exim writes one: the failed addresses in
    ``X-Failed-Recipients``, the remote server's ``reply`` (if it gave one) in the text, and a
    copy of the email after it."""
    reason = (
        ["    SMTP error from remote mail server after RCPT TO:<{recipient}>:", f"    {reply}"]
        if reply is not None
        else ["    Unrouteable address"]
    )
    lines = [
        "From: Mail Delivery System <Mailer-Daemon@smtp.sender.example>",
        "To: sam@sender.example",
        "Subject: Mail delivery failed: returning message to sender",
        "Auto-Submitted: auto-replied",
        f"X-Failed-Recipients: {recipient}",
        f"Message-ID: <{time.time_ns()}.bounce@smtp.sender.example>",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "This message was created automatically by mail delivery software.",
        "",
        "A message that you sent could not be delivered to one or more of its",
        "recipients. This is a permanent error. The following address(es) failed:",
        "",
        f"  {recipient}",
        "    host mx.acmecorp.example [192.0.2.10]",
        *reason,
        "",
        "------ This is a copy of the message, including all the headers. ------",
        "",
        "Return-path: <sam@sender.example>",
        *([f"Message-ID: {original_message_id}"] if original_message_id else []),
        "From: Sam Sender <sam@sender.example>",
        f"To: {recipient}",
        "Subject: Quick question",
        "",
        "Hi there.",
        "",
    ]
    return "\r\n".join(lines).format(recipient=recipient).encode()
