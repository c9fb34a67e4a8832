"""On SQLite one process sends: the sender lock beside the database."""

from __future__ import annotations

import asyncio

from openlead.config import Settings
from openlead.sending.runner import sender_lock


def test_a_second_sender_waits_for_the_first(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'openlead.db'}")

    async def run() -> list[str]:
        order: list[str] = []
        stopping = asyncio.Event()
        async with sender_lock(settings, stopping) as first:
            assert first
            second_stop = asyncio.Event()

            async def second() -> None:
                async with sender_lock(settings, second_stop) as held:
                    order.append(f"second {held}")

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0.3)
            order.append("first done")
        await asyncio.wait_for(waiting, timeout=10)
        return order

    assert asyncio.run(run()) == ["first done", "second True"]
    assert (tmp_path / "openlead.db.sender-lock").exists()


def test_a_waiting_sender_gives_up_when_asked_to_stop(tmp_path):
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'openlead.db'}")

    async def run() -> bool:
        async with sender_lock(settings, asyncio.Event()):
            stop = asyncio.Event()
            stop.set()
            async with sender_lock(settings, stop) as held:
                return held

    assert asyncio.run(run()) is False


def test_postgresql_needs_no_lock():
    settings = Settings(database_url="postgresql+asyncpg://127.0.0.1/none")

    async def run() -> bool:
        async with (
            sender_lock(settings, asyncio.Event()) as held,
            sender_lock(settings, asyncio.Event()) as again,
        ):
            return held and again

    assert asyncio.run(run()) is True
