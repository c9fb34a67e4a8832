"""Lead import throughput: the HTTP API against the physical limit, measured in the same run.

For each backend:

1. A fresh database (SQLite file in a temp dir, or a new PostgreSQL database) and a real
   ``openlead serve`` process on it; two campaigns made through the API.
2. Untimed set-up through the API: about 2% of the leads are block-listed (half by address,
   half by their own domain), about 10% are imported into the target campaign and about 5%
   into another campaign.
3. Timed: every lead is imported into the target campaign in 400-lead requests, one request
   at a time (``--clients`` > 1 runs that many sequential clients side by side). The request
   bodies are serialised before the clock starts, so the figure is the server's, not the
   client's JSON encoder's.
4. The server's peak memory is its ``VmHWM`` from ``/proc/<pid>/status``.
5. The limit: the rows the timed import stored (``leads``, ``campaign_leads``,
   ``lead_events``) are read back and written, in one transaction, into a fresh database of
   the same kind with the same schema (openlead's migrations) that already holds the rows
   the set-up stored: ``executemany`` on SQLite (the app's PRAGMAs), ``COPY`` on PostgreSQL.

Printed and written to ``bench/results/``: API leads/s (leads sent per second of wall time),
raw leads/s (the same lead count over the raw write time), their ratio and the peak memory.

    .venv/bin/python bench/import_bench.py [--leads 200000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from openlead.db.engine import (
    DEFAULT_LOCK_TIMEOUT_SECONDS,
    SQLITE_WRITER_PRAGMAS,
    sqlite_pragmas,
)
from openlead.db.migrate import upgrade

BATCH = 400
PG_ADMIN_URL = os.environ.get("OPENLEAD_BENCH_PG", "postgresql://127.0.0.1:5432/test")
RESULTS = Path(__file__).parent / "results"
TABLES = ("leads", "campaign_leads", "lead_events")
SHARE_IN_CAMPAIGN = 0.10
SHARE_BLOCKED = 0.02
SHARE_IN_OTHER_CAMPAIGN = 0.05

FIRST = [
    "Alex",
    "Sam",
    "Maria",
    "Jean",
    "Priya",
    "Chen",
    "Olga",
    "Tom",
    "Fatima",
    "Lars",
    "Aiko",
    "Diego",
    "Nora",
    "Ivan",
    "Zoe",
    "Omar",
    "Ines",
    "Paul",
    "Lena",
    "Raj",
]
LAST = [
    "Smith",
    "Garcia",
    "Müller",
    "Dubois",
    "Kowalski",
    "Tanaka",
    "Silva",
    "Novak",
    "Jensen",
    "Rossi",
    "Khan",
    "Nguyen",
    "Brown",
    "Costa",
    "Meyer",
    "Ivanova",
]
TITLES = ["CEO", "CTO", "Head of Sales", "VP Marketing", "Founder", "Engineer", "COO"]
INDUSTRIES = ["SaaS", "Retail", "Logistics", "Fintech", "Healthcare", "Manufacturing"]
CITIES = ["Berlin, DE", "Austin, US", "Lyon, FR", "Osaka, JP", "Porto, PT", "Oslo, NO"]


# --------------------------------------------------------------------------- lead generation


@dataclass
class Workload:
    leads: list[dict[str, Any]]
    in_campaign: list[dict[str, Any]]
    in_other_campaign: list[dict[str, Any]]
    blocked_emails: list[str]
    blocked_domains: list[str]
    expected: dict[str, int]


def _lead(rng: random.Random, i: int, domain: str) -> dict[str, Any]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}.{i}".lower().replace("ü", "u")
    email = f"{local}@{domain}"
    if rng.random() < 0.1:  # some lists arrive with capitals or stray blanks
        email = f" {first}.{last}.{i}@{domain.upper()}".replace("ü", "u")
    lead: dict[str, Any] = {
        "email": email,
        "first_name": first,
        "last_name": last,
        "company_name": domain.split(".")[0].title(),
        "website": f"https://{domain}",
        "location": rng.choice(CITIES),
        "custom_fields": {
            "title": rng.choice(TITLES),
            "industry": rng.choice(INDUSTRIES),
            "employees": rng.randrange(1, 5000),
            "score": round(rng.random() * 100, 2),
            "source": f"list-{rng.randrange(1, 40)}",
        },
    }
    if rng.random() < 0.5:
        lead["phone_number"] = f"+1 555 {rng.randrange(1000000, 9999999)}"
    if rng.random() < 0.3:
        lead["linkedin_profile"] = f"https://www.linkedin.com/in/{local}"
    return lead


def generate(count: int, seed: int = 20261129) -> Workload:
    rng = random.Random(seed)
    n_in = round(count * SHARE_IN_CAMPAIGN)
    n_blocked = round(count * SHARE_BLOCKED)
    n_other = round(count * SHARE_IN_OTHER_CAMPAIGN)
    kinds = ["in"] * n_in + ["blocked"] * n_blocked + ["other"] * n_other
    kinds += ["new"] * (count - len(kinds))
    rng.shuffle(kinds)
    domains = [f"company{d}.example.com" for d in range(max(1, count // 50))]
    blocked_domains = [f"blocked{d}.example.org" for d in range(max(1, n_blocked // 20))]
    leads, in_campaign, in_other, blocked_emails = [], [], [], []
    blocked_seen = 0
    for i, kind in enumerate(kinds):
        if kind == "blocked" and blocked_seen % 2 == 1:
            lead = _lead(rng, i, rng.choice(blocked_domains))  # blocked by its domain
        else:
            lead = _lead(rng, i, rng.choice(domains))
        if kind == "blocked":
            if blocked_seen % 2 == 0:
                blocked_emails.append(lead["email"].strip().lower())
            blocked_seen += 1
        elif kind == "in":
            in_campaign.append(lead)
        elif kind == "other":
            in_other.append(lead)
        leads.append(lead)
    expected = {
        "added_count": count - n_in - n_blocked - n_other,
        "already_added_to_campaign": n_in,
        "block_count": n_blocked,
        "in_other_campaign": n_other,
    }
    return Workload(leads, in_campaign, in_other, blocked_emails, blocked_domains, expected)


def batches(items: list[Any], size: int = BATCH) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    database_url: str
    log_path: Path
    key: str = field(default_factory=lambda: "ol_bench_" + secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        env = {**os.environ, "OPENLEAD_BOOTSTRAP_API_KEY": self.key, "OPENLEAD_RATE_LIMIT": "off"}
        command = [
            sys.executable,
            "-m",
            "openlead.cli",
            "serve",
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in 60 s")

    def memory_mb(self) -> dict[str, float]:
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        values = {}
        for line in status.splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0]) / 1024
        return values

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Client:
    def __init__(self, server: Server) -> None:
        self.http = httpx.Client(
            base_url=server.base_url, params={"api_key": server.key}, timeout=120
        )

    def post(self, path: str, body: Any = None, content: bytes | None = None) -> dict[str, Any]:
        if content is None:
            content = orjson.dumps(body)
        response = self.http.post(
            path, content=content, headers={"content-type": "application/json"}
        )
        if response.status_code != 200:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
        return response.json()

    def close(self) -> None:
        self.http.close()


def _import_body(leads: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"lead_list": leads})


def set_up(client: Client, workload: Workload) -> tuple[int, int]:
    target = client.post("/campaigns", {"name": "Benchmark target"})["id"]
    other = client.post("/campaigns", {"name": "Benchmark other"})["id"]
    for chunk in batches(workload.blocked_emails, 10_000):
        client.post("/leads/block-list", {"emails": chunk})
    for chunk in batches(workload.blocked_domains, 10_000):
        client.post("/leads/block-list", {"domains": chunk})
    for campaign, leads in ((target, workload.in_campaign), (other, workload.in_other_campaign)):
        for chunk in batches(leads):
            result = client.post(f"/campaigns/{campaign}/leads", content=_import_body(chunk))
            assert result["added_count"] == len(chunk), result
    return target, other


def timed_import(
    server: Server, campaign: int, bodies: list[bytes], clients: int
) -> tuple[float, dict[str, int]]:
    """Send every body; return the wall time and the summed counts of the answers."""
    totals: dict[str, int] = {}
    lock = threading.Lock()
    queue = list(reversed(bodies))
    errors: list[BaseException] = []

    def worker() -> None:
        client = Client(server)
        try:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    body = queue.pop()
                result = client.post(f"/campaigns/{campaign}/leads", content=body)
                with lock:
                    for key in (
                        "added_count",
                        "skipped_count",
                        "already_added_to_campaign",
                        "block_count",
                        "duplicate_count",
                        "invalid_email_count",
                        "unsubscribed_leads",
                    ):
                        totals[key] = totals.get(key, 0) + result[key]
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed, totals


# --------------------------------------------------------------------------- row snapshots


@dataclass
class Rows:
    """Rows of the lead tables: column names and tuples, per table."""

    columns: dict[str, list[str]]
    rows: dict[str, list[tuple[Any, ...]]]

    def count(self, table: str) -> int:
        return len(self.rows[table])

    def by_request(self) -> list[Rows]:
        """The rows split by the request that stored them: one import stamps all its rows
        with one ``created_at``."""
        groups: dict[Any, dict[str, list[tuple[Any, ...]]]] = {}
        for table, rows in self.rows.items():
            stamp = self.columns[table].index("created_at")
            for row in rows:
                groups.setdefault(row[stamp], {t: [] for t in self.rows})[table].append(row)
        return [Rows(self.columns, rows) for rows in groups.values()]


def _key(table: str, columns: list[str], row: tuple[Any, ...]) -> Any:
    if table == "campaign_leads":
        return (row[columns.index("campaign_id")], row[columns.index("lead_id")])
    return row[columns.index("id")]


def difference(after: Rows, before: Rows) -> Rows:
    rows = {}
    for table in TABLES:
        columns = after.columns[table]
        known = {_key(table, columns, r) for r in before.rows[table]}
        rows[table] = [r for r in after.rows[table] if _key(table, columns, r) not in known]
    return Rows(after.columns, rows)


ORDER = {"leads": "id", "campaign_leads": "campaign_id, lead_id", "lead_events": "id"}
SETUP_TABLES = ("accounts", "campaigns")


def sqlite_rows(path: Path, tables: tuple[str, ...] = TABLES) -> Rows:
    conn = sqlite3.connect(path)
    try:
        columns, rows = {}, {}
        for table in tables:
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}")
            columns[table] = [d[0] for d in cursor.description]
            rows[table] = cursor.fetchall()
        return Rows(columns, rows)
    finally:
        conn.close()


async def _pg_rows(dsn: str, tables: tuple[str, ...]) -> Rows:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        columns, rows = {}, {}
        for table in tables:
            records = await conn.fetch(f"SELECT * FROM {table} ORDER BY {ORDER.get(table, 'id')}")
            attributes = await conn.fetch(
                "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                "AND NOT attisdropped ORDER BY attnum",
                table,
            )
            columns[table] = [a["attname"] for a in attributes]
            rows[table] = [tuple(r) for r in records]
        return Rows(columns, rows)
    finally:
        await conn.close()


def pg_rows(dsn: str, tables: tuple[str, ...] = TABLES) -> Rows:
    return asyncio.run(_pg_rows(dsn, tables))


# --------------------------------------------------------------------------- the raw limit


def _sqlite_connect(path: Path) -> sqlite3.Connection:
    """A connection set up as the app's writing connection is (WAL, synchronous=NORMAL,
    foreign keys on, its page cache and checkpoint interval)."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in sqlite_pragmas(DEFAULT_LOCK_TIMEOUT_SECONDS) + SQLITE_WRITER_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn


