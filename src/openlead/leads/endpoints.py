"""HTTP endpoints for leads."""

from __future__ import annotations

from fastapi import APIRouter

from openlead.leads import service
from openlead.leads.schemas import ImportRequest, ImportResult
from openlead.web.deps import AccountId, WriteConn
from openlead.web.ids import ObjectId

router = APIRouter(tags=["leads"])


@router.post("/campaigns/{campaign_id}/leads", response_model=ImportResult)
async def import_leads(
    campaign_id: ObjectId, body: ImportRequest, account_id: AccountId, conn: WriteConn
) -> ImportResult:
    return await service.import_leads(conn, account_id, campaign_id, body)
