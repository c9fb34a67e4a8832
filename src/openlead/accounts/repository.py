"""SQL for accounts and API keys."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from openlead.db.tables import accounts, api_keys


async def count_accounts(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.count()).select_from(accounts))).scalar_one()


async def find_account_by_name(conn: AsyncConnection, name: str) -> Row | None:
    return (await conn.execute(select(accounts).where(accounts.c.name == name))).first()


async def insert_account(conn: AsyncConnection, name: str, now: datetime) -> int:
    result = await conn.execute(
        insert(accounts).values(name=name, created_at=now).returning(accounts.c.id)
    )
    return result.scalar_one()


async def insert_key(
    conn: AsyncConnection, account_id: int, prefix: str, key_hash: str, now: datetime
) -> int:
    result = await conn.execute(
        insert(api_keys)
        .values(account_id=account_id, prefix=prefix, key_hash=key_hash, created_at=now)
        .returning(api_keys.c.id)
    )
    return result.scalar_one()


async def active_keys_with_prefix(conn: AsyncConnection, prefix: str) -> list[Row]:
    query = select(api_keys.c.id, api_keys.c.account_id, api_keys.c.key_hash).where(
        api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None)
    )
    return list((await conn.execute(query)).all())


async def list_keys(conn: AsyncConnection, account_id: int | None) -> list[Row]:
    query = (
        select(api_keys, accounts.c.name.label("account_name"))
        .join(accounts, accounts.c.id == api_keys.c.account_id)
        .order_by(api_keys.c.id)
    )
    if account_id is not None:
        query = query.where(api_keys.c.account_id == account_id)
    return list((await conn.execute(query)).all())


async def revoke_key(conn: AsyncConnection, key_id: int, now: datetime) -> bool:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount == 1
