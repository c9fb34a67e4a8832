"""A real HTTP server that stands in front of a real openlead server and misbehaves on cue.

``FaultyProxy(upstream).start()`` listens on a free port (asyncio + h11, in a thread) and
forwards every request to ``upstream``, except that requests matching a rule get the rule's
next action instead:

- ``"pass"``: forward as usual;
- ``("status", 429, {"Retry-After": "1"})``: answer that status without forwarding;
- ``"drop_before"``: close the connection without forwarding (the request never arrived);
- ``"drop_after"``: forward, let the server answer (and commit), then close the client's
  connection without a byte of the answer: the lost response.

Nothing here mocks the client's network path: the SDK and the CLI talk HTTP over TCP to
this server, which talks HTTP over TCP to ``openlead serve``.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

import h11
import httpx

Action = Any  # "pass" | "drop_before" | "drop_after" | ("status", code, headers)
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Rule:
    method: str
    path: re.Pattern[str]
    actions: list[Action]


@dataclass
class Seen:
    method: str
    path: str
    action: str


@dataclass
class FaultyProxy:
    upstream: str  # e.g. http://127.0.0.1:8123
    rules: list[Rule] = field(default_factory=list)
    log: list[Seen] = field(default_factory=list)
    port: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.AbstractServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def on(self, method: str, path: str, actions: list[Action]) -> None:
        """Requests whose method matches and whose path (after /api/v1) matches the regular
        expression ``path`` take ``actions`` one by one; then they pass."""
        with self._lock:
            self.rules.append(Rule(method.upper(), re.compile(path), list(actions)))

    def seen(self, method: str, path: str) -> list[str]:
        pattern = re.compile(path)
        return [s.action for s in self.log if s.method == method and pattern.search(s.path)]

    def _take(self, method: str, path: str) -> Action:
        with self._lock:
            for rule in self.rules:
                if rule.method == method and rule.path.search(path) and rule.actions:
                    return rule.actions.pop(0)
        return "pass"

    # ----------------------------------------------------------------------- life

    def start(self) -> FaultyProxy:
        ready = threading.Event()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._http = httpx.AsyncClient(base_url=self.upstream, timeout=60)
            self._server = loop.run_until_complete(asyncio.start_server(self._serve, sock=sock))
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._http.aclose())
            loop.close()

        self._thread = threading.Thread(target=run, name="faulty-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    # ----------------------------------------------------------------------- HTTP

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(conn, reader)
                if request is None:
                    return
                method = request.method.decode()
                target = request.target.decode()
                path = target.split("?", 1)[0].removeprefix("/api/v1")
                action = self._take(method, path)
                label = action if isinstance(action, str) else f"status {action[1]}"
                self.log.append(Seen(method, path, label))
                if action == "drop_before":
                    return
                if isinstance(action, tuple):
                    _, status, headers = action
                    content = b'{"detail": "injected"}' if status != 503 else b"Service Unavailable"
                    await self._respond(conn, writer, status, list(headers.items()), content)
                else:
                    headers = [
                        (k.decode(), v.decode())
                        for k, v in request.headers
                        if k.decode().lower() not in HOP_HEADERS
                    ]
                    answer = await self._http.request(method, target, headers=headers, content=body)
                    if action == "drop_after":
                        return  # the server has answered (and committed); the client hears nothing
                    kept = [
                        (k, v) for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS
                    ]
                    await self._respond(conn, writer, answer.status_code, kept, answer.content)
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.RemoteProtocolError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _read_request(
        conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[h11.Request | None, bytes]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None, b""
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)

    @staticmethod
    async def _respond(
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        headers: list[tuple[str, str]],
        content: bytes,
    ) -> None:
        headers = [*headers, ("content-length", str(len(content)))]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=content)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
