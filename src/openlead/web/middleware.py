"""Access log without secrets, and rate-limit headers on every authenticated answer."""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("openlead.access")
SECRET_PARAMETERS = frozenset({"api_key"})


def redacted_query(query: bytes) -> str:
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return urlencode([(k, "***" if k in SECRET_PARAMETERS else v) for k, v in pairs], safe="*")


class AccessLogMiddleware:
    """Replaces uvicorn's access log, which prints the query string and so the api_key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            query = redacted_query(scope.get("query_string", b""))
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
