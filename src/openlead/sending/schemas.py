"""Request and response shapes of the email-account (mailbox) endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from openlead.web.numbers import MAX_BODY_ID, Integer, integer
from openlead.web.text import HOST, NAME, line

Host = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=HOST)]
Port = integer(1, 65535)
MAX_DAILY_CAP = 100_000


# SSL: TLS from the first byte (port 465); STARTTLS: plain, then upgraded (587); NONE: no
# encryption (a local relay).
SmtpSecurity = Literal["SSL", "STARTTLS", "NONE"]


class EmailAccountSave(BaseModel):
    """Create a mailbox, or update the one named by ``id``. A password left out of an update
    keeps the stored one; an empty password means the server takes mail without a login."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: integer(1, MAX_BODY_ID) | None = None
    from_name: Annotated[str, StringConstraints(max_length=320, pattern=NAME)]
    from_email: line(320)
    user_name: line(320)
    password: line(1000) | None = None
    smtp_host: Host
    smtp_port: Port
    smtp_security: SmtpSecurity = "STARTTLS"
    imap_host: Host | None = None
    imap_port: Port | None = None
    # The inbox's login, when it is not the SMTP one (docs/sending.md, "Replies"); without a
    # security setting port 993 is TLS from the start and any other STARTTLS.
    imap_security: SmtpSecurity | None = None
    imap_user_name: line(320) | None = None
    imap_password: line(1000) | None = None
    max_email_per_day: integer(1, MAX_DAILY_CAP) = 100
    # SmartLead's fields that openlead accepts and does not use (docs/sending.md).
    client_id: Integer | None = None
    warmup_enabled: bool | None = None
    total_warmup_per_day: Integer | None = None
    daily_rampup: Integer | None = None
    reply_rate_percentage: Integer | None = None
    custom_tracking_url: line(2000) | None = None
    bcc: line(320) | None = None
    signature: line(10_000) | None = None


class EmailAccount(BaseModel):
    id: int
    from_name: str
    from_email: str
    user_name: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    imap_host: str | None
    imap_port: int | None
    imap_security: str | None
    imap_user_name: str | None
    has_imap_password: bool  # false: the inbox is read with the SMTP password
    imap_checked_at: str | None  # when the inbox was last read for replies
    imap_error: str | None  # why the last read failed, if it did
    max_email_per_day: int
    has_password: bool
    state: str  # OK, or FAILING after a failed connection or login
    last_error: str | None
    retry_at: str | None
    sent_today: int  # sends reserved since 00:00 UTC (each campaign counts its own day)
    created_at: str
    updated_at: str


class EmailAccountSaved(EmailAccount):
    ok: bool = True


class EmailAccountPage(BaseModel):
    email_accounts: list[EmailAccount]
    offset: int
    limit: int
    next_cursor: str | None


class InboxTest(BaseModel):
    ok: bool
    # Where it stopped: connect, tls, login, read; null when it worked.
    stage: str | None
    message: str


class ConnectionTest(BaseModel):
    """The SMTP login's result; and the inbox's, for a mailbox with an ``imap_host``."""

    ok: bool
    # Where it stopped: connect, tls, login; null when it worked.
    stage: str | None
    message: str
    smtp_code: int | None = None
    imap: InboxTest | None = None


class CampaignEmailAccounts(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email_account_ids: list[integer(1, MAX_BODY_ID)] = Field(min_length=1, max_length=1000)


class CampaignEmailAccountList(BaseModel):
    """A page of the campaign's mailboxes (after a change: the first page)."""

    campaign_id: int
    email_accounts: list[EmailAccount]
    offset: int
    limit: int
    next_cursor: str | None


class Deleted(BaseModel):
    ok: bool = True
