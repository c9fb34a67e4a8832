"""The one error shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from openlead.db.errors import DatabaseUnavailable, Momentary, describe, momentary
from openlead.web.text import CLOCK, FREE_TEXT, HOST, NAME, NO_CONTROL, NO_NUL

log = logging.getLogger("openlead.errors")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# Documented on every route; a declared 4XX also stops FastAPI from advertising a 422 that
# this API never sends.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {
        "model": ErrorBody,
        "description": "A client error: 400 bad request, 401 no or wrong API key, 404 not "
        "found, 409 conflict, 413 body too large, 415 body not JSON, 429 rate limited.",
    },
    "503": {
        "model": ErrorBody,
        "description": "database_busy (another transaction held a lock for longer than the "
        "server waits) or database_unavailable (no connection to the database could be made): "
        "nothing was stored, and the request may be sent again after Retry-After.",
    },
}


class ApiError(Exception):
    """An error the client can act on; raised by services and endpoints."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


class NotFound(ApiError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found.")


class BadRequest(ApiError):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(400, code, message, details)


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


MAX_LOCATION_PART = 60


def _part(part: Any) -> str:
    """One step of a location, safe to print: a dict key is client input, so it is cut short
    and its control characters are escaped rather than echoed."""
    text = str(part)
    if len(text) > MAX_LOCATION_PART:
        text = text[:MAX_LOCATION_PART] + "..."
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [_part(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


_PATTERN_MESSAGES = {
    NO_CONTROL: "must be one line without control characters (no line breaks, tabs or NUL)",
    FREE_TEXT: "must not contain control characters other than line breaks and tabs",
    NO_NUL: "must not contain NUL",
    NAME: "must be one line with a visible character and without control characters",
    HOST: "must be a host name (letters, digits, dots and hyphens) or an IP address",
    CLOCK: 'must be a time of day as "HH:MM", from "00:00" to "24:00"',
}


def _msg(error: dict[str, Any]) -> str:
    """Pydantic's message, except where it would show a regular expression to a human."""
    if error.get("type") == "string_pattern_mismatch":
        pattern = (error.get("ctx") or {}).get("pattern")
        if pattern in _PATTERN_MESSAGES:
            return _PATTERN_MESSAGES[pattern]
    return str(error.get("msg", "invalid value"))


def _describe(error: dict[str, Any]) -> str:
    where = _location(tuple(error.get("loc", ())))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"Unknown field '{where}'."
    if kind == "missing":
        return f"Missing required field '{where}'."
    if kind in ("json_invalid", "json_type"):
        return "The request body is not valid JSON."
    return f"'{where}': {_msg(error)}."


def _safe_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Echoing the rejected input back could return megabytes; the location says enough.
    return [
        {"loc": _location(tuple(e.get("loc", ()))), "type": e.get("type"), "msg": _msg(e)}
        for e in errors[:50]
    ]


def _body_problem(exc: RequestValidationError, errors: list[dict[str, Any]]) -> JSONResponse | None:
    """The body as a whole is wrong: not sent as JSON, absent, or not a JSON object.

    A problem in the path or the query is told first: it says the request went to the wrong
    place, which makes its body beside the point."""
    if any(tuple(e.get("loc", ()))[:1] != ("body",) for e in errors):
        return None
    if isinstance(exc.body, bytes | bytearray):
        # FastAPI parses JSON only when the content type says so; these bytes were not parsed.
        return error_response(
            415,
            "unsupported_media_type",
            "The request body must be JSON, sent with Content-Type: application/json.",
        )
    if not any(tuple(error.get("loc", ())) == ("body",) for error in errors):
        return None
    if exc.body is None:  # no body at all, or JSON null
        return error_response(400, "missing_body", "The request needs a JSON object as its body.")
    return error_response(400, "invalid_request", "The request body must be a JSON object.")


async def _validation_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") in ("json_invalid", "json_type") for e in errors):
        return error_response(400, "malformed_json", "The request body is not valid JSON.")
    body_problem = _body_problem(exc, errors)
    if body_problem is not None:
        return body_problem
    message = _describe(errors[0]) if errors else "Invalid request."
    if len(errors) > 1:
        message = f"{message[:-1]} (and {len(errors) - 1} more problems)."
    return error_response(400, "invalid_request", message, _safe_details(errors))


async def _api_error_handler(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


_HTTP_CODES = {
    # FastAPI's only 400 of its own: a JSON body it could not decode (bad UTF-8, too deep).
    400: ("malformed_json", "The request body is not valid JSON."),
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "Method not allowed on this endpoint."),
    413: ("body_too_large", "The request body is larger than the server accepts."),
}


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method the path answers to. Starlette's 405 names only the first route that
    matched the path, so ``POST /campaigns`` would hide ``GET /campaigns``."""
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    )


async def _http_error_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return error_response(exc.status_code, code, message, headers=headers)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "The server failed; the request stored nothing.")


# What a statement can raise: through SQLAlchemy, or from a driver called directly
# (db/driver.py, the SQLite BEGIN in db/engine.py); and a connection that could not be made.
_DATABASE_FAILURES = (
    sa_exc.DBAPIError,
    sa_exc.TimeoutError,
    sqlite3.Error,
    asyncpg.PostgresError,
    DatabaseUnavailable,
)
_MOMENTARY: dict[Momentary, tuple[int, str, str]] = {
    "busy": (
        1,
        "database_busy",
        "The database was busy: another transaction held a lock for longer than the server "
        "waits for one. Nothing was stored; send the request again.",
    ),
    "unreachable": (
        2,
        "database_unavailable",
        "The database cannot be reached at the moment. Nothing was stored; send the request again.",
    ),
}


async def _database_failure_handler(request: Request, exc: Exception) -> JSONResponse:
    reason = momentary(exc)
    if reason is None:
        return await _unexpected_handler(request, exc)
    retry_after, code, message = _MOMENTARY[reason]
    log.warning("database %s on %s %s: %s", reason, request.method, request.url.path, describe(exc))
    return error_response(503, code, message, headers={"Retry-After": str(retry_after)})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)  # type: ignore[arg-type]
    for failure in _DATABASE_FAILURES:
        app.add_exception_handler(failure, _database_failure_handler)
    app.add_exception_handler(Exception, _unexpected_handler)
