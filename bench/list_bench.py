"""Listing and export of a large campaign: page latency by depth, and export against raw reads.

For each backend:

1. A fresh database (SQLite file in a temp dir, or a new PostgreSQL database), migrated, and
   a real ``openlead serve`` process that bootstraps the account from
   ``OPENLEAD_BOOTSTRAP_API_KEY``; one campaign made through the API.
2. Untimed: the campaign's leads are written straight into the database by the fastest raw
   method (one ``executemany`` transaction on SQLite, ``COPY`` on PostgreSQL): ``leads`` with
   five custom fields each, ``campaign_leads`` with a realistic spread of statuses, and a small
   block list (addresses and domains) and unsubscribe list that hit some of those leads. Then
   ``ANALYZE`` (``VACUUM ANALYZE`` on PostgreSQL, as autovacuum would have done after so many
   inserts) and the server is restarted on the loaded database.
3. Timed, through HTTP: ``GET /campaigns/{id}/leads`` (limit 100) for the first page, for a
   page at depth ``--depth`` (default 90%) by cursor (``after`` = the id of the lead at that
   position) and by offset, unfiltered and filtered by ``status=NOT_CONTACTED`` (the depth
   scaled to the leads with that status). The median of ``--reps`` requests each, after one
   warm-up. The deep-cursor / first-page ratio is the figure to watch (target: at most 2).
4. Timed: the whole ``GET /campaigns/{id}/leads-export`` streamed to nowhere, against a raw
   SELECT of the same rows and columns (``is_blocked`` / ``is_unsubscribed`` computed the same
   way) read with the raw driver (``sqlite3`` / ``asyncpg``) in batches; best of two rounds
   each, alternating. The ratio export rows/s / raw rows/s is the figure to watch (target: at
   least 0.5). The server's peak memory (``VmHWM``) before and after the export shows whether
   the export runs in constant memory.

Printed and written to ``bench/results/list-*.json``.

    .venv/bin/python bench/list_bench.py [--leads 1000000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from openlead.db.migrate import upgrade

# The server process, scratch databases and machine facts are import_bench's, shared.
sys.path.insert(0, str(Path(__file__).parent))
from import_bench import (
    FIRST,
    Server,
    _pg_version,
    create_pg_database,
    drop_pg_database,
    machine,
)
from import_bench import LAST as IMPORT_LAST

PG_ADMIN_URL = os.environ.get("OPENLEAD_BENCH_PG", "postgresql://127.0.0.1:5432/test")
RESULTS = Path(__file__).parent / "results"
PAGE = 100
FILTER_STATUS = "NOT_CONTACTED"
# A campaign some weeks into sending.
STATUSES = [
    ("NOT_CONTACTED", 60),
    ("IN_PROGRESS", 25),
    ("COMPLETED", 5),
    ("INTERESTED", 3),
    ("NOT_INTERESTED", 3),
    ("BOUNCED", 2),
    ("UNSUBSCRIBED", 1),
    ("DO_NOT_CONTACT", 1),
]
IMPORT_BATCH = 400  # leads imported together share their timestamps, as through the API

# import_bench's, in ASCII.
LAST = [name.replace("ü", "u") for name in IMPORT_LAST]
TITLES = ["CEO", "CTO", "Head of Sales", "VP Marketing", "Founder", "Engineer", "COO"]
INDUSTRIES = ["SaaS", "Retail", "Logistics", "Fintech", "Healthcare", "Manufacturing"]
CITIES = ["Berlin, DE", "Austin, US", "Lyon, FR", "Osaka, JP", "Porto, PT", "Oslo, NO"]


# --------------------------------------------------------------------------- the data


@dataclass
class Data:
    """Rows to load, as tuples in the column order of ``COLUMNS``; timestamps as datetimes."""

    leads: list[tuple[Any, ...]]
    campaign_leads: list[tuple[Any, ...]]
    block_list: list[tuple[Any, ...]]
    unsubscribes: list[tuple[Any, ...]]
    statuses: list[str]  # per campaign lead, in lead id order


COLUMNS = {
    "leads": [
        "id",
        "account_id",
        "email",
        "email_domain",
        "first_name",
        "last_name",
        "company_name",
        "location",
        "phone_number",
        "website",
        "linkedin_profile",
        "company_url",
        "custom_fields",
        "created_at",
        "updated_at",
    ],
    "campaign_leads": [
        "account_id",
        "campaign_id",
        "lead_id",
        "status",
        "ignore_block_list",
        "ignore_unsubscribe_list",
        "created_at",
        "updated_at",
    ],
    "block_list": ["account_id", "value", "kind", "source", "created_at"],
    "unsubscribes": ["account_id", "email", "source", "created_at"],
}


def generate(count: int, account_id: int, campaign_id: int, seed: int = 20261130) -> Data:
    rng = random.Random(seed)
    start = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
    domains = [f"company{d}.example.com" for d in range(max(1, count // 50))]
    names, weights = zip(*STATUSES, strict=True)
    statuses = rng.choices(names, weights=weights, k=count)
    leads, members = [], []
    stamp = start
    for i in range(count):
        lead_id = i + 1
        if i % IMPORT_BATCH == 0:
            stamp = start + timedelta(seconds=i // IMPORT_BATCH, microseconds=rng.randrange(10**6))
        first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(domains)
        local = f"{first}.{last}.{i}".lower()
        custom = {
            "title": rng.choice(TITLES),
            "industry": rng.choice(INDUSTRIES),
            "employees": rng.randrange(1, 5000),
            "score": round(rng.random() * 100, 2),
            "source": f"list-{rng.randrange(1, 40)}",
        }
        leads.append(
            (
                lead_id,
                account_id,
                f"{local}@{domain}",
                domain,
                first,
                last,
                domain.split(".")[0].title(),
                rng.choice(CITIES),
                f"+1 555 {rng.randrange(1000000, 9999999)}" if rng.random() < 0.5 else None,
                f"https://{domain}",
                f"https://www.linkedin.com/in/{local}" if rng.random() < 0.3 else None,
                None,
                orjson.dumps(custom).decode(),
                stamp,
                stamp,
            )
        )
        status = statuses[i]
        changed = stamp if status == "NOT_CONTACTED" else stamp + timedelta(days=3, seconds=i)
        members.append((account_id, campaign_id, lead_id, status, False, False, stamp, changed))
    # Small lists that hit some of the campaign's leads: addresses, whole domains, opt-outs.
    blocked = rng.sample(range(count), min(count, 500))
    unsubscribed = rng.sample(range(count), min(count, 1000))
    block_rows = [(account_id, leads[i][2], "email", "api", start) for i in blocked]
    block_rows += [(account_id, d, "domain", "api", start) for d in rng.sample(domains, 10)]
    block_rows += [
        (account_id, f"elsewhere{d}.example.org", "domain", "api", start) for d in range(200)
    ]
    unsub_rows = [(account_id, leads[i][2], "api", start) for i in unsubscribed]
    unsub_rows += [
        (account_id, f"gone{d}@elsewhere.example.org", "api", start) for d in range(2000)
    ]
    return Data(leads, members, block_rows, unsub_rows, list(statuses))


# --------------------------------------------------------------------------- loading


def _sqlite_stamp(moment: datetime) -> str:
    """What SQLAlchemy stores for a timestamp on SQLite."""
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _sqlite_rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    cache: dict[datetime, str] = {}

    def convert(value: Any) -> Any:
        if isinstance(value, datetime):
            text = cache.get(value)
            if text is None:
                text = cache[value] = _sqlite_stamp(value)
            return text
        if isinstance(value, bool):
            return int(value)
        return value

    return [tuple(convert(v) for v in row) for row in rows]


# Rows to load, by table: (columns, rows as tuples in that column order).
Tables = dict[str, tuple[list[str], list[tuple[Any, ...]]]]


def tables_of(data: Data) -> Tables:
    return {table: (columns, getattr(data, table)) for table, columns in COLUMNS.items()}


def load_sqlite(path: Path, data: Data) -> float:
    return load_sqlite_tables(path, tables_of(data))


def load_sqlite_tables(path: Path, tables: Tables) -> float:
    """One ``executemany`` transaction, then ``ANALYZE``; seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("BEGIN")
        for table, (columns, rows) in tables.items():
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                _sqlite_rows(rows),
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


