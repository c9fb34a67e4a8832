"""Accounts and keys: creation, bootstrap, authentication."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.accounts import keys, repository
from openlead.clock import utcnow


class AccountError(Exception):
    """A CLI-level problem: an unknown account, a duplicate name, a bad key."""


@dataclass(frozen=True)
class Principal:
    account_id: int
    key_id: int


async def create_account(conn: AsyncConnection, name: str) -> int:
    name = name.strip()
    if not name:
        raise AccountError("An account needs a name.")
    if await repository.find_account_by_name(conn, name) is not None:
        raise AccountError(f"An account named {name!r} already exists.")
    return await repository.insert_account(conn, name, utcnow())


async def create_key(conn: AsyncConnection, account_id: int, key: str | None = None) -> str:
    """Store a key for the account and return it; this is the only time it is seen."""
    key = key if key is not None else keys.new_key()
    if len(key) < keys.MIN_KEY_LENGTH:
        raise AccountError(f"An API key must be at least {keys.MIN_KEY_LENGTH} characters.")
    hashed = keys.key_hash(key)
    await repository.insert_key(conn, account_id, keys.lookup_prefix(hashed), hashed, utcnow())
    return key


async def account_id_by_name(conn: AsyncConnection, name: str) -> int:
    row = await repository.find_account_by_name(conn, name)
    if row is None:
        raise AccountError(f"No account named {name!r}.")
    return row.id


async def bootstrap(conn: AsyncConnection, name: str, key: str | None) -> str | None:
    """On a database with no account, create the first one and return its key."""
    if await repository.count_accounts(conn) > 0:
        return None
    account_id = await create_account(conn, name)
    return await create_key(conn, account_id, key)


async def authenticate(conn: AsyncConnection, presented: str) -> Principal | None:
    hashed = keys.key_hash(presented)
    for row in await repository.active_keys_with_prefix(conn, keys.lookup_prefix(hashed)):
        if keys.matches(row.key_hash, hashed):
            return Principal(account_id=row.account_id, key_id=row.id)
    return None


async def revoke_key(conn: AsyncConnection, key_id: int) -> bool:
    return await repository.revoke_key(conn, key_id, utcnow())