def _sqlite_write(conn: sqlite3.Connection, rows: Rows) -> None:
    conn.execute("BEGIN")
    for table in rows.rows:
        columns = rows.columns[table]
        marks = ", ".join("?" for _ in columns)
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows.rows[table]
        )
    conn.execute("COMMIT")


def raw_sqlite(path: Path, setup: Rows, before: Rows, transactions: list[Rows]) -> float:
    """Seconds to write the transactions, each with executemany, into a fresh database that
    already holds the set-up rows."""
    upgrade(f"sqlite+aiosqlite:///{path}")
    conn = _sqlite_connect(path)
    try:
        _sqlite_write(conn, setup)
        _sqlite_write(conn, before)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        started = time.perf_counter()
        for rows in transactions:
            _sqlite_write(conn, rows)
        return time.perf_counter() - started
    finally:
        conn.close()


async def _pg_copy(conn: Any, rows: Rows) -> None:
    async with conn.transaction():
        for table in rows.rows:
            await conn.copy_records_to_table(
                table, records=rows.rows[table], columns=rows.columns[table]
            )


async def _raw_pg(dsn: str, setup: Rows, before: Rows, transactions: list[Rows]) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await _pg_copy(conn, setup)
        await _pg_copy(conn, before)
        await conn.execute("ANALYZE")
        await conn.execute("CHECKPOINT")
        started = time.perf_counter()
        for rows in transactions:
            await _pg_copy(conn, rows)
        return time.perf_counter() - started
    finally:
        await conn.close()


