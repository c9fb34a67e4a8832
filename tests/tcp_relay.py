"""A TCP relay in front of a real PostgreSQL that can be cut and restored: the database going
out of reach and coming back, as a restart or a network fault would, without touching the
machine's PostgreSQL service, which other tests share.

``TcpRelay(host, port).up()`` listens on a free port (asyncio, in a thread) and relays every
connection to ``host:port``. ``down()`` stops listening (new connections are refused) and
cuts every relayed connection; ``up()`` listens on the same port again; ``with cut():`` is
the one, then the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support import free_port


class TcpRelay:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def _call(self, coroutine) -> None:  # type: ignore[no-untyped-def]
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def up(self) -> TcpRelay:
        self._call(self._listen())
        return self

    def down(self) -> None:
        self._call(self._cut())

    @contextmanager
    def cut(self) -> Iterator[None]:
        """Out of reach for the block, back after it."""
        self.down()
        try:
            yield
        finally:
            self.up()

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._relay, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, upstream_writer))
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            target.write(data)
            await target.drain()
    finally:
        target.transport.abort()