async def _load_pg(dsn: str, tables: Tables) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            for table, (columns, rows) in tables.items():
                await conn.copy_records_to_table(table, records=rows, columns=columns)
            for table in tables:
                if table != "campaign_leads":  # the one table without its own id
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def load_postgres(dsn: str, data: Data) -> float:
    return load_postgres_tables(dsn, tables_of(data))


def load_postgres_tables(dsn: str, tables: Tables) -> float:
    """One ``COPY`` transaction, then ``VACUUM ANALYZE``; seconds taken."""
    started = time.perf_counter()
    asyncio.run(_load_pg(dsn, tables))
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the raw read

# The export's columns, computed the way the API computes them, in the export's order.
RAW_SELECT = """
SELECT l.id, l.email, l.first_name, l.last_name, l.company_name, l.location, l.phone_number,
       l.website, l.linkedin_profile, l.company_url, l.custom_fields, cl.status,
       (EXISTS (SELECT 1 FROM unsubscribes u
                WHERE u.account_id = l.account_id AND u.email = l.email)
        OR cl.status = 'UNSUBSCRIBED') AS is_unsubscribed,
       (EXISTS (SELECT 1 FROM block_list b
                WHERE b.account_id = l.account_id AND b.kind = 'email' AND b.value = l.email)
        OR EXISTS (SELECT 1 FROM block_list b
                WHERE b.account_id = l.account_id AND b.kind = 'domain'
                  AND b.value = l.email_domain)) AS is_blocked,
       cl.created_at, cl.updated_at, l.updated_at
FROM campaign_leads cl JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id
WHERE cl.account_id = {account} AND cl.campaign_id = {campaign}
ORDER BY cl.lead_id
"""
RAW_BATCH = 10_000


