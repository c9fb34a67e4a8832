"""SMTP delivery with aiosmtplib: one session per mailbox, and what each reply means.

A message goes in two halves: ``offer`` (MAIL FROM and RCPT TO: the recipient's server says
yes or no to the address; nothing has been sent yet) and ``hand_over`` (DATA: the content).
Every failure is sorted into one of:

- ``permanent``: a 5xx reply about the address: a bounce;
- ``rejected``: a 5xx reply whose enhanced status code (RFC 3463) puts the fault with the
  sender, the content or a policy, not with the address: ``5.7.x`` (a block list that holds
  the sending server, DMARC, "looks like spam"), ``5.6.x`` and ``5.3.x`` (the content, the
  size), ``5.2.2`` (mailbox full), ``5.2.3`` (too large), ``5.1.7``/``5.1.8`` (the sender's
  address). The address may well be good: it is tried again later and never block-listed;
- ``temporary``: a 4xx reply: the same step may go later;
- ``uncertain``: the connection broke after the content was on its way: the server may or may
  not have taken it, so it must never be sent again.

A failure to connect, to start TLS or to log in is the mailbox's (``MailboxUnavailable``).

A server keeps a refused transaction open (Postfix and aiosmtpd answer the next MAIL FROM with
``503 nested MAIL command``), so a refusal is followed by RSET before the Reply is returned:
the session is ready for the next message, or closed when RSET fails, to be opened again.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from typing import Literal

import aiosmtplib

Security = Literal["SSL", "STARTTLS", "NONE"]
Verdict = Literal["accepted", "permanent", "rejected", "temporary", "uncertain"]

# An enhanced status code leads the reply's text (RFC 2034): class.subject.detail.
_ENHANCED_CODE = re.compile(r"\s*5\.(\d{1,3})\.(\d{1,3})\b")
# (subject, detail) of the permanent failures that are not the address's; None: any detail.
_NOT_THE_ADDRESS: frozenset[tuple[int, int | None]] = frozenset(
    {(7, None), (6, None), (3, None), (2, 2), (2, 3), (1, 7), (1, 8)}
)


@dataclass(frozen=True)
class MailboxConfig:
    host: str
    port: int
    security: Security
    user_name: str
    password: str  # decrypted; never logged
    timeout: float

    def __repr__(self) -> str:
        return f"MailboxConfig({self.host}:{self.port}, {self.security}, {self.user_name})"


class MailboxUnavailable(Exception):
    """The mailbox's server could not be reached, or would not let it in."""

    def __init__(self, stage: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
        self.message = message
        self.code = code


@dataclass(frozen=True)
class Reply:
    verdict: Verdict
    code: int | None = None
    message: str = ""


def _text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:500]


def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def open_session(config: MailboxConfig) -> aiosmtplib.SMTP:
    """Connected, encrypted as configured, and logged in; or ``MailboxUnavailable``."""
    smtp = aiosmtplib.SMTP(
        hostname=config.host,
        port=config.port,
        use_tls=config.security == "SSL",
        start_tls=False,
        timeout=config.timeout,
        tls_context=_tls_context() if config.security == "SSL" else None,
    )
    try:
        await smtp.connect()
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailboxUnavailable("connect", _text(exc), getattr(exc, "code", None)) from None
    try:
        await smtp.ehlo()
        if config.security == "STARTTLS":
            try:
                await smtp.starttls(tls_context=_tls_context())
            except (aiosmtplib.SMTPException, OSError, ssl.SSLError) as exc:
                raise MailboxUnavailable("tls", _text(exc), getattr(exc, "code", None)) from None
        if config.password:
            try:
                await smtp.login(config.user_name, config.password)
            except (aiosmtplib.SMTPException, OSError) as exc:
                raise MailboxUnavailable("login", _text(exc), getattr(exc, "code", None)) from None
    except MailboxUnavailable:
        smtp.close()
        raise
    except (aiosmtplib.SMTPException, OSError) as exc:
        smtp.close()
        raise MailboxUnavailable("connect", _text(exc), getattr(exc, "code", None)) from None
    return smtp


def permanent_verdict(message: str) -> Verdict:
    """Whether a 5xx reply is about the address (``permanent``) or not (``rejected``), by
    the enhanced status code its text starts with. Without one it is the address's, as
    "550 No such user" is: most servers that give no enhanced code mean that."""
    found = _ENHANCED_CODE.match(message)
    if found is None:
        return "permanent"
    subject, detail = int(found[1]), int(found[2])
    if (subject, None) in _NOT_THE_ADDRESS or (subject, detail) in _NOT_THE_ADDRESS:
        return "rejected"
    return "permanent"


def _by_code(exc: aiosmtplib.SMTPResponseException) -> Reply:
    text = _text(exc)
    if 500 <= exc.code < 600:
        return Reply(permanent_verdict(text), exc.code, text)
    return Reply("temporary", exc.code, text)


async def reset(smtp: aiosmtplib.SMTP) -> None:
    """End the transaction in progress; a session that will not is closed, since what the
    server holds of it is then unknown (the next message opens a new one)."""
    if not smtp.is_connected:
        return
    try:
        await smtp.rset()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


async def _refused(smtp: aiosmtplib.SMTP, exc: aiosmtplib.SMTPResponseException) -> Reply:
    await reset(smtp)
    return _by_code(exc)


async def offer(smtp: aiosmtplib.SMTP, sender: str, recipient: str) -> Reply:
    """MAIL FROM and RCPT TO. A refused sender is the mailbox's problem, raised as such."""
    try:
        await smtp.mail(sender)
    except aiosmtplib.SMTPSenderRefused as exc:
        raise MailboxUnavailable("sender", _text(exc), exc.code) from None
    except aiosmtplib.SMTPResponseException as exc:
        return await _refused(smtp, exc)
    except (aiosmtplib.SMTPException, OSError) as exc:
        # Nothing of the message has gone: the step can simply wait for another session.
        return Reply("temporary", None, _text(exc))
    try:
        await smtp.rcpt(recipient)
    except aiosmtplib.SMTPResponseException as exc:
        return await _refused(smtp, exc)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Reply("temporary", None, _text(exc))
    return Reply("accepted", 250)


async def hand_over(smtp: aiosmtplib.SMTP, content: bytes) -> Reply:
    """DATA. A reply is definite; a broken connection or a timeout is not."""
    try:
        response = await smtp.data(content)
    except aiosmtplib.SMTPResponseException as exc:
        # Refused before the content (no 354), the transaction is still open.
        return await _refused(smtp, exc)
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Reply("uncertain", None, _text(exc))
    return Reply("accepted", response.code, _text(response))


async def close_session(smtp: aiosmtplib.SMTP) -> None:
    try:
        if smtp.is_connected:
            await smtp.quit()
    except (aiosmtplib.SMTPException, OSError):
        smtp.close()


async def check_login(config: MailboxConfig, sender: str) -> None:
    """Connect, encrypt and log in as the dispatcher would, and see that the server takes mail
    from ``sender`` (MAIL FROM, then RSET), then leave; or raise. Without a password this is
    what says whether the server takes mail without a login."""
    session = await open_session(config)
    try:
        await session.mail(sender)
    except aiosmtplib.SMTPResponseException as exc:
        raise MailboxUnavailable("sender", _text(exc), exc.code) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailboxUnavailable("sender", _text(exc), None) from None
    finally:
        await reset(session)
        await close_session(session)
