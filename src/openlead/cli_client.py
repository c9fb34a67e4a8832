"""The client commands of ``openlead``: ``leads``, ``campaigns`` and ``block``.

They talk to a running server through the SDK (``--url``/``--api-key``, or ``OPENLEAD_URL``
and ``OPENLEAD_API_KEY``); see docs/sdk-and-cli.md. Building the command line imports only
typer: the SDK, rich and the CSV reader are loaded when a client command runs, so the server
commands do not pay for them (and ``openlead.cli`` loads the server only for its own).
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from openlead.client import Client, ImportSummary, SkippedLead
    from openlead.client.csvfile import BadRow, LeadCsv

leads_app = typer.Typer(
    help="Import, export and manage the leads of a campaign.", no_args_is_help=True
)
campaigns_app = typer.Typer(help="List and create campaigns.", no_args_is_help=True)
block_app = typer.Typer(help="The account's block list.", no_args_is_help=True)

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="OPENLEAD_URL",
        help="The API's base URL, e.g. http://127.0.0.1:8000/api/v1 [env: OPENLEAD_URL]",
        show_envvar=False,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="OPENLEAD_API_KEY",
        help="The API key [env: OPENLEAD_API_KEY]",
        show_envvar=False,
    ),
]
CampaignId = Annotated[int, typer.Option("--campaign", "-c", help="The campaign's id", min=1)]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")]


def register(app: typer.Typer) -> None:
    app.add_typer(leads_app, name="leads")
    app.add_typer(campaigns_app, name="campaigns")
    app.add_typer(block_app, name="block")


# --------------------------------------------------------------------------- shared


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _out() -> Console:
    from rich.console import Console

    # Never narrower than 100 columns: skip reasons must not be cut in a pipe or a log.
    console = Console(highlight=False)
    if console.width < 100:
        console = Console(highlight=False, width=100)
    return console


def _fail(message: str, code: int = 1) -> typer.Exit:
    _err().print(f"[bold red]Error:[/] {message}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def _client(url: str | None, api_key: str | None) -> Client:
    from openlead.client import Client
    from openlead.client._client import resolve_api_key

    if not resolve_api_key(api_key):
        raise _fail("No API key: pass --api-key or set OPENLEAD_API_KEY.")
    return Client(url, api_key)


def _api_error(exc: Exception) -> typer.Exit:
    from openlead.client import OpenleadError

    if isinstance(exc, OpenleadError):
        message = f"{exc.message} ({exc.code}"
        message += f", HTTP {exc.status_code})" if exc.status_code else ")"
        if exc.code == "invalid_request" and isinstance(exc.details, list):
            message += "".join(
                f"\n  {d.get('loc')}: {d.get('msg')}"
                for d in exc.details[:10]
                if isinstance(d, dict)
            )
        return _fail(message)
    return _fail(str(exc))


def _echo_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


# --------------------------------------------------------------------------- leads import


def _parse_maps(values: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for value in values:
        column, sep, target = value.rpartition("=")
        if not sep or not column.strip():
            raise _fail(
                f"--map {value!r}: write it as 'COLUMN=FIELD' (or 'COLUMN=custom:KEY', 'COLUMN=-')."
            )
        mapping[column.strip()] = target.strip()
    return mapping


def _parse_settings(values: list[str]) -> dict[str, bool] | None:
    from openlead.client import ImportSettings

    names = set(ImportSettings.model_fields)
    settings: dict[str, bool] = {}
    for value in values:
        for part in value.split(","):
            name, _, flag = part.strip().partition("=")
            name = name.strip().replace("-", "_")
            if not name:
                continue
            if name not in names:
                raise _fail(
                    f"Unknown setting '{name}': the settings are {', '.join(sorted(names))}."
                )
            flag = flag.strip().lower() or "true"
            if flag not in ("true", "false", "1", "0", "yes", "no"):
                raise _fail(f"--settings {part!r}: the value must be true or false.")
            settings[name] = flag in ("true", "1", "yes")
    return settings or None


def _skipped_path(path: Path) -> Path:
    """``leads.csv`` -> ``leads.skipped.csv``, beside it."""
    if path.suffix.lower() == ".csv":
        return path.with_name(path.name[: -len(path.suffix)] + ".skipped.csv")
    return path.with_name(path.name + ".skipped.csv")


class _SkippedFile:
    """FILE.skipped.csv: each skipped row with its line and reason, then its cells as read,
    in the input's own encoding and delimiter. Written as the import goes."""

    def __init__(self, path: Path, source: LeadCsv) -> None:
        self.path = path
        self.rows = 0
        encoding = source.encoding
        self._file = path.open("w", encoding=encoding, newline="")
        self._writer = csv.writer(self._file, delimiter=source.delimiter)
        self._writer.writerow(["line", "reason", "detail", *source.headers])
        self._lock = threading.Lock()  # rows come from the reading thread and the sender

    def write(self, line: int | str, reason: str, detail: str | None, cells: list[str]) -> None:
        with self._lock:
            self._writer.writerow([line, reason, detail or "", *cells])
            self.rows += 1

    def skipped(self, skipped: SkippedLead) -> None:
        lead = skipped.lead
        if lead is not None and hasattr(lead, "cells"):
            self.write(lead.line, skipped.reason, skipped.detail, lead.cells)
        else:
            self.write("", skipped.reason, skipped.detail, [skipped.email or ""])

    def bad_row(self, row: BadRow) -> None:
        self.write(row.line, row.reason, None, row.cells)

    def close(self) -> None:
        self._file.close()


