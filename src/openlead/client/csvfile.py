"""Leads from a CSV file, as exported by spreadsheets and CRMs, read in constant memory.

``LeadCsv.open(path)`` works out the file's encoding and delimiter, maps its headers to lead
fields, and refuses a file it cannot import safely (duplicate headers, no email column, a
file that is not UTF-8) before anything is sent. ``leads()`` then streams the rows as lead
dicts ready for ``Client.import_leads``.

- **Encoding.** A byte-order mark says UTF-8 or UTF-16. Without one the file must be UTF-8:
  it is checked from end to end first (a fast pass), and a file that is not is refused with
  the line of the first bad byte and the advice to pass ``encoding`` (``cp1252`` for Excel on
  Windows, ``latin-1``). It is never guessed: a wrong guess turns names into mojibake that
  would then be stored and emailed.
- **Delimiter.** ``,``, ``;`` (Excel in much of Europe), tab or ``|``: the one that splits the
  header widest while the first rows keep its width. Quoted fields may hold delimiters and
  line breaks.
- **Headers** map case- and punctuation-insensitively (``E-mail``, ``Email Address``,
  ``first_name``, ``First Name`` ...; see ``SYNONYMS``); every other column becomes a custom
  field named by its header. ``mapping`` overrides: ``{"Mail": "email"}``,
  ``{"Job": "custom:title"}`` (a custom field under another name), ``{"Notes": "-"}``
  (ignored); a column may also be named by its 1-based number, ``"#7"``.
- **Rows.** Cells are trimmed and empty ones left out. Blank rows are ignored. A row with more
  non-empty cells than the header has columns cannot be read reliably and is reported as
  skipped (``MALFORMED_ROW``) without being sent.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STANDARD_FIELDS = (
    "email",
    "first_name",
    "last_name",
    "company_name",
    "location",
    "phone_number",
    "website",
    "linkedin_profile",
    "company_url",
)
MAX_CUSTOM_FIELDS = 200
MAX_CUSTOM_KEY = 100
MALFORMED_ROW = "Malformed row (more cells than the header has columns)"
DELIMITERS = (",", ";", "\t", "|")
SAMPLE_BYTES = 1 << 16
CHECK_CHUNK = 1 << 20
IGNORE = "-"
CUSTOM_PREFIX = "custom:"


def normalise_header(header: str) -> str:
    """``"E-mail Address"`` -> ``"emailaddress"``: case and punctuation do not matter."""
    return "".join(c for c in header.casefold() if c.isalnum())


_SYNONYM_LISTS: dict[str, tuple[str, ...]] = {
    "email": (
        "email",
        "emailaddress",
        "mail",
        "emailid",
        "workemail",
        "businessemail",
        "personalemail",
        "contactemail",
        "leademail",
        "primaryemail",
        "emails",
    ),
    "first_name": ("firstname", "first", "givenname", "fname", "forename"),
    "last_name": ("lastname", "last", "surname", "familyname", "lname"),
    "company_name": (
        "company",
        "companyname",
        "organization",
        "organisation",
        "organizationname",
        "organisationname",
        "employer",
        "accountname",
        "business",
        "businessname",
    ),
    "location": ("location", "city", "town"),
    "phone_number": (
        "phone",
        "phonenumber",
        "telephone",
        "telephonenumber",
        "tel",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "cellphone",
        "cell",
        "workphone",
        "directphone",
    ),
    "website": ("website", "websiteurl", "web", "url", "site", "homepage", "webpage"),
    "linkedin_profile": (
        "linkedin",
        "linkedinurl",
        "linkedinprofile",
        "linkedinprofileurl",
        "linkedinlink",
        "personlinkedinurl",
        "linkedinprofilelink",
    ),
    "company_url": (
        "companyurl",
        "companywebsite",
        "companywebsiteurl",
        "companysite",
        "companydomain",
        "companyhomepage",
    ),
}
# Every field also answers to its own name (``first_name`` -> ``firstname``).
SYNONYMS: dict[str, str] = {
    synonym: name for name, synonyms in _SYNONYM_LISTS.items() for synonym in synonyms
} | {normalise_header(name): name for name in STANDARD_FIELDS}


class CsvProblem(ValueError):
    """The file cannot be imported as it is; nothing was sent."""


@dataclass(frozen=True)
class Column:
    number: int  # 1-based, as a spreadsheet user counts
    header: str
    field: str | None  # a standard field
    custom_key: str | None  # or a custom field
    how: str  # "recognised", "mapped", "custom", "ignored", "no header"

    @property
    def target(self) -> str:
        if self.field:
            return self.field
        if self.custom_key is not None:
            return f"custom_fields[{self.custom_key!r}]"
        return "(ignored)"


class CsvLead(dict[str, Any]):
    """A lead read from the file: a plain dict to send, which also remembers its row."""

    __slots__ = ("cells", "line")

    def __init__(self, line: int, cells: list[str]) -> None:
        super().__init__()
        self.line = line
        self.cells = cells


@dataclass
class BadRow:
    line: int
    cells: list[str]
    reason: str


# --------------------------------------------------------------------------- encoding


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def check_utf8(path: Path) -> None:
    """Read the whole file once as UTF-8; a clear ``CsvProblem`` at the first bad byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 1
    with path.open("rb") as raw:
        while chunk := raw.read(CHECK_CHUNK):
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                data = exc.object
                bad = offset - pending + exc.start
                line = lines + chunk[: max(0, bad - offset)].count(b"\n")
                byte = data[exc.start] if exc.start < len(data) else 0
                raise CsvProblem(
                    f"{path.name} is not UTF-8: byte 0x{byte:02X} on line {line} (offset "
                    f"{bad}) is not valid UTF-8. Save the file as 'CSV UTF-8', or name its "
                    "encoding with --encoding (cp1252 for Excel on Windows, latin-1, ...)."
                ) from None
            lines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvProblem(
                f"{path.name} is not UTF-8: it ends in the middle of a character. Save it as "
                "'CSV UTF-8', or name its encoding with --encoding."
            ) from None


