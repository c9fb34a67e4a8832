"""CSV import through the command line against the HTTP API, measured in the same run.

For each size (default 100,000 and 1,000,000 rows) and backend:

1. A CSV file of generated leads, written row by row (the lead generator of
   ``bench/import_bench.py``: realistic names, 10% with capitals or stray blanks in the
   address, five custom columns, some phones and LinkedIn URLs), with spreadsheet headers
   (``Email``, ``First Name``, ``Company``, ``LinkedIn URL``, ``Title``...). As in
   ``import_bench``, 10% of the rows are already in the target campaign, 5% in another
   campaign and 2% block-listed (half by address, half by domain).
2. **API**: a fresh database and ``openlead serve`` (``OPENLEAD_RATE_LIMIT=off``), the same
   untimed set-up through the API, then every row sent as pre-built 400-lead JSON requests,
   one at a time, straight through httpx (``import_bench.timed_import``). The bodies are
   exactly what the CLI sends: the file read with the CLI's own reader and mapping, serialised
   before the clock starts.
3. **CLI**: another fresh database and server with the same set-up, then
   ``openlead leads import FILE --campaign ID --json`` in a subprocess, timed from start to
   exit (Python start-up, the UTF-8 check of the file, reading, mapping, encoding, sending
   and the summary included). Its peak memory is its ``ru_maxrss`` from ``wait4`` (the
   kernel's high-water mark of its resident set: ``VmHWM``).
4. Both runs' counts are checked against the set-up (added, already in campaign, blocked,
   in another campaign).

Printed and written to ``bench/results/cli-import-*.json``: rows/s of each, the ratio CLI/API
(target at least 0.8), and the CLI's peak memory per size (target under 150 MB and flat from
100,000 to 1,000,000 rows).

    .venv/bin/python bench/cli_import_bench.py [--sizes 100000,1000000]
                                               [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))

import import_bench as ib

from openlead.client.csvfile import LeadCsv

RESULTS = Path(__file__).parent / "results"
HEADERS = [
    "Email",
    "First Name",
    "Last Name",
    "Company",
    "Website",
    "Location",
    "Phone",
    "LinkedIn URL",
    "Title",
    "Industry",
    "Employees",
    "Score",
    "Source",
]
CUSTOM = ["title", "industry", "employees", "score", "source"]


@dataclass
class Generated:
    path: Path
    rows: int
    bytes: int
    workload: ib.Workload  # the set-up only: its ``leads`` list stays empty


def write_csv(path: Path, count: int, seed: int = 20261129) -> Generated:
    """``import_bench.generate``'s leads and shares, streamed to a CSV file: only the set-up
    subsets are kept in memory."""
    rng = random.Random(seed)
    n_in = round(count * ib.SHARE_IN_CAMPAIGN)
    n_blocked = round(count * ib.SHARE_BLOCKED)
    n_other = round(count * ib.SHARE_IN_OTHER_CAMPAIGN)
    kinds = ["in"] * n_in + ["blocked"] * n_blocked + ["other"] * n_other
    kinds += ["new"] * (count - len(kinds))
    rng.shuffle(kinds)
    domains = [f"company{d}.example.com" for d in range(max(1, count // 50))]
    blocked_domains = [f"blocked{d}.example.org" for d in range(max(1, n_blocked // 20))]
    in_campaign: list[dict[str, Any]] = []
    in_other: list[dict[str, Any]] = []
    blocked_emails: list[str] = []
    blocked_seen = 0
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADERS)
        for i, kind in enumerate(kinds):
            if kind == "blocked" and blocked_seen % 2 == 1:
                lead = ib._lead(rng, i, rng.choice(blocked_domains))
            else:
                lead = ib._lead(rng, i, rng.choice(domains))
            if kind == "blocked":
                if blocked_seen % 2 == 0:
                    blocked_emails.append(lead["email"].strip().lower())
                blocked_seen += 1
            elif kind == "in":
                in_campaign.append(lead)
            elif kind == "other":
                in_other.append(lead)
            custom = lead["custom_fields"]
            writer.writerow(
                [
                    lead["email"],
                    lead["first_name"],
                    lead["last_name"],
                    lead["company_name"],
                    lead["website"],
                    lead["location"],
                    lead.get("phone_number", ""),
                    lead.get("linkedin_profile", ""),
                    *(custom[k] for k in CUSTOM),
                ]
            )
    expected = {
        "added": count - n_in - n_blocked - n_other,
        "already": n_in,
        "blocked": n_blocked,
        "other": n_other,
    }
    workload = ib.Workload([], in_campaign, in_other, blocked_emails, blocked_domains, expected)
    return Generated(path, count, path.stat().st_size, workload)


def bodies_as_the_cli_sends(path: Path) -> list[bytes]:
    bodies, batch = [], []
    for lead in LeadCsv.open(path).leads():
        batch.append(lead)
        if len(batch) == ib.BATCH:
            bodies.append(orjson.dumps({"lead_list": batch}))
            batch = []
    if batch:
        bodies.append(orjson.dumps({"lead_list": batch}))
    return bodies


class Database:
    """A fresh database per run: a SQLite file, or a new PostgreSQL database."""

    def __init__(self, backend: str, workdir: Path, purpose: str) -> None:
        self.backend = backend
        self.name: str | None = None
        if backend == "sqlite":
            fresh = Path(tempfile.mkdtemp(prefix=purpose + "-", dir=workdir))
            self.url = f"sqlite+aiosqlite:///{fresh / 'openlead.db'}"
        else:
            self.name, dsn = ib.create_pg_database(purpose)
            self.url = dsn.replace("postgresql://", "postgresql+asyncpg://")

    def drop(self) -> None:
        if self.name:
            ib.drop_pg_database(self.name)


def _server(backend: str, workdir: Path, purpose: str, generated: Generated):  # type: ignore[no-untyped-def]
    database = Database(backend, workdir, purpose)
    server = ib.Server(database.url, workdir / f"server-{purpose}.log")
    server.start()
    client = ib.Client(server)
    try:
        target, _other = ib.set_up(client, generated.workload)
    finally:
        client.close()
    return database, server, target


def run_api(backend: str, generated: Generated, workdir: Path) -> dict[str, Any]:
    database, server, target = _server(backend, workdir, "api", generated)
    try:
        bodies = bodies_as_the_cli_sends(generated.path)
        load = ib._load_average() if hasattr(ib, "_load_average") else None
        elapsed, answers = ib.timed_import(server, target, bodies, 1)
        memory = server.memory_mb()
    finally:
        server.stop()
        database.drop()
    expected = generated.workload.expected
    assert answers["added_count"] == expected["added"], (answers, expected)
    assert answers["already_added_to_campaign"] == expected["already"], answers
    assert answers["block_count"] == expected["blocked"], answers
    return {
        "seconds": round(elapsed, 3),
        "rows_per_s": round(generated.rows / elapsed),
        "requests": len(bodies),
        "server_peak_mb": round(memory["VmHWM"], 1),
        "load_before": load,
        "answers": answers,
    }


# The CLI is started by a small launcher that forks (a real fork of a small process) and
# reports its child's ru_maxrss. Started straight from this process, the child's figure
# would include this process's own peak: Linux carries the pre-exec high-water mark of a
# vfork()ed child over into ru_maxrss.
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"exit": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss,
               "cpu": usage.ru_utime + usage.ru_stime}, out)
"""


