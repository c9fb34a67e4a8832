"""Request and response shapes of the block-list and unsubscribe endpoints."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from openlead.web.numbers import Integer
from openlead.web.text import line

MAX_ENTRIES_PER_REQUEST = 10_000
Entry = line(1000)


class BlockListAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emails: list[Entry] | None = Field(default=None, max_length=MAX_ENTRIES_PER_REQUEST)
    domains: list[Entry] | None = Field(default=None, max_length=MAX_ENTRIES_PER_REQUEST)


class DomainBlockListAdd(BaseModel):
    """SmartLead's shape: addresses and domains mixed in one list."""

    model_config = ConfigDict(extra="forbid", strict=True)

    domain_block_list: list[Entry] = Field(max_length=MAX_ENTRIES_PER_REQUEST)
    client_id: Integer | None = None


class BlockListAdded(BaseModel):
    ok: bool = True
    added_count: int
    already_blocked_count: int
    invalid: list[str]


class BlockEntry(BaseModel):
    id: int
    value: str
    kind: str
    source: str
    created_at: str


class BlockListPage(BaseModel):
    block_list: list[BlockEntry]
    offset: int
    limit: int
    next_cursor: str | None


class UnsubscribeEntry(BaseModel):
    id: int
    email: str
    source: str
    created_at: str


class UnsubscribePage(BaseModel):
    unsubscribes: list[UnsubscribeEntry]
    offset: int
    limit: int
    next_cursor: str | None


class Deleted(BaseModel):
    ok: bool = True