def raw_sqlite(path: Path, account_id: int, campaign_id: int) -> tuple[float, int]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        started = time.perf_counter()
        conn.execute("BEGIN")
        cursor = conn.execute(
            RAW_SELECT.format(account="?", campaign="?"), (account_id, campaign_id)
        )
        rows = 0
        while batch := cursor.fetchmany(RAW_BATCH):
            rows += len(batch)
        conn.execute("COMMIT")
        return time.perf_counter() - started, rows
    finally:
        conn.close()


async def _raw_pg(dsn: str, account_id: int, campaign_id: int) -> tuple[float, int]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        rows = 0
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            cursor = await conn.cursor(
                RAW_SELECT.format(account="$1", campaign="$2"), account_id, campaign_id
            )
            while batch := await cursor.fetch(RAW_BATCH):
                rows += len(batch)
        return time.perf_counter() - started, rows
    finally:
        await conn.close()


def raw_postgres(dsn: str, account_id: int, campaign_id: int) -> tuple[float, int]:
    return asyncio.run(_raw_pg(dsn, account_id, campaign_id))


# --------------------------------------------------------------------------- the server


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, params={"api_key": server.key}, timeout=600)


# --------------------------------------------------------------------------- measurements


def timed_get(
    http: httpx.Client, path: str, params: dict[str, Any], reps: int
) -> tuple[float, dict[str, Any]]:
    """Median milliseconds of ``reps`` requests after one warm-up; and the last answer."""
    times = []
    body: dict[str, Any] = {}
    for attempt in range(reps + 1):
        started = time.perf_counter()
        response = http.get(path, params=params)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} {params}: {response.status_code} {response.text[:300]}")
        body = orjson.loads(response.content)
        if attempt:
            times.append(elapsed * 1000)
    return round(statistics.median(times), 2), body


