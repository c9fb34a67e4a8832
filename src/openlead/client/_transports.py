"""Serving the SDK from an ASGI app in this process, without a network.

``httpx.ASGITransport`` serves ``AsyncClient`` but does not run the app's lifespan (openlead
opens its database there). ``lifespan(app)`` runs it around a block; ``SyncASGITransport``
serves the blocking ``Client`` from an app running on an event loop in a background thread,
lifespan included (as Starlette's TestClient does).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import httpx


class LifespanError(RuntimeError):
    pass


class _Lifespan:
    """The ASGI lifespan protocol, driven from outside the app."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.supported = True

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        try:
            await self.app(scope, self.to_app.get, self.from_app.put)
        except BaseException:
            # An app without lifespan support raises on the scope; one that fails to start
            # says so with lifespan.startup.failed first.
            self.supported = False
            await self.from_app.put({"type": "lifespan.unsupported"})
            raise

    async def _expect(self, event: str) -> None:
        message = await self.from_app.get()
        kind = message.get("type")
        if kind == "lifespan.unsupported":
            return
        if kind != f"lifespan.{event}.complete":
            raise LifespanError(f"{event} failed: {message.get('message', kind)}")

    async def startup(self) -> None:
        self.task = asyncio.create_task(self._run())
        await self.to_app.put({"type": "lifespan.startup"})
        await self._expect("startup")

    async def shutdown(self) -> None:
        if self.task is None:
            return
        if self.supported and not self.task.done():
            await self.to_app.put({"type": "lifespan.shutdown"})
            await self._expect("shutdown")
        with suppress(BaseException):
            await self.task


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[Any]:
    """Run an ASGI app's startup and shutdown around a block::

    async with lifespan(app):
        async with AsyncClient(transport=httpx.ASGITransport(app=app)) as client: ...
    """
    manager = _Lifespan(app)
    await manager.startup()
    try:
        yield app
    finally:
        await manager.shutdown()


class SyncASGITransport(httpx.BaseTransport):
    """A blocking transport that serves requests from an ASGI app in a background thread.

    ``Client(transport=SyncASGITransport(app))`` talks to the app in process. The app's
    lifespan runs when the transport is made (``lifespan=False`` to skip it) and ends when it
    is closed (``Client.close()`` closes it).
    """

    def __init__(self, app: Any, *, lifespan: bool = True, **asgi_options: Any) -> None:
        self._inner = httpx.ASGITransport(app=app, **asgi_options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="openlead-asgi", daemon=True
        )
        self._thread.start()
        self._lifespan: _Lifespan | None = None
        self._closed = False
        if lifespan:
            self._lifespan = self._call(self._start(app))

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    @staticmethod
    async def _start(app: Any) -> _Lifespan:
        manager = _Lifespan(app)
        await manager.startup()
        return manager

    async def _handle(self, request: httpx.Request) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        response = await self._inner.handle_async_request(request)
        try:
            content = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        return response.status_code, response.headers.raw, content

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("The transport is closed.")
        body = request.read()
        inner = httpx.Request(request.method, request.url, headers=request.headers, content=body)
        status, headers, content = self._call(self._handle(inner))
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self._lifespan is not None:
                self._call(self._lifespan.shutdown())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()