def _dry_run(source: LeadCsv, rows: int) -> None:
    from rich.table import Table

    out = _out()
    delimiter = {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(
        source.delimiter, repr(source.delimiter)
    )
    out.print(
        f"{source.path.name}: {source.size:,} bytes, encoding {source.encoding}, "
        f"delimiter {delimiter}, header on line {source.header_line}"
    )
    table = Table(title="Column mapping", title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("Column")
    table.add_column("Becomes")
    table.add_column("How")
    for column in source.columns:
        table.add_row(str(column.number), column.header or "(no header)", column.target, column.how)
    out.print(table)
    out.print(f"First {rows} rows as they would be sent (nothing is sent in a dry run):")
    bad: list[Any] = []
    for i, lead in enumerate(source.leads(on_bad_row=bad.append)):
        if i >= rows:
            break
        out.print(
            f"line {lead.line}: " + json.dumps(lead, ensure_ascii=False),
            markup=False,
            soft_wrap=True,
        )
    for row in bad[:rows]:
        out.print(f"line {row.line}: skipped: {row.reason}", markup=False)


def _progress(source: LeadCsv, enabled: bool) -> Any:
    from rich.progress import (
        BarColumn,
        Progress,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            elapsed = task.elapsed or 0
            rate = task.fields.get("rows", 0) / elapsed if elapsed > 0 else 0
            return Text(f"{rate:,.0f} rows/s", style="progress.data.speed")

    return Progress(
        TextColumn("[bold]Importing"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        RowsPerSecond(),
        TextColumn(
            "[green]{task.fields[added]:,} added[/] [yellow]{task.fields[skipped]:,} skipped[/]"
        ),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=_err(),
        disable=not enabled,
        refresh_per_second=4,
    )


def _summary_table(
    summary: ImportSummary,
    bad_rows: int,
    blank_rows: int,
    skipped_file: Path | None,
    elapsed: float,
) -> None:
    from rich.table import Table

    out = _out()
    rows = summary.added + summary.skipped + bad_rows  # == rows read, unless it stopped
    rate = rows / elapsed if elapsed > 0 else 0.0
    out.print(
        f"Imported {rows:,} rows into campaign {summary.campaign_id} in {elapsed:,.1f} s "
        f"({rate:,.0f} rows/s)"
    )
    table = Table(title_justify="left")
    table.add_column("Outcome", no_wrap=True)
    table.add_column("Rows", justify="right")
    table.add_row("Added", f"{summary.added:,}", style="green")
    reasons = dict(summary.skipped_by_reason)
    if bad_rows:
        from openlead.client.csvfile import MALFORMED_ROW

        reasons[MALFORMED_ROW] = reasons.get(MALFORMED_ROW, 0) + bad_rows
    for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0])):
        table.add_row(f"Skipped: {reason}", f"{count:,}", style="yellow")
    table.add_row("Total", f"{rows:,}", style="bold")
    out.print(table)
    notes = []
    if blank_rows:
        notes.append(f"{blank_rows:,} blank rows ignored")
    if summary.retries:
        notes.append(f"{summary.retries:,} requests retried")
    if summary.reconciled_batches:
        notes.append(f"{summary.reconciled_batches:,} batches checked after a lost answer")
    if summary.unverified:
        notes.append(f"{summary.unverified:,} adds could not be verified (see docs/sdk-and-cli.md)")
    if notes:
        out.print("; ".join(notes) + ".")
    skipped = summary.skipped + bad_rows
    if skipped_file is not None and skipped:
        out.print(f"Skipped rows and their reasons: {skipped_file}", soft_wrap=True)


@leads_app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="The CSV file", dir_okay=False)],
    campaign: Annotated[
        int | None, typer.Option("--campaign", "-c", help="The campaign's id", min=1)
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
    map_: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="COLUMN=FIELD: a standard field, custom:KEY, or - to ignore the column. "
            "COLUMN is a header or #N (1-based). Repeatable.",
        ),
    ] = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--settings",
            help="An import setting to turn on: ignore_global_block_list, "
            "ignore_unsubscribe_list, ignore_duplicate_leads_in_other_campaign. Repeatable.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the mapping and the first rows; send nothing")
    ] = False,
    encoding: Annotated[
        str, typer.Option(help="auto (UTF-8, or what a byte-order mark says), or e.g. cp1252")
    ] = "auto",
    delimiter: Annotated[str | None, typer.Option(help="The delimiter (default: detected)")] = None,
    skipped_file: Annotated[
        Path | None,
        typer.Option("--skipped-file", help="Where to write skipped rows [FILE.skipped.csv]"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=400, help="Leads per request")] = 400,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Tries per request before giving up (429, 5xx, network)")
    ] = 8,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress", help="Show a progress bar [default: on a terminal]"
        ),
    ] = None,
    as_json: AsJson = False,
    rows: Annotated[int, typer.Option("--rows", help="Rows shown by --dry-run", min=1)] = 5,
) -> None:
    """Import a CSV file into a campaign: streamed, batched, retried; prints a summary and
    writes the skipped rows with their reasons to FILE.skipped.csv."""
    from openlead.client.csvfile import CsvProblem, LeadCsv

    mapping = _parse_maps(map_ or [])
    import_settings = _parse_settings(settings or [])
    try:
        source = LeadCsv.open(file, encoding=encoding, delimiter=delimiter, mapping=mapping)
    except CsvProblem as exc:
        raise _fail(str(exc)) from None
    if dry_run:
        try:
            _dry_run(source, rows)
        except (CsvProblem, csv.Error, UnicodeDecodeError) as exc:
            raise _fail(str(exc)) from None
        return
    if campaign is None:
        raise _fail("Which campaign? Pass --campaign ID (see `openlead campaigns list`).")
    _import(
        source,
        campaign,
        url,
        api_key,
        import_settings,
        skipped_file,
        batch_size,
        max_attempts,
        progress,
        as_json,
    )