def run_cli(backend: str, generated: Generated, workdir: Path) -> dict[str, Any]:
    database, server, target = _server(backend, workdir, "cli", generated)
    out, err, usage_file = workdir / "cli.out", workdir / "cli.err", workdir / "cli.usage"
    command = [
        sys.executable,
        "-m",
        "openlead.cli",
        "leads",
        "import",
        str(generated.path),
        "--campaign",
        str(target),
        "--json",
    ]
    env = {**os.environ, "OPENLEAD_URL": server.base_url, "OPENLEAD_API_KEY": server.key}
    try:
        load = ib._load_average() if hasattr(ib, "_load_average") else None
        with out.open("wb") as stdout, err.open("wb") as stderr:
            started = time.perf_counter()
            process = subprocess.run(
                [sys.executable, "-c", LAUNCHER, str(usage_file), *command],
                env=env,
                stdout=stdout,
                stderr=stderr,
                check=False,
            )
            elapsed = time.perf_counter() - started
    finally:
        server.stop()
        database.drop()
    usage = json.loads(usage_file.read_text())
    if process.returncode != 0 or usage["exit"] != 0:
        raise RuntimeError(f"the CLI failed ({usage['exit']}): {err.read_text()[-3000:]}")
    summary = json.loads(out.read_text())
    expected = generated.workload.expected
    reasons = summary["skipped_by_reason"]
    assert summary["total"] == generated.rows, summary
    assert summary["added"] == expected["added"], (summary, expected)
    assert reasons.get("Already exists in this campaign", 0) == expected["already"], summary
    assert reasons.get("On global block list", 0) == expected["blocked"], summary
    assert reasons.get("Exists in another campaign", 0) == expected["other"], summary
    return {
        "seconds": round(elapsed, 3),
        "rows_per_s": round(generated.rows / elapsed),
        "peak_mb": round(usage["maxrss_kb"] / 1024, 1),
        "cpu_seconds": round(usage["cpu"], 1),
        "load_before": load,
        "summary": {
            k: summary[k]
            for k in ("added", "skipped", "skipped_by_reason", "requests", "retries", "elapsed")
        },
    }