def _encoding(path: Path, requested: str | None) -> str:
    with path.open("rb") as raw:
        head = raw.read(4)
    bom = _bom_encoding(head)
    if requested and requested.lower() != "auto":
        try:
            name = codecs.lookup(requested).name
        except LookupError:
            raise CsvProblem(f"Unknown encoding {requested!r}.") from None
        if name == "utf-8" and bom == "utf-8-sig":
            return "utf-8-sig"
        return requested
    if bom:
        return bom
    check_utf8(path)
    return "utf-8"


# --------------------------------------------------------------------------- delimiter


def _records(sample: str, delimiter: str, complete: bool) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter))
    if not complete and len(rows) > 1:
        rows.pop()  # the sample may end inside the last record
    return [r for r in rows if any(cell.strip() for cell in r)]


def sniff_delimiter(sample: str, complete: bool = False) -> str:
    """The delimiter that splits the header into the most columns and keeps that width over
    the first rows; ``,`` for a file of one column."""
    best, best_score = ",", (-1.0, 0)
    for delimiter in DELIMITERS:
        rows = _records(sample, delimiter, complete)
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        body = rows[1:50]
        # Rows may lack trailing empty cells (some exporters drop them), never have more.
        fitting = sum(1 for r in body if len(r) <= width) / len(body) if body else 1.0
        score = (fitting, width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


# --------------------------------------------------------------------------- mapping


def _target(value: str) -> tuple[str | None, str | None]:
    """A ``--map`` target: (standard field, custom key); (None, None) ignores the column."""
    value = value.strip()
    if value in (IGNORE, "ignore", ""):
        return None, None
    if value.lower().startswith(CUSTOM_PREFIX):
        key = value[len(CUSTOM_PREFIX) :].strip()
        if not key:
            raise CsvProblem(f"'{value}': name the custom field after 'custom:'.")
        return None, key
    name = SYNONYMS.get(normalise_header(value))
    if name is None:
        raise CsvProblem(
            f"Unknown field '{value}' in a mapping: use one of {', '.join(STANDARD_FIELDS)}, "
            "'custom:NAME' for a custom field, or '-' to ignore the column."
        )
    return name, None


def _find(spec: str, headers: list[str]) -> int:
    """The column a ``--map`` names: its header (exact, else ignoring case and punctuation),
    or ``#N``."""
    if re.fullmatch(r"#\d+", spec.strip()):
        number = int(spec.strip()[1:])
        if not 1 <= number <= len(headers):
            raise CsvProblem(f"Column {spec} does not exist: the file has {len(headers)}.")
        return number - 1
    exact = [i for i, h in enumerate(headers) if h == spec.strip()]
    loose = [i for i, h in enumerate(headers) if normalise_header(h) == normalise_header(spec)]
    found = exact or loose
    if not found:
        raise CsvProblem(
            f"No column '{spec}' in the file; its columns are: "
            + ", ".join(f"'{h}'" for h in headers)
            + "."
        )
    if len(found) > 1:
        raise CsvProblem(
            f"'{spec}' names columns {', '.join(str(i + 1) for i in found)}; name one by its "
            f"number instead, e.g. '#{found[0] + 1}'."
        )
    return found[0]


def map_columns(headers: list[str], mapping: Mapping[str, str] | None = None) -> list[Column]:
    """Decide what each column becomes; a ``CsvProblem`` for anything ambiguous."""
    duplicates: dict[str, list[int]] = {}
    for i, header in enumerate(headers):
        if header:
            duplicates.setdefault(header, []).append(i + 1)
    repeated = {h: numbers for h, numbers in duplicates.items() if len(numbers) > 1}
    overrides: dict[int, tuple[str | None, str | None]] = {}
    for spec, target in (mapping or {}).items():
        overrides[_find(spec, headers)] = _target(target)
    unresolved = {
        h: numbers
        for h, numbers in repeated.items()
        if any(n - 1 not in overrides for n in numbers)
    }
    if unresolved:
        listed = "; ".join(
            f"'{h}' (columns {', '.join(map(str, numbers))})" for h, numbers in unresolved.items()
        )
        raise CsvProblem(
            f"Duplicate column headers: {listed}. Rename them in the file, or say what each "
            "is with --map '#N=FIELD' (a column by its number; '#N=-' ignores it)."
        )
    columns: list[Column] = []
    for i, header in enumerate(headers):
        if i in overrides:
            name, key = overrides[i]
            how = "mapped" if (name or key is not None) else "ignored"
            columns.append(Column(i + 1, header, name, key, how))
        elif not header:
            columns.append(Column(i + 1, header, None, None, "no header"))
        elif (name := SYNONYMS.get(normalise_header(header))) is not None:
            columns.append(Column(i + 1, header, name, None, "recognised"))
        else:
            columns.append(Column(i + 1, header, None, header, "custom"))
    _check_targets(columns, headers)
    return columns


def _check_targets(columns: list[Column], headers: list[str]) -> None:
    by_field: dict[str, list[Column]] = {}
    by_key: dict[str, list[Column]] = {}
    for column in columns:
        if column.field:
            by_field.setdefault(column.field, []).append(column)
        elif column.custom_key is not None:
            by_key.setdefault(column.custom_key, []).append(column)
    clashes = [(f, cs) for f, cs in by_field.items() if len(cs) > 1]
    clashes += [(f"custom field '{k}'", cs) for k, cs in by_key.items() if len(cs) > 1]
    if clashes:
        listed = "; ".join(
            " and ".join(f"'{c.header}' (column {c.number})" for c in cs) + f" are both {what}"
            for what, cs in clashes
        )
        raise CsvProblem(
            f"Columns clash: {listed}. Say which is which with --map, e.g. "
            f"--map '{clashes[0][1][1].header}=custom:{clashes[0][1][1].header}' or '=-' to "
            "ignore one."
        )
    if "email" not in by_field:
        shown = ", ".join(f"'{h}'" for h in headers if h) or "(none)"
        raise CsvProblem(
            f"No email column: none of the headers {shown} is an email header (Email, "
            "E-mail, Email Address, ...). Name it with --map 'COLUMN=email'."
        )
    long = [c for c in columns if c.custom_key is not None and len(c.custom_key) > MAX_CUSTOM_KEY]
    if long:
        raise CsvProblem(
            f"Column {long[0].number}'s header is {len(long[0].custom_key or '')} characters "
            f"long; a custom field name may have at most {MAX_CUSTOM_KEY}. Rename it with "
            f"--map '#{long[0].number}=custom:SHORTER'."
        )
    if len(by_key) > MAX_CUSTOM_FIELDS:
        raise CsvProblem(
            f"The file has {len(by_key)} columns that would be custom fields; a lead may have "
            f"at most {MAX_CUSTOM_FIELDS}. Leave some out with --map 'COLUMN=-'."
        )


# --------------------------------------------------------------------------- the file


@dataclass
class LeadCsv:
    path: Path
    encoding: str
    delimiter: str
    headers: list[str]
    columns: list[Column]
    size: int
    header_line: int
    blank_rows: int = 0
    rows_read: int = 0
    _raw: Any = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        encoding: str | None = None,
        delimiter: str | None = None,
        mapping: Mapping[str, str] | None = None,
    ) -> LeadCsv:
        path = Path(path)
        if not path.is_file():
            raise CsvProblem(f"No such file: {path}")
        chosen = _encoding(path, encoding)
        with path.open("rb") as raw:
            head = raw.read(SAMPLE_BYTES)
            complete = not raw.read(1)
        sample = head.decode(chosen, errors="ignore")
        if delimiter is not None:
            if delimiter in ("\\t", "tab", "TAB"):
                delimiter = "\t"
            if len(delimiter) != 1:
                raise CsvProblem(f"The delimiter must be one character, not {delimiter!r}.")
        else:
            delimiter = sniff_delimiter(sample, complete)
        headers, header_line = cls._header(path, chosen, delimiter)
        columns = map_columns(headers, mapping)
        return cls(path, chosen, delimiter, headers, columns, path.stat().st_size, header_line)

    @staticmethod
    def _header(path: Path, encoding: str, delimiter: str) -> tuple[list[str], int]:
        with path.open("r", encoding=encoding, newline="") as text:
            reader = csv.reader(text, delimiter=delimiter)
            for row in reader:
                if any(cell.strip() for cell in row):
                    return [cell.strip().lstrip("\ufeff").strip() for cell in row], reader.line_num
        raise CsvProblem(f"{path.name} is empty: it has no header row.")

    @property
    def bytes_read(self) -> int:
        """How far into the file reading has got (for a progress bar)."""
        raw = self._raw
        if raw is None or raw.closed:
            return self.size if self.rows_read else 0
        return raw.tell()

    def leads(self, on_bad_row: Callable[[BadRow], Any] | None = None) -> Iterator[CsvLead]:
        """The rows as lead dicts (``CsvLead``), lazily; rows that cannot be read reliably go
        to ``on_bad_row`` instead."""
        standard = [(c.number - 1, c.field) for c in self.columns if c.field]
        custom = [(c.number - 1, c.custom_key) for c in self.columns if c.custom_key is not None]
        width = len(self.headers)
        raw = self.path.open("rb")
        self._raw = raw
        text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
        try:
            reader = csv.reader(text, delimiter=self.delimiter)
            previous = 0
            for row in reader:
                line, previous = previous + 1, reader.line_num
                if line <= self.header_line:
                    continue
                if len(row) > width and any(cell.strip() for cell in row[width:]):
                    self.rows_read += 1
                    if on_bad_row is not None:
                        on_bad_row(BadRow(line, row, MALFORMED_ROW))
                    continue
                lead = CsvLead(line, row)
                n = len(row)
                for i, name in standard:
                    if i < n:
                        value = row[i].strip()
                        if value:
                            lead[name] = value
                values = {}
                for i, key in custom:
                    if i < n:
                        value = row[i].strip()
                        if value:
                            values[key] = value
                if values:
                    lead["custom_fields"] = values
                if not lead and not any(cell.strip() for cell in row):
                    self.blank_rows += 1
                    continue
                self.rows_read += 1
                yield lead
        finally:
            text.close()

    def describe(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "size": self.size,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "columns": [
                {"column": c.number, "header": c.header, "target": c.target, "how": c.how}
                for c in self.columns
            ],
        }


# --------------------------------------------------------------------------- read-ahead

_END = object()


def read_ahead(items: Iterable[Any], chunk: int = 400, depth: int = 4) -> Iterator[Any]:
    """``items``, read by a background thread up to ``depth`` chunks ahead.

    Reading and mapping the next rows then overlaps the wait for the server's answer to the
    previous batch, and memory stays bounded (``chunk * depth`` items). An error raised while
    reading is raised here, at the point the consumer reached. Closing the iterator (or
    leaving it) stops the thread."""
    chunks: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                chunks.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        batch: list[Any] = []
        try:
            for item in items:
                batch.append(item)
                if len(batch) >= chunk:
                    if not put(batch):
                        return
                    batch = []
            if batch and not put(batch):
                return
            put(_END)
        except BaseException as exc:
            put(exc)

    thread = threading.Thread(target=produce, name="openlead-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            value = chunks.get()
            if value is _END:
                return
            if isinstance(value, BaseException):
                raise value
            yield from value
    finally:
        stop.set()
        thread.join(timeout=5)
