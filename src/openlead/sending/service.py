"""Mailbox (email account) rules: saving with the password encrypted, the login test, and the
mailboxes a campaign sends from."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.addresses import normalise_email
from openlead.campaigns import service as campaigns
from openlead.clock import utcnow
from openlead.replies import imap
from openlead.replies.reader import inbox_config
from openlead.sending import repository, smtp
from openlead.sending.schemas import ConnectionTest, EmailAccountSave, InboxTest
from openlead.vault import Vault, VaultError
from openlead.web.errors import ApiError, BadRequest, NotFound
from openlead.web.pagination import Page

LOGGED_IN = "Connected and logged in."
_STORED = (
    "from_name",
    "user_name",
    "smtp_host",
    "smtp_port",
    "smtp_security",
    "imap_host",
    "imap_port",
    "imap_security",
    "imap_user_name",
    "max_email_per_day",
)


def _values(body: EmailAccountSave, vault: Vault) -> dict[str, Any]:
    """The columns to store. An update changes only what it names: a setting it leaves out
    keeps its stored value rather than falling back to the default (a daily cap of 20 must
    not become 100 because a script renamed the sender), and an explicit null clears it."""
    from_email = normalise_email(body.from_email)
    if from_email is None:
        raise BadRequest("invalid_email", f"{body.from_email[:320]!r} is not a valid address.")
    given = _STORED if body.id is None else body.model_fields_set.intersection(_STORED)
    values: dict[str, Any] = {name: getattr(body, name) for name in given}
    values["from_name"] = body.from_name.strip()
    values["from_email"] = from_email
    if body.password is not None:
        # An empty password (a server that takes mail without a login) has nothing to hide.
        values["password_encrypted"] = vault.encrypt(body.password) if body.password else ""
    if body.imap_password is not None:
        # An empty one: the inbox is read with the SMTP password again.
        values["imap_password_encrypted"] = (
            vault.encrypt(body.imap_password) if body.imap_password else None
        )
    return values


async def save(conn: AsyncConnection, vault: Vault, account_id: int, body: EmailAccountSave) -> Row:
    """Create a mailbox, or update the one ``body.id`` names (what it leaves out is kept)."""
    values = _values(body, vault)
    other = await repository.email_account_by_address(conn, account_id, values["from_email"])
    if other is not None and other.id != body.id:
        raise ApiError(
            409,
            "email_account_exists",
            f"The account already has a mailbox for {values['from_email']} (id {other.id}); "
            "pass its id to update it.",
            {"id": other.id},
        )
    now = utcnow()
    if body.id is not None:
        # Saved settings are a new chance: a failing mailbox is tried again at once.
        values |= {"state": "OK", "retry_at": None, "last_error": None, "failures": 0}
        # And its inbox is read at the next pass, with the settings just saved.
        values |= {"imap_checked_at": None, "imap_error": None}
        row = await repository.update_email_account(conn, account_id, body.id, values, now)
        if row is None:
            raise NotFound("Email account")
        return row
    if body.password is None:
        raise BadRequest(
            "missing_password",
            "A new email account needs a password (an empty one if the server takes mail "
            "without a login).",
        )
    return await repository.insert_email_account(conn, account_id, values, now)


async def get(conn: AsyncConnection, account_id: int, mailbox_id: int) -> Row:
    row = await repository.get_email_account(conn, account_id, mailbox_id)
    if row is None:
        raise NotFound("Email account")
    return row


async def list_page(conn: AsyncConnection, account_id: int, page: Page) -> list[Row]:
    return await repository.list_email_accounts(conn, account_id, page)


async def delete(conn: AsyncConnection, account_id: int, mailbox_id: int) -> None:
    """Delete a mailbox; the leads it was sending to get another at their next step."""
    if not await repository.delete_email_account(conn, account_id, mailbox_id):
        raise NotFound("Email account")
    await repository.unassign_leads(conn, account_id, [mailbox_id])


def mailbox_config(row: Row, vault: Vault, timeout: float) -> smtp.MailboxConfig:
    """How to reach and log in to a mailbox; ``VaultError`` when its password cannot be
    decrypted with this installation's key."""
    stored = row.password_encrypted
    return smtp.MailboxConfig(
        host=row.smtp_host,
        port=row.smtp_port,
        security=row.smtp_security,
        user_name=row.user_name,
        password=vault.decrypt(stored) if stored else "",
        timeout=timeout,
    )