def raw_postgres(dsn: str, setup: Rows, before: Rows, transactions: list[Rows]) -> float:
    """Seconds to COPY the transactions into a fresh database that already holds the set-up
    rows."""
    upgrade(dsn.replace("postgresql://", "postgresql+asyncpg://"))
    return asyncio.run(_raw_pg(dsn, setup, before, transactions))


# --------------------------------------------------------------------------- databases


def create_pg_database(purpose: str) -> tuple[str, str]:
    import psycopg

    name = f"openlead_bench_{purpose}_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- one backend


@dataclass
class Result:
    backend: str
    leads: int
    requests: int
    clients: int
    api_seconds: float
    api_leads_per_s: float
    raw_seconds: float
    raw_leads_per_s: float
    ratio: float
    # The same rows written raw in one transaction per request, as the API must: how much of
    # the distance to the limit is the transaction per request itself.
    raw_per_request_seconds: float
    raw_per_request_leads_per_s: float
    ratio_to_raw_per_request: float
    server_peak_mb: float
    server_rss_after_mb: float
    # CPU the server process (all its threads) used during the timed import.
    server_cpu_seconds: float
    # One-minute load average before and after the timed import.
    load_average: list[float]
    rows_written: dict[str, int]
    answers: dict[str, int]


def run_backend(backend: str, workload: Workload, clients: int, workdir: Path) -> Result:
    dropped: list[str] = []
    try:
        return _run_backend(backend, workload, clients, workdir, dropped)
    finally:
        for name in dropped:
            drop_pg_database(name)


