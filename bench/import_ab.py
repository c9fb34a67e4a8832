"""Two versions of openlead importing the same leads, side by side, requests alternated.

On a shared machine the import figure of one run can differ from the next by a fifth, more
than most changes are worth. Here both servers run at once, each on its own database, and
each 400-lead request goes to both, in turn (which one goes first alternates), so both meet
the same load. It prints each version's total time and the ratio new ÷ old (below 1: the
new one is faster).

    python bench/import_ab.py --old /path/to/old/src --new src --backend postgres

``--old`` and ``--new`` are source folders (a ``src`` holding the ``openlead`` package, say
of a ``git worktree`` at another revision); the servers import the package from there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import import_bench as bench


def _server(version: str, source: str, backend: str, workdir: Path, dropped: list[str]):
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir}/{version}.db"
    else:
        name, dsn = bench.create_pg_database(version)
        dropped.append(name)
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
    os.environ["PYTHONPATH"] = str(Path(source).resolve())
    server = bench.Server(url, workdir / f"{version}.log")
    server.start()
    return server


def compare(old: str, new: str, backend: str, count: int) -> dict[str, list[float]]:
    workload = bench.generate(count)
    bodies = [bench._import_body(chunk) for chunk in bench.batches(workload.leads)]
    dropped: list[str] = []
    servers: dict[str, bench.Server] = {}
    with tempfile.TemporaryDirectory(prefix="openlead-ab-") as tmp:
        try:
            for version, source in (("old", old), ("new", new)):
                servers[version] = _server(version, source, backend, Path(tmp), dropped)
            clients = {version: bench.Client(server) for version, server in servers.items()}
            targets = {v: bench.set_up(client, workload)[0] for v, client in clients.items()}
            for version, server in servers.items():
                bench.settle(backend, _database_of(server, Path(tmp), version, backend))
            times: dict[str, list[float]] = {"old": [], "new": []}
            for i, body in enumerate(bodies):
                for version in ("old", "new") if i % 2 == 0 else ("new", "old"):
                    started = time.perf_counter()
                    clients[version].post(f"/campaigns/{targets[version]}/leads", content=body)
                    times[version].append(time.perf_counter() - started)
            for client in clients.values():
                client.close()
            return times
        finally:
            for server in servers.values():
                server.stop()
            for name in dropped:
                bench.drop_pg_database(name)


def _database_of(server: bench.Server, workdir: Path, version: str, backend: str) -> object:
    if backend == "sqlite":
        return workdir / f"{version}.db"
    return server.database_url.replace("postgresql+asyncpg://", "postgresql://")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="source folder of the old version")
    parser.add_argument("--new", default="src", help="source folder of the new version")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    times = compare(args.old, args.new, args.backend, args.leads)
    for version, spent in times.items():
        print(
            f"{args.backend:<10}{version:<5}{sum(spent):9.2f} s{args.leads / sum(spent):10,.0f}"
            f" leads/s  median {1000 * statistics.median(spent):7.2f} ms a request"
        )
    print(f"{args.backend:<10}new ÷ old time {sum(times['new']) / sum(times['old']):.3f}")


if __name__ == "__main__":
    main()
