"""JSON for the database: written fast, and read fast and exactly as the standard library
reads it.

orjson is several times faster than ``json``, but reads an integer past 64 bits as a float and
refuses ``NaN``, infinities and lone surrogates, all of which ``json`` (SQLAlchemy's default,
and so what may have been stored) reads and writes. ``loads`` gives the standard library's
answer whenever orjson's could differ.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Past these, orjson reads an integer as a float.
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1


def exact(value: Any) -> bool:
    """False when orjson may have read this value otherwise than ``json`` would have."""
    kind = type(value)
    if kind is float:
        return _INT_MIN <= value <= _UINT_MAX
    if kind is dict:
        return all(map(exact, value.values()))
    if kind is list:
        return all(map(exact, value))
    return True


def dumps(value: Any) -> str:
    """JSON text, for a JSON column or a parameter that carries a batch (None is ``null``)."""
    return orjson.dumps(value).decode()


def loads(text: str | bytes) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
    return value if exact(value) else json.loads(text)
