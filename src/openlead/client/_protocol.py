"""The SDK without I/O: requests to make, answers to read, and when to try again.

Every SDK operation is a generator. It yields *instructions* (make this request, sleep this
long, read the next leads from the input) and receives their outcome; it returns the
operation's result or raises a typed error. ``Client`` and ``AsyncClient`` are two small
drivers that carry the instructions out, one with blocking I/O and one with ``await``; the
rules (URLs, bodies, parsing, errors, retries, the import's batching and bookkeeping) exist
once, here and in ``_operations`` / ``_import``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import orjson
from pydantic import BaseModel, SecretStr, TypeAdapter

from openlead.client._errors import (
    NetworkError,
    OpenleadError,
    RequestTimeoutError,
    error_body,
    error_from_response,
    parse_retry_after,
)

T = TypeVar("T")


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP request, relative to the client's base URL."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: bytes | None = None
    # May be sent again after a failure that leaves its fate unknown (the connection broke
    # after the request went out): true for reads and for writes that are safe to repeat.
    idempotent: bool = False
    # Stream a successful answer's body into this file instead of keeping it.
    stream_to: BinaryIO | None = None
    # The path is from the server's root (``/healthz``), not from the API's base URL.
    root: bool = False

    def body(self) -> bytes | None:
        if self.content is not None:
            return self.content
        if self.json is None:
            return None
        return orjson.dumps(self.json, default=_reveal)


def _reveal(value: Any) -> Any:
    """A secret in a request body (a mailbox password) is a ``SecretStr`` until it is
    serialised, so no repr of the request, and no message made from one, shows it."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes
    url: str
    streamed_bytes: int = 0


@dataclass(frozen=True, slots=True)
class TransportFailure:
    """No answer. ``sent`` is False when the request certainly never reached the server (the
    connection could not be opened), True when it may have (it broke or timed out later)."""

    error: Exception
    sent: bool
    # A streamed answer broke after some of its body was written out: not repeatable.
    partial: bool = False


Outcome = ApiResponse | TransportFailure


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Pull:
    """Read up to ``count`` items from ``source`` (an iterator, or an async iterator for the
    async client); the driver sends back a list, empty at the end."""

    source: Any
    count: int