def listing(
    http: httpx.Client, campaign: int, data: Data, depth: float, reps: int, status: str | None
) -> dict[str, Any]:
    """First page, a deep page by cursor and the same page by offset."""
    ids = [
        row[2]
        for row, s in zip(data.campaign_leads, data.statuses, strict=True)
        if status is None or s == status
    ]
    position = int(len(ids) * depth)
    base: dict[str, Any] = {"limit": PAGE} | ({"status": status} if status else {})
    path = f"/campaigns/{campaign}/leads"
    first_ms, first = timed_get(http, path, base, reps)
    cursor_ms, by_cursor = timed_get(http, path, base | {"after": ids[position - 1]}, reps)
    offset_ms, by_offset = timed_get(http, path, base | {"offset": position}, reps)
    expected = ids[position : position + PAGE]
    assert [x["id"] for x in first["leads"]] == ids[:PAGE]
    assert [x["id"] for x in by_cursor["leads"]] == expected, "cursor page is wrong"
    assert [x["id"] for x in by_offset["leads"]] == expected, "offset page is wrong"
    assert first["total_leads"] == len(ids), (first["total_leads"], len(ids))
    return {
        "status": status,
        "matching": len(ids),
        "depth": position,
        "first_page_ms": first_ms,
        "deep_cursor_ms": cursor_ms,
        "deep_offset_ms": offset_ms,
        "cursor_ratio": round(cursor_ms / first_ms, 2),
        "offset_ratio": round(offset_ms / first_ms, 2),
    }


def export(http: httpx.Client, campaign: int) -> tuple[float, int, int]:
    """Seconds, data rows and bytes of one whole export, read as it streams."""
    started = time.perf_counter()
    size = lines = 0
    with http.stream("GET", f"/campaigns/{campaign}/leads-export") as response:
        if response.status_code != 200:
            raise RuntimeError(f"export: {response.status_code}")
        for chunk in response.iter_raw(1 << 16):
            size += len(chunk)
            lines += chunk.count(b"\n")
    # One line is the header; no value in this data set holds a line break.
    return time.perf_counter() - started, lines - 1, size


# --------------------------------------------------------------------------- one backend


@dataclass
class Result:
    backend: str
    leads: int
    load_seconds: float
    listing: list[dict[str, Any]]
    export_seconds: float
    export_rows: int
    export_bytes: int
    export_rows_per_s: float
    raw_seconds: float
    raw_rows_per_s: float
    export_ratio: float
    peak_mb_before_export: float
    peak_mb_after_export: float
    rss_mb_after_export: float
    load_average: list[float]  # the machine's, when the export was measured (others' work shows)


def create_campaign(server: Server) -> int:
    with client(server) as http:
        campaign = http.post("/campaigns", json={"name": "Listing benchmark"})
        if campaign.status_code != 200:
            raise RuntimeError(campaign.text)
        return campaign.json()["id"]


def account_of(backend: str, where: Path | str, campaign: int) -> int:
    """The bootstrap account: the one that owns the campaign."""
    sql = "SELECT account_id FROM campaigns WHERE id = {}"
    if backend == "sqlite":
        conn = sqlite3.connect(where)
        try:
            return conn.execute(sql.format("?"), (campaign,)).fetchone()[0]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(str(where)) as pg:
        row = pg.execute(sql.format("%s"), (campaign,)).fetchone()
        assert row is not None
        return row[0]


