"""Number types for request bodies."""

from typing import Annotated

from pydantic import BeforeValidator, Field


def _integral(value: object) -> object:
    """JSON has one kind of number: ``3.0`` is the integer 3 (as JSON Schema says), while
    ``"3"`` and ``true`` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The largest id a body may carry: beyond 2**53 a JSON number is not read exactly everywhere,
# so the published schema's bound would not mean what it says.
MAX_BODY_ID = 2**53 - 1

# An integer in a strict model, as JSON Schema's "integer" means it.
Integer = Annotated[int, BeforeValidator(_integral)]


def integer(ge: int | None = None, le: int | None = None) -> type[int]:
    """``Integer`` within bounds. The bounds come before the validator, or the published
    schema would not carry them as minimum and maximum."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_integral)]  # type: ignore[return-value]
