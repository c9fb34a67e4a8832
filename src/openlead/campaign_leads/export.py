"""CSV export of a campaign's leads (pure formatting; the rows come from the repository).

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets strip before looking) is prefixed with ``'`` so that it is shown, not run.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from openlead.clock import iso
from openlead.leads.schemas import PROFILE_FIELDS

FIXED_COLUMNS = (
    "id",
    "email",
    *PROFILE_FIELDS,
    "status",
    "is_unsubscribed",
    "is_blocked",
    "created_at",
    "updated_at",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def header(custom_keys: Sequence[str]) -> list[str]:
    """Custom fields get a column each; one named like a fixed column is prefixed."""
    return [*FIXED_COLUMNS, *(k if k not in FIXED_COLUMNS else f"custom.{k}" for k in custom_keys)]


def _cells(row: Any, custom_keys: Sequence[str]) -> list[str]:
    custom = row.custom_fields or {}
    updated = max(row.updated_at, row.profile_updated_at)
    fixed = [
        row.id,
        row.email,
        *(getattr(row, f) for f in PROFILE_FIELDS),
        row.status,
        bool(row.is_unsubscribed),
        bool(row.is_blocked),
        iso(row.created_at),
        iso(updated),
    ]
    return [safe_cell(v) for v in fixed] + [safe_cell(custom.get(k)) for k in custom_keys]


def csv_chunk(rows: Iterable[Any], custom_keys: Sequence[str], with_header: bool = False) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if with_header:
        writer.writerow([safe_cell(c) for c in header(custom_keys)])
    writer.writerows(_cells(row, custom_keys) for row in rows)
    return buffer.getvalue().encode("utf-8")
