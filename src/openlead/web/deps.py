"""FastAPI dependencies: the database, the caller's account and its transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.accounts.service import Principal, authenticate
from openlead.db.engine import Database
from openlead.web.errors import ApiError


def _database(request: Request) -> Database:
    return request.app.state.database


def _presented_key(request: Request) -> str | None:
    key = request.query_params.get("api_key")
    if key:
        return key
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key") or None


async def current_principal(request: Request) -> Principal:
    key = _presented_key(request)
    if not key:
        raise ApiError(
            401,
            "missing_api_key",
            "An API key is required: pass api_key, an Authorization bearer or X-API-Key.",
        )
    async with _database(request).read() as conn:
        principal = await authenticate(conn, key)
    if principal is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid or has been revoked.")
    quota = await request.app.state.rate_limiter.check(principal.key_id)
    if quota is not None:
        request.state.rate_quota = quota
    return principal


async def _write_transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    async with _database(request).write() as conn:
        yield conn


async def _read_transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    async with _database(request).read() as conn:
        yield conn


def account_id(principal: Annotated[Principal, Depends(current_principal)]) -> int:
    return principal.account_id


AccountId = Annotated[int, Depends(account_id)]
# scope="function" closes the transaction (commit or rollback) before the response is sent,
# so a failed commit becomes an error response instead of a lost write behind a 200.
WriteConn = Annotated[AsyncConnection, Depends(_write_transaction, scope="function")]
ReadConn = Annotated[AsyncConnection, Depends(_read_transaction, scope="function")]