def _run_backend(
    backend: str, workload: Workload, clients: int, workdir: Path, dropped: list[str]
) -> Result:
    print(f"[{backend}] setting up", flush=True)
    if backend == "sqlite":
        api_db = workdir / "api.db"
        url = f"sqlite+aiosqlite:///{api_db}"

        def read(tables: tuple[str, ...] = TABLES) -> Rows:
            return sqlite_rows(api_db, tables)
    else:
        name, dsn = create_pg_database("api")
        dropped.append(name)
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")

        def read(tables: tuple[str, ...] = TABLES) -> Rows:
            return pg_rows(dsn, tables)

    server = Server(url, workdir / f"server-{backend}.log")
    try:
        server.start()
        client = Client(server)
        try:
            target, _other = set_up(client, workload)
        finally:
            client.close()
        before = read()
        bodies = [_import_body(chunk) for chunk in batches(workload.leads)]
        print(
            f"[{backend}] importing {len(workload.leads)} leads in {len(bodies)} requests",
            flush=True,
        )
        settle(backend, api_db if backend == "sqlite" else dsn)
        load_before, cpu_before = _load_average(), server.cpu_seconds()
        elapsed, answers = timed_import(server, target, bodies, clients)
        server_cpu = server.cpu_seconds() - cpu_before
        load_after = _load_average()
        memory = server.memory_mb()
    finally:
        server.stop()
    expected = workload.expected
    assert answers["added_count"] == expected["added_count"], (answers, expected)
    assert answers["already_added_to_campaign"] == expected["already_added_to_campaign"], answers
    assert answers["block_count"] == expected["block_count"], answers

    setup = read(SETUP_TABLES)
    new = difference(read(), before)
    assert new.count("leads") == expected["added_count"], new.count("leads")
    per_request = new.by_request()
    assert len(per_request) <= len(bodies), len(per_request)
    print(f"[{backend}] writing the same rows raw", flush=True)
    if backend == "sqlite":
        raw = raw_sqlite(workdir / "raw.db", setup, before, [new])
        raw_split = raw_sqlite(workdir / "raw-split.db", setup, before, per_request)
    else:
        name, dsn = create_pg_database("raw")
        dropped.append(name)
        raw = raw_postgres(dsn, setup, before, [new])
        name, dsn = create_pg_database("split")
        dropped.append(name)
        raw_split = raw_postgres(dsn, setup, before, per_request)
    count = len(workload.leads)
    return Result(
        backend=backend,
        leads=count,
        requests=len(bodies),
        clients=clients,
        api_seconds=round(elapsed, 3),
        api_leads_per_s=round(count / elapsed),
        raw_seconds=round(raw, 3),
        raw_leads_per_s=round(count / raw),
        ratio=round(raw / elapsed, 3),
        raw_per_request_seconds=round(raw_split, 3),
        raw_per_request_leads_per_s=round(count / raw_split),
        ratio_to_raw_per_request=round(raw_split / elapsed, 3),
        server_peak_mb=round(memory["VmHWM"], 1),
        server_rss_after_mb=round(memory["VmRSS"], 1),
        server_cpu_seconds=round(server_cpu, 2),
        load_average=[load_before, load_after],
        rows_written={t: new.count(t) for t in TABLES},
        answers=answers,
    )


