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


# Every dependency here is ``async def`` although none awaits: FastAPI runs a plain ``def``
# dependency in its thread pool, two thread hand-offs (and a wait for the interpreter lock) per
# dependency per request.

# GET and HEAD read; every other method writes (the routes follow this, and WriteConn checks).
_READ_METHODS = frozenset({"GET", "HEAD"})


async def _required_key(request: Request) -> str:
    key = _presented_key(request)
    if not key:
        raise ApiError(
            401,
            "missing_api_key",
            "An API key is required: pass api_key, an Authorization bearer or X-API-Key.",
        )
    return key


async def _transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    """The request's one transaction, which authentication and the endpoint share: a read
    transaction for GET and HEAD, the write transaction for every other method.

    Authenticating in a transaction of its own cost a second pool checkout, BEGIN and COMMIT
    per request: about 1 ms, a twentieth of a 400-lead import (docs/performance.md).
    """
    database = _database(request)
    unit = database.read() if request.method in _READ_METHODS else database.write()
    async with unit as conn:
        yield conn


# scope="function" closes the transaction (commit or rollback) before the response is sent,
# so a failed commit becomes an error response instead of a lost write behind a 200.
_Transaction = Annotated[AsyncConnection, Depends(_transaction, scope="function")]


async def current_principal(
    request: Request, key: Annotated[str, Depends(_required_key)], conn: _Transaction
) -> Principal:
    principal = await authenticate(conn, key)
    if principal is None:
        raise ApiError(401, "invalid_api_key", "The API key is not valid or has been revoked.")
    quota = await request.app.state.rate_limiter.check(principal.key_id)
    if quota is not None:
        request.state.rate_quota = quota
    return principal


async def _write_connection(request: Request, conn: _Transaction) -> AsyncConnection:
    if request.method in _READ_METHODS:
        raise RuntimeError(f"{request.method} routes read; a write transaction was asked for")
    return conn


async def _read_connection(conn: _Transaction) -> AsyncConnection:
    return conn


async def account_id(principal: Annotated[Principal, Depends(current_principal)]) -> int:
    return principal.account_id


AccountId = Annotated[int, Depends(account_id)]
WriteConn = Annotated[AsyncConnection, Depends(_write_connection)]
ReadConn = Annotated[AsyncConnection, Depends(_read_connection)]


async def _own_write_transaction(request: Request) -> AsyncIterator[AsyncConnection]:
    async with _database(request).write() as conn:
        yield conn


# A write transaction whatever the method, for the public tracking links: a GET of an open
# pixel or a click records an event. No API key is read.
PublicWriteConn = Annotated[AsyncConnection, Depends(_own_write_transaction, scope="function")]


async def account_id_alone(request: Request, key: Annotated[str, Depends(_required_key)]) -> int:
    """The caller's account, checked in a short read transaction of its own, for an endpoint
    that must hold no transaction while it waits on something else (a mailbox's login test
    talks to an SMTP server for up to its timeout; a write transaction held meanwhile would
    stop every other write on SQLite)."""
    async with _database(request).read() as conn:
        return (await current_principal(request, key, conn)).account_id


AccountIdAlone = Annotated[int, Depends(account_id_alone)]