def run_backend(backend: str, count: int, depth: float, reps: int, workdir: Path) -> Result:
    dropped: list[str] = []
    if backend == "sqlite":
        path = workdir / "list.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        name, dsn = create_pg_database("list")
        dropped.append(name)
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    try:
        upgrade(url)
        server = Server(url, workdir / "server.log")
        server.start()
        try:
            campaign = create_campaign(server)
        finally:
            server.stop()
        account = account_of(backend, path if backend == "sqlite" else dsn, campaign)
        print(f"[{backend}] generating {count:,} leads", flush=True)
        data = generate(count, account, campaign)
        print(f"[{backend}] loading them raw", flush=True)
        load = load_sqlite(path, data) if backend == "sqlite" else load_postgres(dsn, data)
        print(f"[{backend}] loaded in {load:.1f} s; measuring pages", flush=True)
        server = Server(url, workdir / "server.log", key=server.key)
        server.start()
        try:
            with client(server) as http:
                pages = [
                    listing(http, campaign, data, depth, reps, status)
                    for status in (None, FILTER_STATUS)
                ]
                before = server.memory_mb()
                print(f"[{backend}] exporting", flush=True)
                exports, raws = [], []
                for _ in range(2):
                    exports.append(export(http, campaign))
                    if backend == "sqlite":
                        raws.append(raw_sqlite(path, account, campaign))
                    else:
                        raws.append(raw_postgres(dsn, account, campaign))
                after = server.memory_mb()
        finally:
            server.stop()
    finally:
        for name in dropped:
            drop_pg_database(name)
    export_s, rows, size = min(exports)
    raw_s, raw_rows = min(raws)
    assert rows == raw_rows == count, (rows, raw_rows, count)
    return Result(
        backend=backend,
        leads=count,
        load_seconds=round(load, 1),
        listing=pages,
        export_seconds=round(export_s, 3),
        export_rows=rows,
        export_bytes=size,
        export_rows_per_s=round(rows / export_s),
        raw_seconds=round(raw_s, 3),
        raw_rows_per_s=round(raw_rows / raw_s),
        export_ratio=round(raw_s / export_s, 3),
        peak_mb_before_export=before["VmHWM"],
        peak_mb_after_export=after["VmHWM"],
        rss_mb_after_export=after["VmRSS"],
        load_average=[round(x, 2) for x in os.getloadavg()],
    )


def summary(results: list[Result]) -> None:
    print()
    print(
        "Pages of 100 (median ms); deep = at the depth by cursor / by offset; "
        "ratio = deep cursor / first page (target <= 2)"
    )
    print(
        f"{'backend':<10}{'filter':<15}{'first ms':>10}{'cursor ms':>11}{'ratio':>7}"
        f"{'offset ms':>11}"
    )
    for r in results:
        for page in r.listing:
            print(
                f"{r.backend:<10}{page['status'] or '-':<15}{page['first_page_ms']:>10.1f}"
                f"{page['deep_cursor_ms']:>11.1f}{page['cursor_ratio']:>7.2f}"
                f"{page['deep_offset_ms']:>11.1f}"
            )
    print()
    print(
        "Whole export against a raw read of the same rows; ratio = export / raw (target >= 0.5);"
        " server peak RSS (VmHWM) before and after the export"
    )
    print(
        f"{'backend':<10}{'export rows/s':>15}{'raw rows/s':>13}{'ratio':>7}"
        f"{'peak MB before':>16}{'after':>8}"
    )
    for r in results:
        print(
            f"{r.backend:<10}{r.export_rows_per_s:>15,}{r.raw_rows_per_s:>13,}"
            f"{r.export_ratio:>7.2f}{r.peak_mb_before_export:>16.1f}"
            f"{r.peak_mb_after_export:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--depth",
        type=float,
        default=0.9,
        help="how deep the deep page is, as a share of the leads (default 0.9)",
    )
    parser.add_argument("--reps", type=int, default=7, help="timed requests per figure")
    args = parser.parse_args()

    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    with tempfile.TemporaryDirectory(prefix="openlead-list-bench-") as tmp:
        for backend in backends:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            results.append(run_backend(backend, args.leads, args.depth, args.reps, workdir))

    summary(results)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "leads": args.leads,
        "page": PAGE,
        "depth": args.depth,
        "reps": args.reps,
        "machine": machine(),
        "results": [asdict(r) for r in results],
    }
    if "postgres" in backends:
        report["machine"]["postgres"] = _pg_version()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"list-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
