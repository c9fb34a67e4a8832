"""The one error shape: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("openlead.errors")


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


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _describe(error: dict[str, Any]) -> str:
    where = _location(tuple(error.get("loc", ())))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return f"Unknown field '{where}'."
    if kind == "missing":
        return f"Missing required field '{where}'."
    if kind in ("json_invalid", "json_type"):
        return "The request body is not valid JSON."
    return f"'{where}': {error.get('msg', 'invalid value')}."


def _safe_details(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Echoing the rejected input back could return megabytes; the location says enough.
    return [
        {"loc": _location(tuple(e.get("loc", ()))), "type": e.get("type"), "msg": e.get("msg")}
        for e in errors[:50]
    ]


async def _validation_handler(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    if any(e.get("type") in ("json_invalid", "json_type") for e in errors):
        return error_response(400, "malformed_json", "The request body is not valid JSON.")
    message = _describe(errors[0]) if errors else "Invalid request."
    if len(errors) > 1:
        message = f"{message[:-1]} (and {len(errors) - 1} more problems)."
    return error_response(400, "invalid_request", message, _safe_details(errors))


async def _api_error_handler(_request: Request, exc: ApiError) -> JSONResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


_HTTP_CODES = {
    404: ("not_found", "No such endpoint."),
    405: ("method_not_allowed", "Method not allowed on this endpoint."),
    413: ("body_too_large", "The request body is larger than the server accepts."),
}


async def _http_error_handler(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
    return error_response(exc.status_code, code, message, headers=exc.headers)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "The server failed; the request stored nothing.")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, _api_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error_handler)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_handler)
