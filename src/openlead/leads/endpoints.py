"""HTTP endpoints for leads."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.clock import iso
from openlead.db.engine import Database
from openlead.db.overlap import runs_beside_python
from openlead.leads import service
from openlead.leads.schemas import (
    PROFILE_FIELDS,
    ImportBody,
    ImportRequest,
    ImportResult,
    Lead,
    LeadCampaign,
    LeadProfile,
    SentImportRequest,
)
from openlead.web.deps import AccountId, ReadConn, WriteConn
from openlead.web.ids import ObjectId
from openlead.web.text import line

router = APIRouter(tags=["leads"])


class _ImportBody(Request):
    """An import body handed to the endpoint as sent, for the service to validate while the
    database looks its addresses up (``schemas.ImportBody``); where the lookups cannot run
    beside Python (``db.overlap``) it is validated here, before the endpoint, as before.

    FastAPI asks ``json()`` only for a non-empty body sent as JSON, and takes the
    ``ImportRequest`` it returns as it is; the OpenAPI schema still names ``ImportRequest``.
    A body that does not parse raises here, so FastAPI answers it before reading the key.
    """

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            database: Database = self.app.state.database
            validate = not runs_beside_python(database.writer.dialect.name)
            self._json = SentImportRequest.holding(ImportBody.read(await self.body(), validate))
        return self._json


class _ImportRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_import(request: Request) -> Response:
            return await handle(_ImportBody(request.scope, request.receive))

        return handle_import


async def import_leads(
    campaign_id: ObjectId, body: ImportRequest, account_id: AccountId, conn: WriteConn
) -> ImportResult:
    sent = body.body if isinstance(body, SentImportRequest) else ImportBody.of(body)
    return await service.import_leads(conn, account_id, campaign_id, sent)


router.add_api_route(
    "/campaigns/{campaign_id:int}/leads",
    import_leads,
    methods=["POST"],
    response_model=ImportResult,
    route_class_override=_ImportRoute,
)


async def _lead(conn: AsyncConnection, account_id: int, row: Row) -> Lead:
    memberships, suppressed = await service.standing(conn, account_id, row)
    return Lead(
        id=row.id,
        email=row.email,
        **{field: getattr(row, field) for field in PROFILE_FIELDS},
        custom_fields=row.custom_fields or {},
        is_unsubscribed=row.email in suppressed.unsubscribed,
        is_blocked=row.email in suppressed.blocked,
        created_at=iso(row.created_at) or "",
        updated_at=iso(row.updated_at) or "",
        campaigns=[LeadCampaign(campaign_id=m.campaign_id, status=m.status) for m in memberships],
    )


EmailQuery = Annotated[line(1000), Query(description="The lead's address (any letter case)")]


@router.get("/leads", response_model=Lead)
async def find_lead(email: EmailQuery, account_id: AccountId, conn: ReadConn) -> Lead:
    return await _lead(conn, account_id, await service.find_by_email(conn, account_id, email))


@router.get("/leads/", response_model=Lead, include_in_schema=False)
async def find_lead_compat(email: EmailQuery, account_id: AccountId, conn: ReadConn) -> Lead:
    """SmartLead's spelling, with the trailing slash."""
    return await find_lead(email, account_id, conn)


@router.get("/leads/{lead_id:int}", response_model=Lead)
async def get_lead(lead_id: ObjectId, account_id: AccountId, conn: ReadConn) -> Lead:
    return await _lead(conn, account_id, await service.get(conn, account_id, lead_id))


@router.patch("/leads/{lead_id:int}", response_model=Lead)
async def update_lead(
    lead_id: ObjectId, body: LeadProfile, account_id: AccountId, conn: WriteConn
) -> Lead:
    row = await service.update_profile(conn, account_id, lead_id, body)
    return await _lead(conn, account_id, row)
