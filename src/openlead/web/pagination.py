"""Offset and keyset pagination shared by every list endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query
from sqlalchemy import ColumnElement, Select

MAX_LIMIT = 1000
T = TypeVar("T")


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int
    after: int | None

    @property
    def fetched(self) -> int:
        """Rows to read for this page: one more than it shows, which tells whether another
        page follows (so that ``next_cursor`` is null on the last page, even a full one)."""
        return self.limit + 1

    def of(self, query: Select[Any], id_column: ColumnElement[int]) -> Select[Any]:
        """``query`` cut to this page and one row more, in ``id_column`` order (the order
        cursors follow)."""
        if self.after is not None:
            query = query.where(id_column > self.after)
        return query.order_by(id_column).offset(self.offset).limit(self.fetched)

    def rows(self, fetched: Sequence[T]) -> list[T]:
        """The rows this page shows, of those read for it."""
        return list(fetched[: self.limit])

    def answer(self, ids: Sequence[int]) -> dict[str, Any]:
        """The paging fields of a list answer, from the ids of the rows read for it, in order."""
        return {"offset": self.offset, "limit": self.limit, "next_cursor": self.next_cursor(ids)}

    def next_cursor(self, ids: Sequence[int]) -> str | None:
        """A cursor for the next page, from the ids of the rows read for this one; None when
        this page is the last."""
        if len(ids) <= self.limit:
            return None
        return str(ids[self.limit - 1])


def _page_params(default_limit: int) -> Callable[..., Awaitable[Page]]:
    async def page_params(
        offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = default_limit,
        after: Annotated[
            int | None, Query(ge=0, le=2**62, description="Keyset cursor: a next_cursor value")
        ] = None,
    ) -> Page:
        return Page(offset=offset, limit=limit, after=after)

    return page_params


page_params = _page_params(100)
# For a list that is seldom longer than a page: by default the longest page, so that a client
# unaware of paging sees the whole of an ordinary list.
long_page_params = _page_params(MAX_LIMIT)


# async: FastAPI would run a plain def in its thread pool (see web/deps.py).
PageParams = Annotated[Page, Depends(page_params)]
LongPageParams = Annotated[Page, Depends(long_page_params)]