def _import(
    source: LeadCsv,
    campaign: int,
    url: str | None,
    api_key: str | None,
    settings: dict[str, bool] | None,
    skipped_path: Path | None,
    batch_size: int,
    max_attempts: int,
    show_progress: bool | None,
    as_json: bool,
) -> None:
    from openlead.client import OpenleadError, RetryPolicy
    from openlead.client.csvfile import read_ahead

    client = _client(url, api_key)
    skipped_path = skipped_path or _skipped_path(source.path)
    bad_rows = 0
    summary_seen: list[ImportSummary] = []
    try:
        client.get_campaign(campaign)  # a wrong id or key fails here, before the file is read
    except OpenleadError as exc:
        client.close()
        raise _api_error(exc) from None
    writer = _SkippedFile(skipped_path, source)

    def on_bad_row(row: BadRow) -> None:
        nonlocal bad_rows
        bad_rows += 1
        writer.bad_row(row)

    if show_progress is None:
        show_progress = sys.stderr.isatty()
    bar = _progress(source, show_progress and not as_json)
    task = bar.add_task("import", total=source.size or 1, rows=0, added=0, skipped=0)

    def on_progress(summary: ImportSummary) -> None:
        if not summary_seen:
            summary_seen.append(summary)
        bar.update(
            task,
            completed=source.bytes_read,
            rows=summary.total + bad_rows,
            added=summary.added,
            skipped=summary.skipped + bad_rows,
        )

    started = time.perf_counter()
    error: BaseException | None = None
    summary: ImportSummary | None = None
    try:
        with bar:
            summary = client.import_leads(
                campaign,
                read_ahead(source.leads(on_bad_row=on_bad_row), chunk=batch_size),
                settings=settings,
                batch_size=batch_size,
                on_progress=on_progress,
                on_skipped=writer.skipped,
                keep_skipped=0,  # they go to the file, not to memory
                skip_invalid=True,
                retry=RetryPolicy(max_attempts=max_attempts),
            )
            bar.update(task, completed=source.size or 1)
    except (OpenleadError, csv.Error, UnicodeDecodeError, KeyboardInterrupt) as exc:
        error = exc
        summary = getattr(exc, "summary", None) or (summary_seen[0] if summary_seen else None)
    finally:
        writer.close()
        client.close()
    elapsed = time.perf_counter() - started
    if summary is None:
        from openlead.client import ImportSummary

        summary = ImportSummary(campaign_id=campaign)
    if as_json:
        report = summary.as_dict(with_skipped_leads=False)
        report["malformed_rows"] = bad_rows
        report["blank_rows"] = source.blank_rows
        report["skipped_file"] = str(skipped_path)
        report["complete"] = error is None
        _echo_json(report)
    else:
        _summary_table(summary, bad_rows, source.blank_rows, skipped_path, elapsed)
    done = summary.added + summary.skipped + bad_rows
    if isinstance(error, KeyboardInterrupt):
        raise _fail(f"Interrupted after {done:,} rows.", code=130)
    if isinstance(error, csv.Error | UnicodeDecodeError):
        raise _fail(
            f"{source.path.name}: cannot read the file past row {source.rows_read + 1:,}: {error}"
        )
    if error is not None:
        exit_ = _api_error(error)
        _err().print(
            f"The import stopped after {done:,} rows (counted above). Running the same "
            "command again is safe: rows already in the campaign are skipped as 'Already "
            "exists in this campaign'."
        )
        raise exit_