Instruction = ApiRequest | Sleep | Pull
Operation = Generator[Instruction, Any, T]


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a request again.

    A request is tried at most ``max_attempts`` times. It is sent again after a ``429`` (after
    ``Retry-After`` seconds when the server says, at most ``max_retry_after``), after a ``5xx``
    or a ``409``, and after a network failure; a write whose first attempt may have reached the
    server is repeated only when it is safe to repeat. The wait before attempt *n* + 1 is
    ``min(backoff_max, backoff_base * 2 ** (n - 1))``, times a random factor in [0.5, 1] when
    ``jitter`` is on.
    """

    max_attempts: int = 8
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    jitter: bool = True
    max_retry_after: float = 300.0
    retry_statuses: frozenset[int] = frozenset({409, 429, 500, 502, 503, 504})

    def backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        if self.jitter:
            delay *= random.uniform(0.5, 1.0)
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass
class Attempts:
    """What happened to one logical request over its attempts."""

    count: int = 0
    # Some failed attempt may have been carried out by the server without us hearing back.
    ambiguous: bool = False
    waited: float = 0.0
    failures: list[str] = field(default_factory=list)


def _openlead_failure(outcome: ApiResponse) -> bool:
    """An answer in openlead's own error shape: the server ran the request, failed and rolled
    back (the contract: a request that fails stores nothing)."""
    return error_body(outcome.content) is not None


def retry_delay(
    outcome: Outcome, request: ApiRequest, policy: RetryPolicy, attempt: int
) -> float | None:
    """Seconds to wait before trying ``request`` again, or None to give up (or for success)."""
    if attempt >= policy.max_attempts:
        return None
    if isinstance(outcome, TransportFailure):
        if outcome.partial or (outcome.sent and not request.idempotent):
            return None
        return policy.backoff(attempt)
    status = outcome.status
    if status < 400 or status not in policy.retry_statuses:
        return None
    if status == 429:
        after = parse_retry_after(outcome.headers)
        if after is None:
            return policy.backoff(attempt)
        return after if after <= policy.max_retry_after else None
    if status >= 500 and not (request.idempotent or _openlead_failure(outcome)):
        return None
    if status == 409 and (error_body(outcome.content) or {}).get("code") != "conflict":
        return None  # only a race the server rolled back is worth another try
    return policy.backoff(attempt)


def may_have_run(outcome: Outcome) -> bool:
    """A failed attempt that the server may nevertheless have carried out and committed."""
    if isinstance(outcome, TransportFailure):
        return outcome.sent
    # openlead's own 5xx rolled back; another 5xx (a proxy's 502/504) says nothing.
    return outcome.status >= 500 and not _openlead_failure(outcome)


def send(
    request: ApiRequest, policy: RetryPolicy, attempts: Attempts | None = None
) -> Generator[Instruction, Any, ApiResponse]:
    """Send ``request`` until it gets an answer to keep; return that answer (which may be an
    error status: the caller decides) or raise ``NetworkError`` when there was none."""
    attempts = attempts if attempts is not None else Attempts()
    while True:
        attempts.count += 1
        outcome: Outcome = yield request
        delay = retry_delay(outcome, request, policy, attempts.count)
        if delay is None:
            if isinstance(outcome, TransportFailure):
                raise network_error(outcome, request)
            return outcome
        attempts.ambiguous = attempts.ambiguous or may_have_run(outcome)
        attempts.failures.append(describe(outcome))
        attempts.waited += delay
        if delay > 0:
            yield Sleep(delay)


def describe(outcome: Outcome) -> str:
    if isinstance(outcome, TransportFailure):
        return f"{type(outcome.error).__name__}: {outcome.error}"
    return f"HTTP {outcome.status}"


def network_error(failure: TransportFailure, request: ApiRequest) -> NetworkError:
    import httpx

    cls = RequestTimeoutError if isinstance(failure.error, httpx.TimeoutException) else NetworkError
    error = cls(
        f"{type(failure.error).__name__}: {failure.error}",
        code="timeout" if cls is RequestTimeoutError else "network_error",
        method=request.method,
        url=request.path,
    )
    error.__cause__ = failure.error
    return error


# --------------------------------------------------------------------------- answers


def check(response: ApiResponse, request: ApiRequest) -> ApiResponse:
    if response.status >= 400:
        raise error_from_response(
            response.status, response.headers, response.content, request.method, response.url
        )
    return response


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def parse(response: ApiResponse, model: type[T] | Any) -> T:
    """The answer's JSON body as ``model`` (a pydantic model class or any type)."""
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate_json(response.content)  # type: ignore[return-value]
        adapter = _ADAPTERS.get(model)
        if adapter is None:
            adapter = _ADAPTERS[model] = TypeAdapter(model)
        return adapter.validate_json(response.content)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise OpenleadError(
            f"The server's answer could not be read: {exc}",
            code="invalid_response",
            status_code=response.status,
            url=response.url,
        ) from exc


def call(request: ApiRequest, policy: RetryPolicy, model: Any) -> Generator[Instruction, Any, Any]:
    """The common operation: send with retries, raise on an error status, parse the body."""
    response = check((yield from send(request, policy)), request)
    return parse(response, model)


def call_with(
    request: ApiRequest, policy: RetryPolicy, read: Callable[[ApiResponse], T]
) -> Generator[Instruction, Any, T]:
    response = check((yield from send(request, policy)), request)
    return read(response)


def drop_none(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def dump(value: Any) -> Any:
    """A request body part: pydantic models as their fields (unset ones left out)."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, list | tuple):
        return [dump(v) for v in value]
    return value
