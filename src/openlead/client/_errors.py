"""Typed errors: one class per kind of failure, each carrying the server's error fields.

Every answer openlead refuses has the shape ``{"error": {"code", "message", "details"}}``;
the exception keeps those three, the HTTP status and the response headers. An answer that is
not in that shape (a proxy's HTML ``502``) still becomes a typed error, with the code
``http_<status>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from openlead.client._models import ImportSummary


class OpenleadError(Exception):
    """The base of every error the SDK raises."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "error",
        details: Any = None,
        status_code: int | None = None,
        headers: Mapping[str, str] | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details
        self.status_code = status_code
        self.headers: dict[str, str] = dict(headers or {})
        self.method = method
        self.url = url
        # Set when the error stopped ``import_leads``: what the import did before it stopped.
        self.summary: ImportSummary | None = None

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        status = f"{self.status_code} " if self.status_code else ""
        return f"{status}{self.code}: {self.message}{where}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status_code={self.status_code!r})"
        )


class APIError(OpenleadError):
    """The server answered with an error status."""


class ValidationError(APIError):
    """``400``: the request was refused as it was (its ``details`` say where)."""


BadRequestError = ValidationError


class AuthenticationError(APIError):
    """``401``: no API key, or a wrong or revoked one."""


class PermissionDeniedError(APIError):
    """``403``."""


class NotFoundError(APIError):
    """``404``: no such object (another account's objects are not found either)."""


class MethodNotAllowedError(APIError):
    """``405``."""


class ConflictError(APIError):
    """``409``: the request raced another one; it stored nothing."""


class PayloadTooLargeError(APIError):
    """``413``: the body is over the server's limit."""


class UnsupportedMediaTypeError(APIError):
    """``415``."""


class RateLimitedError(APIError):
    """``429``: over the key's rate limit; ``retry_after`` is in seconds (or None)."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers)


class ServerError(APIError):
    """``5xx``."""


class NetworkError(OpenleadError):
    """No answer: the connection failed, broke, or timed out."""


class RequestTimeoutError(NetworkError):
    """The server did not answer in time."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    409: ConflictError,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    429: RateLimitedError,
}


def error_body(content: bytes) -> dict[str, Any] | None:
    """The ``error`` object of an openlead error answer, or None for any other body."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        if isinstance(error.get("code"), str) and isinstance(error.get("message"), str):
            return error
    return None


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    method: str | None = None,
    url: str | None = None,
) -> APIError:
    cls = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    error = error_body(content)
    if error is not None:
        code, message, details = error["code"], error["message"], error.get("details")
    else:
        text = content[:300].decode("utf-8", "replace").strip()
        code, message, details = f"http_{status}", text or f"HTTP {status}", None
    return cls(
        message,
        code=code,
        details=details,
        status_code=status,
        headers=headers,
        method=method,
        url=url,
    )


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date; None when absent or bad."""
    value = None
    for name, v in headers.items():
        if name.lower() == "retry-after":
            value = v.strip()
            break
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    import time

    return max(0.0, when.timestamp() - time.time())