def settle(backend: str, database: Any) -> None:
    """Write out what the set-up left in the WAL before the clock starts, as the raw writes do,
    so that no phase pays for an earlier one's checkpoint."""
    if backend == "sqlite":
        conn = sqlite3.connect(database, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute("CHECKPOINT")


def _load_average() -> float:
    """The one-minute load average: this machine may be shared, and the figures with it."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=200_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--clients",
        type=int,
        default=1,
        help="sequential HTTP clients running side by side (default 1)",
    )
    args = parser.parse_args()

    workload = generate(args.leads)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    with tempfile.TemporaryDirectory(prefix="openlead-bench-") as tmp:
        for backend in backends:
            workdir = Path(tmp) / backend
            workdir.mkdir()
            results.append(run_backend(backend, workload, args.clients, workdir))

    print()
    header = (
        f"{'backend':<10}{'API leads/s':>13}{'raw leads/s':>13}{'ratio':>8}"
        f"{'peak MB':>10}{'raw, txn/request':>18}{'ratio':>8}"
    )
    print(header)
    for r in results:
        print(
            f"{r.backend:<10}{r.api_leads_per_s:>13,}{r.raw_leads_per_s:>13,}"
            f"{r.ratio:>8.2f}{r.server_peak_mb:>10.1f}{r.raw_per_request_leads_per_s:>18,}"
            f"{r.ratio_to_raw_per_request:>8.2f}"
        )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "leads": args.leads,
        "batch": BATCH,
        "clients": args.clients,
        "machine": machine(),
        "results": [asdict(r) for r in results],
    }
    if "postgres" in backends:
        report["machine"]["postgres"] = _pg_version()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"import-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")


def _pg_version() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return row[0] if row else "unknown"


if __name__ == "__main__":
    main()
