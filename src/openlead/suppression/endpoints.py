"""HTTP endpoints for the block list and the unsubscribe list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from openlead.clock import iso
from openlead.suppression import service
from openlead.suppression.schemas import (
    BlockEntry,
    BlockListAdd,
    BlockListAdded,
    BlockListPage,
    Deleted,
    DomainBlockListAdd,
    UnsubscribeEntry,
    UnsubscribePage,
)
from openlead.web.deps import AccountId, ReadConn, WriteConn
from openlead.web.ids import ObjectId
from openlead.web.pagination import PageParams
from openlead.web.text import line

router = APIRouter(tags=["suppression"])
Search = Annotated[line(320) | None, Query(description="Part of the address or domain")]


def _added(outcome: service.BlockOutcome) -> BlockListAdded:
    return BlockListAdded(
        added_count=outcome.added_count,
        already_blocked_count=outcome.already_blocked_count,
        invalid=outcome.invalid,
    )


@router.post("/leads/block-list", response_model=BlockListAdded)
async def add_to_block_list(
    body: BlockListAdd, account_id: AccountId, conn: WriteConn
) -> BlockListAdded:
    outcome = await service.block(conn, account_id, body.emails or [], body.domains or [])
    return _added(outcome)


@router.post("/leads/add-domain-block-list", response_model=BlockListAdded, summary="compat")
async def add_domain_block_list(
    body: DomainBlockListAdd, account_id: AccountId, conn: WriteConn
) -> BlockListAdded:
    emails, domains = service.split_mixed(body.domain_block_list)
    return _added(await service.block(conn, account_id, emails, domains))


@router.get("/leads/block-list", response_model=BlockListPage)
async def list_block_list(
    account_id: AccountId, conn: ReadConn, page: PageParams, search: Search = None
) -> BlockListPage:
    rows = await service.list_blocks(conn, account_id, search, page)
    return BlockListPage(
        block_list=[
            BlockEntry(
                id=r.id,
                value=r.value,
                kind=r.kind,
                source=r.source,
                created_at=iso(r.created_at) or "",
            )
            for r in page.rows(rows)
        ],
        **page.answer([r.id for r in rows]),
    )


@router.delete("/leads/block-list/{entry_id:int}", response_model=Deleted)
async def delete_block_list_entry(
    entry_id: ObjectId, account_id: AccountId, conn: WriteConn
) -> Deleted:
    await service.unblock(conn, account_id, entry_id)
    return Deleted()


@router.get("/leads/unsubscribes", response_model=UnsubscribePage)
async def list_unsubscribes(
    account_id: AccountId, conn: ReadConn, page: PageParams, search: Search = None
) -> UnsubscribePage:
    rows = await service.list_unsubscribes(conn, account_id, search, page)
    return UnsubscribePage(
        unsubscribes=[
            UnsubscribeEntry(
                id=r.id, email=r.email, source=r.source, created_at=iso(r.created_at) or ""
            )
            for r in page.rows(rows)
        ],
        **page.answer([r.id for r in rows]),
    )


@router.delete("/leads/unsubscribes/{entry_id:int}", response_model=Deleted)
async def delete_unsubscribe(entry_id: ObjectId, account_id: AccountId, conn: WriteConn) -> Deleted:
    await service.resubscribe(conn, account_id, entry_id)
    return Deleted()