async def test_login(row: Row, vault: Vault, timeout: float) -> ConnectionTest:
    """Connect, encrypt, log in (when there is a password) and offer a sender as the
    dispatcher would, and log in to the inbox as the reply reader would; say where each
    stopped, if it did."""
    inbox = await _test_inbox(row, vault, timeout) if row.imap_host else None
    try:
        config = mailbox_config(row, vault, timeout)
    except VaultError as exc:
        return ConnectionTest(ok=False, stage="password", message=str(exc), imap=inbox)
    try:
        await smtp.check_login(config, row.from_email)
    except smtp.MailboxUnavailable as exc:
        message = _failure(exc, config, row.from_email)
        return ConnectionTest(
            ok=False, stage=exc.stage, message=message, smtp_code=exc.code, imap=inbox
        )
    return ConnectionTest(ok=True, stage=None, message=_success(config, row.from_email), imap=inbox)


def _success(config: smtp.MailboxConfig, from_email: str) -> str:
    # Without a password no login was tried: saying "logged in" would have a mailbox whose
    # server wants one look fine until its sends fail.
    if config.password:
        return LOGGED_IN
    return (
        "Connected; no password is set, so no login was tried, and the server takes mail "
        f"from {from_email} without one."
    )


def _failure(exc: smtp.MailboxUnavailable, config: smtp.MailboxConfig, from_email: str) -> str:
    if exc.stage != "sender":
        return exc.message
    # Said first, so that a refusal without a password (530) is not read as a refused login.
    done = "Logged in, but" if config.password else "No password is set, so no login was tried, and"
    return f"{done} the server refused mail from {from_email}: {exc.message}"


async def _test_inbox(row: Row, vault: Vault, timeout: float) -> InboxTest:
    try:
        config = inbox_config(row, vault, timeout)
    except VaultError as exc:
        return InboxTest(ok=False, stage="password", message=str(exc))
    try:
        await asyncio.to_thread(imap.check_login, config)
    except imap.InboxUnavailable as exc:
        return InboxTest(ok=False, stage=exc.stage, message=exc.message)
    return InboxTest(ok=True, stage=None, message=LOGGED_IN)


async def record_test(conn: AsyncConnection, account_id: int, mailbox_id: int) -> None:
    """A login that worked makes a failing mailbox usable again at once."""
    await repository.set_mailbox_health(conn, account_id, mailbox_id, "OK", None, None, 0)


# --- a campaign's mailboxes -----------------------------------------------------------------


async def _known(conn: AsyncConnection, account_id: int, mailbox_ids: list[int]) -> list[int]:
    wanted = list(dict.fromkeys(mailbox_ids))
    found = await repository.existing_email_accounts(conn, account_id, wanted)
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ApiError(
            404,
            "not_found",
            f"Email account not found: {', '.join(map(str, missing[:20]))}.",
            {"missing": missing},
        )
    return wanted


async def attach(
    conn: AsyncConnection, account_id: int, campaign_id: int, mailbox_ids: list[int], page: Page
) -> list[Row]:
    """Send the campaign from these mailboxes too; a page of its mailboxes afterwards."""
    await campaigns.get(conn, account_id, campaign_id)
    wanted = await _known(conn, account_id, mailbox_ids)
    await repository.attach_email_accounts(conn, account_id, campaign_id, wanted, utcnow())
    return await repository.campaign_email_accounts_of(conn, account_id, campaign_id, page)


async def of_campaign(
    conn: AsyncConnection, account_id: int, campaign_id: int, page: Page
) -> list[Row]:
    await campaigns.get(conn, account_id, campaign_id)
    return await repository.campaign_email_accounts_of(conn, account_id, campaign_id, page)


async def detach(
    conn: AsyncConnection, account_id: int, campaign_id: int, mailbox_ids: list[int], page: Page
) -> list[Row]:
    """Take mailboxes off a campaign; its leads they were sending to get another one."""
    await campaigns.get(conn, account_id, campaign_id)
    wanted = await _known(conn, account_id, mailbox_ids)
    await repository.detach_email_accounts(conn, account_id, campaign_id, wanted)
    await repository.unassign_leads(conn, account_id, wanted, campaign_id)
    return await repository.campaign_email_accounts_of(conn, account_id, campaign_id, page)
