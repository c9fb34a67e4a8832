"""Access log without secrets, and rate-limit headers on every authenticated answer."""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openlead.web.errors import error_response

access_log = logging.getLogger("openlead.access")
SECRET_PARAMETERS = frozenset({"api_key"})
# A parameter the API does not declare may be a key under another spelling (``API_KEY``,
# ``apikey``, ``api_key%3D…``): its value is never logged, and its name only when it is a
# plain name.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def redacted_query(query: bytes, shown: frozenset[str] = frozenset()) -> str:
    """The query string with only the values of ``shown`` parameters in clear."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    kept = [
        (k if _PLAIN_NAME.fullmatch(k) else "***", v if k in shown else "***") for k, v in pairs
    ]
    return urlencode(kept, safe="*")


def declared_query_parameters(app: Any) -> frozenset[str]:
    """The query parameters the API's schema declares, but the secret ones."""
    schema = getattr(app, "openapi", None)
    if schema is None:  # not behind the FastAPI app: nothing is shown
        return frozenset()
    paths = schema()["paths"]
    names = {
        parameter["name"]
        for path in paths.values()
        for operation in path.values()
        for parameter in operation.get("parameters", [])
        if parameter.get("in") == "query"
    }
    return frozenset(names - SECRET_PARAMETERS)


class AccessLogMiddleware:
    """Replaces uvicorn's access log, which prints the query string and so the api_key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.shown: frozenset[str] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.shown is None:
            self.shown = declared_query_parameters(scope.get("app"))
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                quota = scope.get("state", {}).get("rate_quota")
                if quota is not None and status != 429:
                    headers = list(message.get("headers", []))
                    headers += [
                        (k.lower().encode(), v.encode()) for k, v in quota.headers().items()
                    ]
                    message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            query = redacted_query(scope.get("query_string", b""), self.shown)
            path = scope.get("path", "") + (f"?{query}" if query else "")
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s" %d %.1fms',
                client[0],
                scope.get("method"),
                path,
                status,
                (time.perf_counter() - started) * 1000,
            )


class _BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413)


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Refuses a body over the limit with a 413 in the API's error shape.

    Replaces Starlette's limit, which answers a too-large declared Content-Length with a
    plain-text 413 whatever the app's handlers would say. A declared length over the limit is
    refused before any of the body is read; a streamed (chunked) body is counted as it
    arrives and refused once it passes the limit, before it is parsed.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "body_too_large", "The request body is larger than the server accepts."
        )
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # An HTTPException, so FastAPI's body reader passes it on to the handlers.
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)
