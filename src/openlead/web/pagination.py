"""Offset and keyset pagination shared by every list endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, Select

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    after: int | None

    def of(self, query: Select[Any], id_column: ColumnElement[int]) -> Select[Any]:
        """``query`` cut to this page, in ``id_column`` order (the order cursors follow)."""
        if self.after is not None:
            query = query.where(id_column > self.after)
        return query.order_by(id_column).offset(self.offset).limit(self.limit)

    def answer(self, ids: list[int]) -> dict[str, Any]:
        """The paging fields of a list answer whose rows have these ids, in order."""
        return {"offset": self.offset, "limit": self.limit, "next_cursor": self.next_cursor(ids)}

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