# --------------------------------------------------------------------------- leads export / status


@leads_app.command("export")
def export_command(
    campaign: CampaignId,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (default: stdout)")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Export a campaign's leads as CSV (streamed)."""
    from openlead.client import OpenleadError

    client = _client(url, api_key)
    try:
        if output is None:
            client.export_leads(campaign, sys.stdout.buffer)
            sys.stdout.flush()
            return
        partial = output.with_name(output.name + ".part")
        with partial.open("wb") as file:
            written = client.export_leads(campaign, file)
        partial.replace(output)
        _err().print(f"Wrote {written:,} bytes to {output}")
    except OpenleadError as exc:
        if output is not None:
            output.with_name(output.name + ".part").unlink(missing_ok=True)
        raise _api_error(exc) from None
    finally:
        client.close()


@leads_app.command("status")
def status_command(
    status: Annotated[str, typer.Argument(help="The new status, e.g. INTERESTED")],
    campaign: CampaignId,
    lead: Annotated[int, typer.Option("--lead", "-l", help="The lead's id", min=1)],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Set a lead's status in a campaign."""
    from openlead.client import OpenleadError

    with _client(url, api_key) as client:
        try:
            changed = client.change_lead_status(campaign, lead, status.strip().upper())
        except OpenleadError as exc:
            raise _api_error(exc) from None
    _out().print(
        f"Lead {changed.lead_id} in campaign {changed.campaign_id}: "
        f"{changed.previous_status} -> {changed.status}"
    )


# --------------------------------------------------------------------------- campaigns


@campaigns_app.command("list")
def campaigns_list(url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """List every campaign."""
    from rich.table import Table

    from openlead.client import OpenleadError

    with _client(url, api_key) as client:
        try:
            campaigns = list(client.iter_campaigns())
        except OpenleadError as exc:
            raise _api_error(exc) from None
    if as_json:
        _echo_json([c.model_dump() for c in campaigns])
        return
    table = Table()
    for name, justify in (
        ("id", "right"),
        ("name", "left"),
        ("status", "left"),
        ("created_at", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for c in campaigns:
        table.add_row(str(c.id), c.name, c.status, c.created_at)
    _out().print(table)


@campaigns_app.command("create")
def campaigns_create(
    name: Annotated[str, typer.Argument(help="The campaign's name")],
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Create a campaign; its id alone is printed on stdout."""
    from openlead.client import OpenleadError

    with _client(url, api_key) as client:
        try:
            created = client.create_campaign(name)
        except OpenleadError as exc:
            raise _api_error(exc) from None
    _err().print(f"Created campaign {created.id} '{created.name}'.", markup=False)
    sys.stdout.write(f"{created.id}\n")


# --------------------------------------------------------------------------- block list

BLOCK_CHUNK = 10_000


@block_app.command("add")
def block_add(
    entries: Annotated[list[str] | None, typer.Argument(help="Addresses and domains")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="A file of entries, one a line")
    ] = None,
    url: Url = None,
    api_key: ApiKey = None,
) -> None:
    """Block addresses and domains (an entry with @ is an address, any other a domain)."""
    from openlead.client import OpenleadError

    values = [e.strip() for e in entries or [] if e.strip()]
    if file is not None:
        try:
            with file.open(encoding="utf-8-sig") as handle:
                values += [line.strip() for line in handle if line.strip()]
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(f"{file}: {exc}") from None
    if not values:
        raise _fail("Nothing to block: give addresses or domains, or --file.")
    added = already = 0
    invalid: list[str] = []
    with _client(url, api_key) as client:
        try:
            for start in range(0, len(values), BLOCK_CHUNK):
                chunk = values[start : start + BLOCK_CHUNK]
                emails = [v for v in chunk if "@" in v]
                domains = [v for v in chunk if "@" not in v]
                answer = client.add_to_block_list(emails=emails or None, domains=domains or None)
                added += answer.added_count
                already += answer.already_blocked_count
                invalid += answer.invalid
        except OpenleadError as exc:
            raise _api_error(exc) from None
    _out().print(f"Blocked {added:,} new entries; {already:,} were already blocked.")
    if invalid:
        _out().print(f"Not valid ({len(invalid):,}): " + ", ".join(invalid[:20]), markup=False)


@block_app.command("list")
def block_list(
    search: Annotated[str | None, typer.Option(help="Part of the address or domain")] = None,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List the block list."""
    from rich.table import Table

    from openlead.client import OpenleadError

    with _client(url, api_key) as client:
        try:
            entries = list(client.iter_block_list(search=search))
        except OpenleadError as exc:
            raise _api_error(exc) from None
    if as_json:
        _echo_json([e.model_dump() for e in entries])
        return
    table = Table()
    for name in ("id", "value", "kind", "source", "created_at"):
        table.add_column(name)
    for e in entries:
        table.add_row(str(e.id), e.value, e.kind, e.source, e.created_at)
    _out().print(table)