@dataclass
class Result:
    backend: str
    rows: int
    csv_mb: float
    api_seconds: float
    api_rows_per_s: int
    cli_seconds: float
    cli_rows_per_s: int
    ratio: float
    cli_peak_mb: float
    cli_cpu_seconds: float
    server_peak_mb_api: float
    details: dict[str, Any]


def run(backend: str, rows: int, tmp: Path, repeat: int) -> Result:
    """``repeat`` alternating rounds (API, CLI, API, CLI...); the best time of each counts,
    so that a burst of load from elsewhere on the machine does not decide the ratio."""
    workdir = tmp / f"{backend}-{rows}"
    workdir.mkdir()
    print(f"[{backend} {rows:,}] writing the CSV", flush=True)
    generated = write_csv(workdir / "leads.csv", rows)
    apis, clis = [], []
    for round_ in range(1, repeat + 1):
        print(f"[{backend} {rows:,}] round {round_}: API, pre-built 400-lead requests", flush=True)
        apis.append(run_api(backend, generated, workdir))
        print(f"[{backend} {rows:,}]   {apis[-1]['rows_per_s']:,} rows/s", flush=True)
        print(f"[{backend} {rows:,}] round {round_}: CLI, openlead leads import", flush=True)
        clis.append(run_cli(backend, generated, workdir))
        print(
            f"[{backend} {rows:,}]   {clis[-1]['rows_per_s']:,} rows/s, "
            f"peak {clis[-1]['peak_mb']} MB",
            flush=True,
        )
    generated.path.unlink()
    api = min(apis, key=lambda r: r["seconds"])
    cli = min(clis, key=lambda r: r["seconds"])
    return Result(
        backend=backend,
        rows=rows,
        csv_mb=round(generated.bytes / 1e6, 1),
        api_seconds=api["seconds"],
        api_rows_per_s=api["rows_per_s"],
        cli_seconds=cli["seconds"],
        cli_rows_per_s=cli["rows_per_s"],
        ratio=round(api["seconds"] / cli["seconds"], 3),
        cli_peak_mb=max(r["peak_mb"] for r in clis),
        cli_cpu_seconds=cli["cpu_seconds"],
        server_peak_mb_api=api["server_peak_mb"],
        details={"api": apis, "cli": clis},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated row counts (default 100000,1000000)",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="alternating rounds per size (default: 2 up to 200,000 rows, else 1)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="openlead-cli-bench-") as tmp:
        for backend in backends:
            for rows in sizes:
                repeat = args.repeat or (2 if rows <= 200_000 else 1)
                results.append(run(backend, rows, Path(tmp), repeat))

    print()
    print(
        f"{'backend':<10}{'rows':>11}{'API rows/s':>12}{'CLI rows/s':>12}{'ratio':>8}"
        f"{'CLI peak MB':>13}{'CLI CPU s':>11}"
    )
    for r in results:
        print(
            f"{r.backend:<10}{r.rows:>11,}{r.api_rows_per_s:>12,}{r.cli_rows_per_s:>12,}"
            f"{r.ratio:>8.2f}{r.cli_peak_mb:>13.1f}{r.cli_cpu_seconds:>11.1f}"
        )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "sizes": sizes,
        "batch": ib.BATCH,
        "machine": ib.machine(),
        "total_seconds": round(time.perf_counter() - started, 1),
        "results": [asdict(r) for r in results],
    }
    if "postgres" in backends:
        report["machine"]["postgres"] = ib._pg_version()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"cli-import-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
