"""HTTP endpoints for email accounts (mailboxes) and the mailboxes of a campaign."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request
from sqlalchemy.engine import Row

from openlead.clock import iso, utcnow
from openlead.db.engine import Database
from openlead.sending import service
from openlead.sending.schedule import day_start
from openlead.sending.schemas import (
    CampaignEmailAccountList,
    CampaignEmailAccounts,
    ConnectionTest,
    Deleted,
    EmailAccount,
    EmailAccountPage,
    EmailAccountSave,
    EmailAccountSaved,
)
from openlead.sending.tally import Tally
from openlead.vault import Vault
from openlead.web.deps import AccountId, AccountIdAlone, ReadConn, WriteConn
from openlead.web.ids import ObjectId
from openlead.web.pagination import Page, PageParams

router = APIRouter(tags=["email accounts"])


def _vault(request: Request) -> Vault:
    return request.app.state.vault


def _fields(row: Row) -> dict:
    return {
        "id": row.id,
        "from_name": row.from_name,
        "from_email": row.from_email,
        "user_name": row.user_name,
        "smtp_host": row.smtp_host,
        "smtp_port": row.smtp_port,
        "smtp_security": row.smtp_security,
        "imap_host": row.imap_host,
        "imap_port": row.imap_port,
        "imap_security": row.imap_security,
        "imap_user_name": row.imap_user_name,
        "has_imap_password": bool(row.imap_password_encrypted),
        "imap_checked_at": iso(row.imap_checked_at),
        "imap_error": row.imap_error,
        "max_email_per_day": row.max_email_per_day,
        "has_password": bool(row.password_encrypted),
        "state": row.state,
        "last_error": row.last_error,
        "retry_at": iso(row.retry_at),
        "sent_today": Tally.read(row.sent_log).since(day_start(utcnow(), UTC)),
        "created_at": iso(row.created_at) or "",
        "updated_at": iso(row.updated_at) or "",
    }


def email_account(row: Row) -> EmailAccount:
    return EmailAccount(**_fields(row))


@router.post("/email-accounts/save", response_model=EmailAccountSaved)
async def save_email_account(
    body: EmailAccountSave, request: Request, account_id: AccountId, conn: WriteConn
) -> EmailAccountSaved:
    """Create a mailbox, or update the one ``id`` names. The password is stored encrypted and
    never returned; an update without one keeps the stored one."""
    row = await service.save(conn, _vault(request), account_id, body)
    return EmailAccountSaved(**_fields(row))


@router.get("/email-accounts", response_model=EmailAccountPage)
async def list_email_accounts(
    account_id: AccountId, conn: ReadConn, page: PageParams
) -> EmailAccountPage:
    rows = await service.list_page(conn, account_id, page)
    return EmailAccountPage(
        email_accounts=[email_account(r) for r in page.rows(rows)],
        **page.answer([r.id for r in rows]),
    )


@router.get("/email-accounts/{email_account_id:int}", response_model=EmailAccount)
async def get_email_account(
    email_account_id: ObjectId, account_id: AccountId, conn: ReadConn
) -> EmailAccount:
    return email_account(await service.get(conn, account_id, email_account_id))


@router.delete("/email-accounts/{email_account_id:int}", response_model=Deleted)
async def delete_email_account(
    email_account_id: ObjectId, account_id: AccountId, conn: WriteConn
) -> Deleted:
    await service.delete(conn, account_id, email_account_id)
    return Deleted()


@router.post("/email-accounts/{email_account_id:int}/test", response_model=ConnectionTest)
async def test_email_account(
    email_account_id: ObjectId, request: Request, account_id: AccountIdAlone
) -> ConnectionTest:
    """Connect to the mailbox's SMTP server, encrypt as configured, log in and offer its
    address as a sender (MAIL FROM, then RSET), then say what failed, if anything: connect,
    tls, login, sender or password (one that cannot be decrypted)."""
    database: Database = request.app.state.database
    # No transaction stays open while the server is talked to.
    async with database.read() as conn:
        row = await service.get(conn, account_id, email_account_id)
    settings = request.app.state.settings
    result = await service.test_login(row, _vault(request), settings.smtp_timeout_seconds)
    if result.ok and row.state != "OK":
        async with database.write() as conn:
            await service.record_test(conn, account_id, email_account_id)
    return result


def _campaign_page(campaign_id: int, rows: list[Row], page: Page) -> CampaignEmailAccountList:
    return CampaignEmailAccountList(
        campaign_id=campaign_id,
        email_accounts=[email_account(r) for r in page.rows(rows)],
        **page.answer([r.id for r in rows]),
    )


# A change answers the first page of the campaign's mailboxes as they are afterwards.
FIRST_PAGE = Page(offset=0, limit=100, after=None)


@router.post("/campaigns/{campaign_id:int}/email-accounts", response_model=CampaignEmailAccountList)
async def add_campaign_email_accounts(
    campaign_id: ObjectId, body: CampaignEmailAccounts, account_id: AccountId, conn: WriteConn
) -> CampaignEmailAccountList:
    """Send the campaign from these mailboxes too (ones already attached stay)."""
    ids = body.email_account_ids
    rows = await service.attach(conn, account_id, campaign_id, ids, FIRST_PAGE)
    return _campaign_page(campaign_id, rows, FIRST_PAGE)


@router.get("/campaigns/{campaign_id:int}/email-accounts", response_model=CampaignEmailAccountList)
async def list_campaign_email_accounts(
    campaign_id: ObjectId, account_id: AccountId, conn: ReadConn, page: PageParams
) -> CampaignEmailAccountList:
    rows = await service.of_campaign(conn, account_id, campaign_id, page)
    return _campaign_page(campaign_id, rows, page)


@router.delete(
    "/campaigns/{campaign_id:int}/email-accounts", response_model=CampaignEmailAccountList
)
async def remove_campaign_email_accounts(
    campaign_id: ObjectId, body: CampaignEmailAccounts, account_id: AccountId, conn: WriteConn
) -> CampaignEmailAccountList:
    """Take mailboxes off the campaign (SmartLead's shape: the ids in the body)."""
    ids = body.email_account_ids
    rows = await service.detach(conn, account_id, campaign_id, ids, FIRST_PAGE)
    return _campaign_page(campaign_id, rows, FIRST_PAGE)
