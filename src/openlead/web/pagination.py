"""Offset and keyset pagination shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    after: int | None

    def next_cursor(self, ids: list[int]) -> str | None:
        """A cursor for the next page, or None when this page was the last."""
        if len(ids) < self.limit or not ids:
            return None
        return str(ids[-1])


async def page_params(
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    after: Annotated[
        int | None, Query(ge=0, le=2**62, description="Keyset cursor: a next_cursor value")
    ] = None,
) -> Page:
    return Page(offset=offset, limit=limit, after=after)


# async: FastAPI would run a plain def in its thread pool (see web/deps.py).
PageParams = Annotated[Page, Depends(page_params)]
