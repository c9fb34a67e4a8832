"""Templates: the missing-variable check on a large campaign, and render throughput.

For each backend (SQLite file, PostgreSQL database):

1. A fresh database, migrated. Untimed: an account, a campaign and ``--leads`` leads written
   straight into the database by the fastest raw method (one ``executemany`` transaction on
   SQLite, ``COPY`` on PostgreSQL), then ``ANALYZE``. The leads' values are missing at chosen
   rates: ``funding_round`` absent for 40% and empty for 10%, ``pain_point`` absent for 30%,
   ``mutual_connection`` present for 99% (sparse misses), ``first_name`` blank for 5% (with no
   custom field of that name to fall back on), ``job_title`` always there. The campaign's steps
   are saved through the service: the guide's template (``first_name``, ``company_name``,
   ``funding_round``, ``job_title``, ``pain_point``, ``mutual_connection``) with a subject that
   uses ``{{ company_name | default: ... }}``.
2. Timed: openlead's check (``sequences.service.check`` on the app's own engine: the template
   analysis, the one aggregate pass and the sample statement) against a raw SQL count of the
   same condition (one ``SELECT COUNT(*), SUM(CASE ...)`` per variable, written out here and run
   with the raw driver, ``sqlite3`` / ``asyncpg``). Best of ``--rounds`` each, alternating. The
   ratio raw seconds / check seconds is the figure to watch (target: at least 0.5). The counts
   of the two must agree.

Then, once: render throughput of openlead's renderer (``lead_values`` + ``render``: the lead's
values, the missing-variable tracking, the limits) against python-liquid called directly
(``Environment().from_string(t).render(**lead)``) on the same template and lead (the guide's
Jordan). Best of ``--rounds`` batches each (target ratio: at least 0.8).

Printed, and written to ``bench/results/template-*.json``.

    .venv/bin/python bench/template_bench.py [--leads 1000000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import liquid
import orjson

from openlead.db.engine import create_database
from openlead.db.migrate import upgrade
from openlead.sequences import service, templates
from openlead.sequences.schemas import SequencesIn

sys.path.insert(0, str(Path(__file__).parent))
from list_bench import COLUMNS

PG_ADMIN_URL = os.environ.get("OPENLEAD_BENCH_PG", "postgresql://127.0.0.1:5432/test")
RESULTS = Path(__file__).parent / "results"
ACCOUNT, CAMPAIGN = 1, 1
GUIDE_TEMPLATE = (
    "Hi {{first_name}},\n\n"
    "I heard {{company_name}} just closed its {{funding_round}} — congrats!\n\n"
    "Given your role as {{job_title}}, I imagine {{pain_point}} is top of mind.\n"
    "{{mutual_connection}} suggested I reach out..."
)
SUBJECT = "Congrats, {{ company_name | default: 'team' }}"
JORDAN_STANDARD = {
    "email": "prospect@company.com",
    "first_name": "Jordan",
    "company_name": "TechCo",
}
JORDAN_CUSTOM = {
    "job_title": "CTO",
    "industry": "Healthcare",
    "pain_point": "manual outreach processes",
    "mutual_connection": "Sarah from YC",
    "funding_round": "Series B",
}
# Variable -> the raw test for "no value", per dialect (templates.BLANK_CHARS: space, tab, LF, CR).
COUNTED = [
    "company_name",
    "first_name",
    "funding_round",
    "job_title",
    "mutual_connection",
    "pain_point",
]


def _sqlite_missing(name: str) -> str:
    value = f"json_extract(l.custom_fields, '$.\"{name}\"')"
    custom = f"COALESCE(TRIM({value}, char(32,9,10,13)), '') = ''"
    if name in ("company_name", "first_name"):
        standard = f"COALESCE(TRIM(l.{name}, char(32,9,10,13)), '') = ''"
        return f"({standard} AND {custom})"
    return custom


def _pg_missing(name: str) -> str:
    custom = f"COALESCE(BTRIM(l.custom_fields ->> '{name}', E' \\t\\n\\r'), '') = ''"
    if name in ("company_name", "first_name"):
        standard = f"COALESCE(BTRIM(l.{name}, E' \\t\\n\\r'), '') = ''"
        return f"({standard} AND {custom})"
    return custom


def raw_count_sql(postgres: bool) -> str:
    missing = _pg_missing if postgres else _sqlite_missing
    sums = ", ".join(f"SUM(CASE WHEN {missing(n)} THEN 1 ELSE 0 END)" for n in COUNTED)
    return (
        f"SELECT COUNT(*), {sums} FROM campaign_leads cl "
        "JOIN leads l ON l.account_id = cl.account_id AND l.id = cl.lead_id "
        f"WHERE cl.account_id = {ACCOUNT} AND cl.campaign_id = {CAMPAIGN}"
    )


# --------------------------------------------------------------------------- data


def generate(count: int, seed: int = 20261130) -> tuple[list[tuple], list[tuple]]:
    rng = random.Random(seed)
    now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    leads, members = [], []
    for i in range(count):
        lead_id = i + 1
        custom: dict[str, Any] = {"job_title": "CTO", "industry": "Healthcare"}
        roll = rng.random()
        if roll >= 0.5:
            custom["funding_round"] = "Series B"
        elif roll >= 0.4:
            custom["funding_round"] = ""
        if rng.random() >= 0.3:
            custom["pain_point"] = "manual outreach processes"
        if rng.random() < 0.99:
            custom["mutual_connection"] = "Sarah from YC"
        first = "" if rng.random() < 0.05 else f"Name{i % 997}"
        email = f"lead{i}@company{i % 5000}.example.com"
        leads.append(
            (
                lead_id,
                ACCOUNT,
                email,
                email.split("@")[1],
                first,
                "Lee",
                f"Company {i % 5000}",
                None,
                None,
                None,
                None,
                None,
                orjson.dumps(custom).decode(),
                now,
                now,
            )
        )
        members.append((ACCOUNT, CAMPAIGN, lead_id, "NOT_CONTACTED", False, False, now, now))
    return leads, members


LEAD_COLUMNS = COLUMNS["leads"]
MEMBER_COLUMNS = COLUMNS["campaign_leads"]


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    if isinstance(value, bool):
        return int(value)
    return value


def load_sqlite(path: Path, leads: list[tuple], members: list[tuple]) -> float:
    started = time.perf_counter()
    now = _sqlite_value(datetime.now(UTC))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)", (ACCOUNT, "bench", now)
        )
        conn.execute(
            "INSERT INTO campaigns (id, account_id, name, status, created_at, updated_at) "
            "VALUES (?, ?, 'bench', 'DRAFTED', ?, ?)",
            (CAMPAIGN, ACCOUNT, now, now),
        )
        for table, columns, rows in (
            ("leads", LEAD_COLUMNS, leads),
            ("campaign_leads", MEMBER_COLUMNS, members),
        ):
            marks = ", ".join("?" for _ in columns)
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
                ([_sqlite_value(v) for v in row] for row in rows),
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


async def _load_pg(dsn: str, leads: list[tuple], members: list[tuple]) -> None:
    import asyncpg

    now = datetime.now(UTC)
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO accounts (id, name, created_at) VALUES ($1, $2, $3)",
                ACCOUNT,
                "bench",
                now,
            )
            await conn.execute(
                "INSERT INTO campaigns (id, account_id, name, status, created_at, updated_at) "
                "VALUES ($1, $2, 'bench', 'DRAFTED', $3, $3)",
                CAMPAIGN,
                ACCOUNT,
                now,
            )
            await conn.copy_records_to_table("leads", records=leads, columns=LEAD_COLUMNS)
            await conn.copy_records_to_table(
                "campaign_leads", records=members, columns=MEMBER_COLUMNS
            )
            for table in ("accounts", "campaigns", "leads"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def create_pg_database() -> tuple[str, str, str]:
    import psycopg

    name = f"openlead_template_bench_{secrets.token_hex(3)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return (
        name,
        f"{base}/{name}",
        f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}",
    )


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- timing


async def save_steps(url: str) -> None:
    body = SequencesIn.model_validate(
        {
            "sequences": [
                {
                    "seq_number": 1,
                    "seq_delay_details": {"delay_in_days": 0},
                    "subject": SUBJECT,
                    "email_body": GUIDE_TEMPLATE,
                }
            ]
        }
    )
    database = create_database(url, pool_size=1)
    try:
        async with database.write() as conn:
            await service.save(conn, ACCOUNT, CAMPAIGN, body)
    finally:
        await database.dispose()


async def timed_check(url: str, rounds: int) -> tuple[float, service.CheckReport]:
    database = create_database(url, pool_size=1)
    best, report = float("inf"), None
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            async with database.read() as conn:
                report = await service.check(conn, ACCOUNT, CAMPAIGN)
            best = min(best, time.perf_counter() - started)
    finally:
        await database.dispose()
    assert report is not None
    return best, report


def raw_sqlite(path: Path) -> tuple[float, tuple]:
    conn = sqlite3.connect(path)
    try:
        started = time.perf_counter()
        row = conn.execute(raw_count_sql(postgres=False)).fetchone()
        return time.perf_counter() - started, tuple(row)
    finally:
        conn.close()


async def _raw_pg(dsn: str) -> tuple[float, tuple]:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        row = await conn.fetchrow(raw_count_sql(postgres=True))
        return time.perf_counter() - started, tuple(row)
    finally:
        await conn.close()


def run_backend(backend: str, count: int, rounds: int, workdir: Path) -> dict[str, Any]:
    print(f"[{backend}] generating {count:,} leads", flush=True)
    leads, members = generate(count)
    pg_name = None
    if backend == "sqlite":
        path = workdir / "openlead.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        load_seconds = load_sqlite(path, leads, members)
    else:
        pg_name, dsn, url = create_pg_database()
        upgrade(url)
        load_seconds = 0.0
        started = time.perf_counter()
        asyncio.run(_load_pg(dsn, leads, members))
        load_seconds = time.perf_counter() - started
    del leads, members
    print(f"[{backend}] loaded in {load_seconds:.1f} s", flush=True)
    try:
        asyncio.run(save_steps(url))
        check_times, raw_times = [], []
        report = raw_row = None
        for _ in range(rounds):
            seconds, report = asyncio.run(timed_check(url, 1))
            check_times.append(seconds)
            if backend == "sqlite":
                seconds, raw_row = raw_sqlite(path)
            else:
                seconds, raw_row = asyncio.run(_raw_pg(dsn))
            raw_times.append(seconds)
        assert report is not None and raw_row is not None
        counts = {v.name: v.leads_missing for v in report.variables if v.required}
        raw_counts = dict(zip(COUNTED, (int(v or 0) for v in raw_row[1:]), strict=True))
        # company_name is used only with a default in the subject, but bare in the body.
        assert counts == raw_counts, (counts, raw_counts)
        assert report.total_leads == raw_row[0] == count
        check_s, raw_s = min(check_times), min(raw_times)
        result = {
            "backend": backend,
            "leads": count,
            "load_seconds": round(load_seconds, 1),
            "check_seconds": round(check_s, 3),
            "raw_count_seconds": round(raw_s, 3),
            "ratio_raw_over_check": round(raw_s / check_s, 2),
            "check_rounds": [round(s, 3) for s in check_times],
            "raw_rounds": [round(s, 3) for s in raw_times],
            "missing": counts,
            "samples": {v.name: v.sample_lead_ids for v in report.variables if v.required},
        }
        print(
            f"[{backend}] check {check_s:.3f} s, raw count {raw_s:.3f} s, "
            f"ratio {raw_s / check_s:.2f}",
            flush=True,
        )
        return result
    finally:
        if pg_name:
            drop_pg_database(pg_name)


def render_throughput(rounds: int, batch: int) -> dict[str, Any]:
    direct = liquid.Environment().from_string(GUIDE_TEMPLATE)
    compiled = templates.compile_template(GUIDE_TEMPLATE)
    lead = {**JORDAN_STANDARD, **JORDAN_CUSTOM}
    expected = direct.render(**lead)

    def ours() -> str:
        values = templates.lead_values(JORDAN_STANDARD, JORDAN_CUSTOM)
        text = None
        for lead_id in range(batch):
            text = templates.render(compiled, values, lead_id, 1, "A").text
        return text or ""

    def ours_with_values() -> str:
        text = None
        for lead_id in range(batch):
            values = templates.lead_values(JORDAN_STANDARD, JORDAN_CUSTOM)
            text = templates.render(compiled, values, lead_id, 1, "A").text
        return text or ""

    def theirs() -> str:
        text = ""
        for _ in range(batch):
            text = direct.render(**JORDAN_STANDARD, **JORDAN_CUSTOM)
        return text

    assert ours() == theirs() == expected
    best = {"ours": float("inf"), "theirs": float("inf")}
    for _ in range(rounds):
        for name, func in (("ours", ours_with_values), ("theirs", theirs)):
            started = time.perf_counter()
            func()
            best[name] = min(best[name], time.perf_counter() - started)
    ours_rate, theirs_rate = batch / best["ours"], batch / best["theirs"]
    print(
        f"render: openlead {ours_rate:,.0f}/s, python-liquid {theirs_rate:,.0f}/s, "
        f"ratio {ours_rate / theirs_rate:.2f}",
        flush=True,
    )
    return {
        "template": "the guide's (6 variables)",
        "openlead_renders_per_s": round(ours_rate),
        "python_liquid_renders_per_s": round(theirs_rate),
        "ratio": round(ours_rate / theirs_rate, 2),
        "batch": batch,
        "rounds": rounds,
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    info = {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "python_liquid": liquid.__version__,
    }
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgres"] = row[0] if row else "unknown"
    except Exception:  # the PostgreSQL part is then skipped too
        info["postgres"] = None
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--renders", type=int, default=20_000, help="renders per timed batch")
    args = parser.parse_args()

    facts = machine()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    checks = []
    with tempfile.TemporaryDirectory(prefix="openlead-template-bench-") as tmp:
        for backend in backends:
            if backend == "postgres" and facts["postgres"] is None:
                print("PostgreSQL unreachable: skipped", file=sys.stderr)
                continue
            workdir = Path(tmp) / backend
            workdir.mkdir()
            checks.append(run_backend(backend, args.leads, args.rounds, workdir))
    render = render_throughput(max(5, args.rounds), args.renders)

    print()
    print(f"{'backend':<10}{'leads':>11}{'check s':>10}{'raw count s':>13}{'ratio':>7}")
    for c in checks:
        print(
            f"{c['backend']:<10}{c['leads']:>11,}{c['check_seconds']:>10.3f}"
            f"{c['raw_count_seconds']:>13.3f}{c['ratio_raw_over_check']:>7.2f}"
        )
    print(
        f"render/s  openlead {render['openlead_renders_per_s']:,}  python-liquid "
        f"{render['python_liquid_renders_per_s']:,}  ratio {render['ratio']:.2f}"
    )

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"template-{stamp}.json"
    out.write_text(
        json.dumps({"when": stamp, "machine": facts, "check": checks, "render": render}, indent=2)
        + "\n"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
