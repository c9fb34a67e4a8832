"""CSV export of a campaign's leads (pure formatting; the rows come from the repository).

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which some
spreadsheets strip before looking) is prefixed with ``'`` so that it is shown, not run.

A batch is formatted a column at a time, and a column of text is looked at as one string: only
a column that holds a cell to escape or quote is then done cell by cell. The output is what
``csv.writer`` (``lineterminator="\\r\\n"``) writes for the cells ``safe_cell`` gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import repeat
from typing import Any

import orjson
from sqlalchemy.engine.processors import str_to_datetime

from openlead.clock import iso
from openlead.db.jsoncodec import exact, loads
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
# Each with how it shows at a cell's start in a column joined by NUL.
_CELL_STARTS = tuple((c, "\0" + c) for c in _FORMULA_STARTS)
_BOOLEANS = {False: "false", True: "true", None: "false"}  # SQLite gives 0 and 1: equal keys
_NONE = type(None)
_NUMBERS = frozenset({int, float, _NONE})
_TEXT = frozenset({str, _NONE})
_INEXACT = frozenset({float, dict, list})  # values orjson may read otherwise than json
_QUOTED_WHEN = re.compile('[",\r\n]').search  # what makes csv.writer quote a cell


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def header(custom_keys: Sequence[str]) -> list[str]:
    """Custom fields get a column each, named by the key where that name is free. A key whose
    name is taken (by a fixed column, or by another key) is prefixed with ``custom.`` until
    it is unique, so that an import of the file keeps every other key under its own name."""
    # Compared trimmed, as the CLI's import reads headers: " role" and "role" would clash.
    taken = set(FIXED_COLUMNS)
    names: dict[str, str] = {}
    # A key without spaces around it claims its name first: it is the one an import gives back.
    for key in sorted(custom_keys, key=lambda k: k != k.strip()):
        if key.strip() not in taken:
            names[key] = key
            taken.add(key.strip())
    for key in custom_keys:
        if key not in names:
            name = f"custom.{key}"
            while name.strip() in taken:
                name = f"custom.{name}"
            names[key] = name
            taken.add(name.strip())
    return [*FIXED_COLUMNS, *(names[key] for key in custom_keys)]


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _starts_formula(joined: str) -> bool:
    """Whether a cell of this NUL-joined column starts like a formula."""
    for first, cell_start in _CELL_STARTS:
        # A one-character search is much faster than a two-character one: it goes first.
        if first in joined and (cell_start in joined or joined.startswith(first)):
            return True
    return False


def _text_cells(values: Sequence[Any]) -> Sequence[str]:
    """``safe_cell`` and CSV quoting for a column of text (None for an empty cell)."""
    cells: Sequence[str] = ["" if v is None else v for v in values] if None in values else values
    joined = "\0".join(cells)
    if _starts_formula(joined):
        cells = ["'" + c if c.startswith(_FORMULA_STARTS) else c for c in cells]
    if '"' in joined or "\n" in joined or "\r" in joined:
        return [_quoted(c) if _QUOTED_WHEN(c) else c for c in cells]
    if "," in joined:
        return ['"' + c + '"' if "," in c else c for c in cells]
    return cells


def _value_cells(values: list[Any], kinds: set[type]) -> Sequence[str]:
    """A column of custom-field values, of these JSON types."""
    if kinds <= _TEXT:
        return _text_cells(values)
    if kinds <= _NUMBERS:
        if _NONE in kinds:
            return _text_cells(["" if v is None else str(v) for v in values])
        return _text_cells([*map(str, values)])
    return _text_cells([safe_cell(v) for v in values])


class _Stamps(dict[Any, str]):
    """Timestamps as ISO text, remembered: a campaign's leads share many of theirs."""

    def __missing__(self, value: str | datetime) -> str:
        if len(self) >= 4096:
            self.clear()
        if isinstance(value, str):
            if len(value) == 26 and value[10] == " " and value[19] == ".":
                # SQLite: the text SQLAlchemy stored, "YYYY-MM-DD HH:MM:SS.ffffff".
                text = value[:10] + "T" + value[11:23] + "Z"
            elif len(value) == 24 and value[10] == "T" and value[23] == "Z":
                text = value  # PostgreSQL: written in the database as iso() writes it
            else:
                text = iso(str_to_datetime(value)) or ""
        else:
            text = iso(value) or ""
        self[value] = text
        return text


class CsvWriter:
    """Formats an export's batches; one per export (it remembers timestamps it has seen)."""

    def __init__(self, custom_keys: Sequence[str]) -> None:
        self.custom_keys = list(custom_keys)
        self._stamps = _Stamps()

    def header(self) -> bytes:
        return (",".join(_text_cells(header(self.custom_keys))) + "\r\n").encode("utf-8")

    def columns(self, columns: Sequence[Sequence[Any]]) -> bytes:
        """A batch as ``repository.export_columns`` gives it."""
        ids, *texts, unsubscribed, blocked, created, updated, custom = columns
        if not ids:
            return b""
        stamp = self._stamps.__getitem__
        cells: list[Iterable[str]] = [
            map(str, ids),
            *map(_text_cells, texts),  # email, the profile fields, status
            map(_BOOLEANS.__getitem__, unsubscribed),
            map(_BOOLEANS.__getitem__, blocked),
            map(stamp, created),
            map(stamp, updated),
            *self._custom_columns(custom),
        ]
        lines = map(",".join, zip(*cells, strict=True))
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")

    def _custom_columns(self, texts: Sequence[str | None]) -> list[Sequence[str]]:
        if not self.custom_keys:
            return []
        try:
            objects = list(map(orjson.loads, texts))
        except (orjson.JSONDecodeError, TypeError):
            objects = [None if text is None else loads(text) for text in texts]
        if not all(objects):
            objects = [value or {} for value in objects]
        columns = []
        for key in self.custom_keys:
            values = list(map(dict.get, objects, repeat(key)))
            kinds = set(map(type, values))
            if not kinds.isdisjoint(_INEXACT) and not _exact_numbers(values, kinds):
                # What orjson may have read otherwise than the standard library: read again.
                for i, value in enumerate(values):
                    if not exact(value):
                        values[i] = loads(texts[i] or "{}").get(key)
                kinds = set(map(type, values))
            columns.append(_value_cells(values, kinds))
        return columns


def _exact_numbers(values: list[Any], kinds: set[type]) -> bool:
    """Whether the column holds only numbers (or nothing), all read as ``json`` reads them."""
    if not kinds <= _NUMBERS:
        return False
    numbers = [v for v in values if v is not None] if _NONE in kinds else values
    return not numbers or (exact(float(min(numbers))) and exact(float(max(numbers))))
