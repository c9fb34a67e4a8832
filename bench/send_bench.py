"""Sending: dispatcher throughput against raw SMTP, and the cost of finding due work.

For each backend:

1. **Throughput.** A fresh database (SQLite file in a temp dir, or a new PostgreSQL database),
   set up through a real ``openlead serve`` (its own dispatcher off): one campaign with a
   schedule open all week (00:00 to 24:00, ``min_time_btw_emails`` 0, a new-lead budget of a
   million), a two-step sequence whose step 1 uses standard and custom-field variables and a
   tracked link, and ``--mailboxes`` mailboxes (default 8) that all point at one SMTP sink.
   Started through the API (which checks the templates), then paused. Untimed, ``--leads``
   leads (default 20,000, five custom fields each) are written straight into the database
   (``executemany`` / ``COPY``, then ``ANALYZE``), all waiting for step 1.

   The sink is a minimal aiosmtpd server (uvloop, a handler that counts and keeps the message)
   in a process of its own. The dispatcher is a real ``openlead worker`` process, started
   while the campaign is paused; the clock starts when the campaign is set ``ACTIVE`` in the
   database and stops at the sink's last arrival. Then the database must show every lead at
   step 2 and every message "sent", and the sink must have each lead's address exactly once.
   The worker's peak memory is its ``VmHWM``.

   The limit: the messages the sink received in that run, byte for byte, sent again by raw
   ``aiosmtplib`` (the same EHLO, MAIL, RCPT, DATA per message, on uvloop as the worker, one
   process) to the same sink over as many connections as there are mailboxes, each carrying
   its mailbox's messages, held open for the whole run. Timed from the first connect to the
   sink's last arrival. Ratio = dispatcher messages/s ÷ raw messages/s; ``--reps`` rounds
   (default 3), each on a fresh database, medians reported.

2. **Finding due work.** A campaign of 10,000 and one of 1,000,000 leads (``--due-sizes``),
   written raw (then ``ANALYZE``), as a campaign sent in lead order looks half way through:
   the first tenth completed, the rest of the first half at step 2 (800 follow-ups due now,
   spread over the mailboxes, the others due in one to three days) but for 2% held at step 1
   (blocked at the moment of sending, or missing a variable), the second half waiting for
   step 1; a ``messages`` row for every step sent, and list_bench's block list and
   unsubscribes. Timed in-process: one ``Dispatcher.tick`` with the SMTP part replaced by
   nothing, so it is the read of the running campaigns and the claim transaction (campaign
   and mailboxes held, due follow-ups per mailbox, fresh leads, the claim's writes, the
   reservations, the profiles and earlier messages of the claimed leads, commit): 1,600 leads
   (8 mailboxes, the batch of 200 each) every time. After each tick the claimed leads and
   the counters are put back as they were (untimed; ``VACUUM`` on PostgreSQL). The median of
   ``--claim-reps`` ticks after one warm-up, with the time of each statement kind. Ratio =
   1M cost / 10k cost (target at most 2).

Printed and written to ``bench/results/send-*.json``.

    .venv/bin/python bench/send_bench.py [--leads 20000] [--backend sqlite|postgres|both]
        [--part throughput|due|both] [--reps 3] [--due-sizes 10000,1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import pickle
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
import uvloop
from sqlalchemy import bindparam, event, update

from openlead.config import Settings
from openlead.db.engine import create_database
from openlead.db.migrate import upgrade
from openlead.db.tables import campaign_leads, campaigns, email_accounts
from openlead.leads.lifecycle import HOLD_MISSING
from openlead.sending.dispatcher import Dispatcher
from openlead.suppression.service import HOLD
from openlead.vault import Vault

# The server process, scratch databases, machine facts and the raw loaders are the other
# benchmarks', shared.
sys.path.insert(0, str(Path(__file__).parent))
from import_bench import (
    Server,
    _pg_version,
    create_pg_database,
    drop_pg_database,
    free_port,
    machine,
)
from list_bench import (
    COLUMNS,
    Tables,
    account_of,
    generate,
    load_postgres_tables,
    load_sqlite_tables,
)

RESULTS = Path(__file__).parent / "results"
SECRET = "send-bench-secret-key-not-for-production"
BATCH = 200  # Settings.sender_batch, the claim's share per mailbox
DUE_NOW = 800  # follow-ups due at once in the due-work campaign, whatever its size
SHARE_HELD = 0.02  # of the leads contacted so far: held at step 1, still NOT_CONTACTED
SEQUENCE = {
    "sequences": [
        {
            "seq_number": 1,
            "seq_delay_details": {"delay_in_days": 0},
            "subject": "{{first_name}}, a question for {{company_name}}",
            "email_body": (
                "<p>Hi {{first_name}},</p>\n"
                "<p>As {{title}} at {{company_name}} ({{employees}} people), you may like how "
                "other {{industry}} teams in {{ location | default: 'your city' }} halved the "
                "time they spend on outreach.</p>\n"
                '<p><a href="https://openlead.example/case-study">The case study</a> is a '
                "two-minute read.</p>\n"
                "<p>{Best|Cheers|Thanks},<br>Sam</p>"
            ),
        },
        {
            "seq_number": 2,
            "seq_delay_details": {"delay_in_days": 3},
            "subject": "",
            "email_body": "<p>{{first_name}}, any thoughts on my note about {{industry}}?</p>",
        },
    ]
}
MEMBER_COLUMNS = COLUMNS["campaign_leads"] + [
    "next_seq",
    "next_send_at",
    "email_account_id",
    "last_sent_at",
    "hold",
]
MESSAGE_COLUMNS = [
    "account_id",
    "campaign_id",
    "lead_id",
    "seq_number",
    "variant_label",
    "email_account_id",
    "message_id",
    "state",
    "links",
    "created_at",
    "sent_at",
]


# --------------------------------------------------------------------------- the sink


def _sink_main(port: int, control: Any, count: Any, last: Any, sessions: Any) -> None:
    """A minimal SMTP server: accepts everything, counts, keeps (from, to, content)."""
    import uvloop
    from aiosmtpd.smtp import SMTP

    kept: list[tuple[str, str, bytes]] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            kept.append((envelope.mail_from, envelope.rcpt_tos[0], envelope.content))
            count.value += 1
            last.value = time.monotonic()
            return "250 OK"

    handler = Handler()

    def protocol() -> SMTP:
        sessions.value += 1
        return SMTP(handler, hostname="sink.bench.example", ident="bench sink")

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        server = await loop.create_server(protocol, "127.0.0.1", port)

        def commands() -> None:
            while True:
                command, *args = control.recv()
                if command == "reset":
                    kept.clear()
                    count.value = sessions.value = 0
                    last.value = 0.0
                elif command == "dump":
                    with open(args[0], "wb") as out:
                        pickle.dump(kept, out, protocol=pickle.HIGHEST_PROTOCOL)
                elif command == "stop":
                    loop.call_soon_threadsafe(stopped.set)
                    control.send("ok")
                    return
                control.send("ok")

        threading.Thread(target=commands, daemon=True).start()
        control.send("ready")
        await stopped.wait()
        server.close()

    uvloop.run(serve())


class Sink:
    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.port = free_port()
        self.count = context.RawValue("q", 0)
        self.last = context.RawValue("d", 0.0)
        self.sessions = context.RawValue("q", 0)
        self._control, child = context.Pipe()
        self.process = context.Process(
            target=_sink_main,
            args=(self.port, child, self.count, self.last, self.sessions),
            daemon=True,
        )
        self.process.start()
        if not self._control.poll(60) or self._control.recv() != "ready":
            raise RuntimeError("the sink did not start")

    def command(self, *args: Any) -> None:
        self._control.send(args)
        if not self._control.poll(120) or self._control.recv() != "ok":
            raise RuntimeError(f"the sink did not answer {args[0]}")

    def reset(self) -> None:
        self.command("reset")

    def wait_for(self, expected: int, timeout: float, alive: Any = None) -> float:
        """The monotonic time of the last arrival once ``expected`` messages have come."""
        deadline = time.monotonic() + timeout
        while self.count.value < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sink has {self.count.value} of {expected} messages")
            if alive is not None and not alive():
                raise RuntimeError("the sender died")
            time.sleep(0.005)
        return self.last.value

    def kept(self, path: Path) -> list[tuple[str, str, bytes]]:
        self.command("dump", str(path))
        with path.open("rb") as source:
            return pickle.load(source)

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.is_alive():
            self.command("stop")
            self.process.join(10)


def _cpu_seconds(pid: int | None) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _database_cpu_seconds() -> float:
    """The CPU of every PostgreSQL server process on this machine (zero without one): the
    database's share of a run, read before and after it."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        if text.split("(", 1)[1].startswith("postgres"):
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            values[name] = round(int(rest.split()[0]) / 1024, 1)
    return values


# --------------------------------------------------------------------------- the raw sender


async def _raw_lane(port: int, messages: list[tuple[str, str, bytes]]) -> None:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=60)
    await smtp.connect()
    await smtp.ehlo()
    for sender, recipient, content in messages:
        await smtp.mail(sender)
        await smtp.rcpt(recipient)
        await smtp.data(content)
    await smtp.quit()


def raw_send(sink: Sink, kept: list[tuple[str, str, bytes]]) -> tuple[float, float, int]:
    """The same messages over one connection per sender, all at once: seconds, CPU seconds
    of the sending process, connections."""
    lanes: dict[str, list[tuple[str, str, bytes]]] = defaultdict(list)
    for message in kept:
        lanes[message[0]].append(message)

    async def run() -> None:
        await asyncio.gather(*(_raw_lane(sink.port, lane) for lane in lanes.values()))

    sink.reset()
    started, cpu = time.monotonic(), time.process_time()
    # On uvloop, as the dispatcher runs (openlead serve and openlead worker both use it).
    uvloop.run(run())
    cpu = time.process_time() - cpu
    last = sink.wait_for(len(kept), timeout=60)
    return last - started, cpu, len(lanes)


# --------------------------------------------------------------------------- set-up


def _api(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, params={"api_key": server.key}, timeout=600)


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    if response.status_code != 200:
        raise RuntimeError(f"POST {path}: {response.status_code} {response.text[:500]}")
    return response.json()


def set_up_campaign(server: Server, mailboxes: int, sink_port: int) -> tuple[int, list[int]]:
    """A campaign ready to send, paused; and its mailboxes' ids."""
    with _api(server) as http:
        campaign = _post(http, "/campaigns", {"name": "Sending benchmark"})["id"]
        boxes = [
            _post(
                http,
                "/email-accounts/save",
                {
                    "from_name": f"Sam Sender {i}",
                    "from_email": f"sender{i}@openlead.example",
                    "user_name": f"sender{i}@openlead.example",
                    "password": "",
                    "smtp_host": "127.0.0.1",
                    "smtp_port": sink_port,
                    "smtp_security": "NONE",
                    "max_email_per_day": 100_000,
                },
            )["id"]
            for i in range(mailboxes)
        ]
        _post(http, f"/campaigns/{campaign}/email-accounts", {"email_account_ids": boxes})
        _post(
            http,
            f"/campaigns/{campaign}/schedule",
            {
                "timezone": "UTC",
                "days_of_the_week": [0, 1, 2, 3, 4, 5, 6],
                "start_hour": "00:00",
                "end_hour": "24:00",
                "min_time_btw_emails": 0,
                "max_new_leads_per_day": 1_000_000,
            },
        )
        _post(http, f"/campaigns/{campaign}/sequences", SEQUENCE)
    return campaign, boxes


def start_then_pause(server: Server, campaign: int) -> None:
    """START checks the templates against the loaded leads; paused until the clock starts."""
    with _api(server) as http:
        for status in ("START", "PAUSED"):
            _post(http, f"/campaigns/{campaign}/status", {"status": status})


@dataclass
class Scratch:
    """One fresh database of one backend."""

    backend: str
    workdir: Path
    name: str = ""  # PostgreSQL's
    dsn: str = ""
    path: Path | None = None

    @property
    def url(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite+aiosqlite:///{self.path}"
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://")

    @property
    def where(self) -> Path | str:
        return self.path if self.path is not None else self.dsn

    @classmethod
    def create(cls, backend: str, workdir: Path, purpose: str) -> Scratch:
        if backend == "sqlite":
            path = workdir / f"{purpose}.db"
            for stale in workdir.glob(f"{purpose}.db*"):
                stale.unlink()
            scratch = cls(backend, workdir, path=path)
        else:
            name, dsn = create_pg_database(purpose)
            scratch = cls(backend, workdir, name=name, dsn=dsn)
        upgrade(scratch.url)
        return scratch

    def load(self, tables: Tables) -> float:
        if self.path is not None:
            return load_sqlite_tables(self.path, tables)
        return load_postgres_tables(self.dsn, tables)

    def scalar(self, sql: str) -> Any:
        """The first value of one statement's answer, committed."""
        if self.path is not None:
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                return conn.execute(sql).fetchone()[0]
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as pg:
            row = pg.execute(sql).fetchone()
            assert row is not None
            return row[0]

    def drop(self) -> None:
        if self.name:
            drop_pg_database(self.name)


def _server(scratch: Scratch) -> Server:
    server = Server(scratch.url, scratch.workdir / "server.log")
    server.start()
    return server


def _leads(count: int, account: int, campaign: int) -> list[tuple[Any, ...]]:
    """list_bench's leads: names, company, location, five custom fields."""
    return generate(count, account, campaign).leads


# --------------------------------------------------------------------------- 1. throughput


@dataclass
class Round:
    dispatcher_seconds: float
    dispatcher_per_s: float
    drained_seconds: float  # until the database showed every outcome
    dispatcher_sessions: int
    worker_peak_mb: float
    worker_rss_mb: float
    worker_cpu_ms_per_message: float
    sink_cpu_ms_per_message: float
    database_cpu_ms_per_message: float  # PostgreSQL's server processes (0 on SQLite)
    raw_seconds: float
    raw_per_s: float
    raw_cpu_ms_per_message: float
    raw_connections: int
    ratio: float
    bytes_per_message: int
    load_average: list[float]

    def line(self) -> str:
        return (
            f"dispatcher {self.dispatcher_per_s:,}/s ({self.dispatcher_sessions} sessions), "
            f"raw {self.raw_per_s:,}/s, ratio {self.ratio:.2f}, worker peak "
            f"{self.worker_peak_mb} MB; CPU per message: worker "
            f"{self.worker_cpu_ms_per_message} ms, raw client {self.raw_cpu_ms_per_message}"
            f" ms, sink {self.sink_cpu_ms_per_message} ms, database server"
            f" {self.database_cpu_ms_per_message} ms; load {self.load_average[0]}"
        )


def _worker(scratch: Scratch, log: Path, profile: Path | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OPENLEAD_DATABASE_URL": scratch.url,
        "OPENLEAD_SECRET_KEY": SECRET,
        "OPENLEAD_SENDER_INTERVAL_SECONDS": "0.05",
        "OPENLEAD_LOG_LEVEL": "info",
    }
    with log.open("ab") as out:
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
        process = subprocess.Popen(
            [sys.executable, *profiler, "-m", "openlead.cli", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while "started" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the worker did not start: {log.read_text()[-3000:]}")
        time.sleep(0.05)
    time.sleep(0.3)  # a few idle ticks
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def throughput_round(
    backend: str, count: int, mailboxes: int, sink: Sink, workdir: Path, profile: Path | None = None
) -> Round:
    scratch = Scratch.create(backend, workdir, "send")
    try:
        server = _server(scratch)
        try:
            campaign, _ = set_up_campaign(server, mailboxes, sink.port)
            account = account_of(backend, scratch.where, campaign)
            start_then_pause(server, campaign)  # no leads yet: only the templates are checked
        finally:
            server.stop()
        stamp = datetime.now(UTC) - timedelta(hours=1)
        members = [
            (account, campaign, i + 1, "NOT_CONTACTED", False, False, stamp, stamp)
            for i in range(count)
        ]
        scratch.load(
            {
                "leads": (COLUMNS["leads"], _leads(count, account, campaign)),
                "campaign_leads": (COLUMNS["campaign_leads"], members),
            }
        )
        sink.reset()
        worker = _worker(scratch, workdir / "worker.log", profile)
        try:
            cpu_before, sink_before = _cpu_seconds(worker.pid), sink.cpu_seconds()
            database_before = _database_cpu_seconds()
            started = time.monotonic()
            scratch.scalar(
                f"UPDATE campaigns SET status = 'ACTIVE' WHERE id = {campaign} RETURNING id"
            )
            last = sink.wait_for(count, timeout=3600, alive=lambda: worker.poll() is None)
            sink_cpu = sink.cpu_seconds() - sink_before
            database_cpu = _database_cpu_seconds() - database_before
            sessions = sink.sessions.value
            sent_sql = "SELECT count(*) FROM messages WHERE state = 'sent'"
            deadline = time.monotonic() + 120
            while scratch.scalar(sent_sql) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError("the outcomes were not all recorded")
                time.sleep(0.01)
            drained = time.monotonic() - started
            worker_cpu = _cpu_seconds(worker.pid) - cpu_before
            memory = _memory_mb(worker.pid)
            load = [round(x, 2) for x in os.getloadavg()]
        finally:
            _stop(worker)
        at_step_2 = scratch.scalar(
            "SELECT count(*) FROM campaign_leads WHERE next_seq = 2 AND status = 'IN_PROGRESS'"
        )
        assert at_step_2 == count, (at_step_2, count)
        assert sink.count.value == count, (sink.count.value, count)
        kept = sink.kept(workdir / "kept.pickle")
        assert len({to for _, to, _ in kept}) == count, "a lead got two messages"
    finally:
        scratch.drop()
    dispatcher_seconds = last - started
    raw_seconds, raw_cpu, connections = raw_send(sink, kept)
    raw_sink_ok = sink.count.value == count
    assert raw_sink_ok, (sink.count.value, count)
    return Round(
        dispatcher_seconds=round(dispatcher_seconds, 3),
        dispatcher_per_s=round(count / dispatcher_seconds, 1),
        drained_seconds=round(drained, 3),
        dispatcher_sessions=sessions,
        worker_peak_mb=memory["VmHWM"],
        worker_rss_mb=memory["VmRSS"],
        worker_cpu_ms_per_message=round(worker_cpu * 1000 / count, 3),
        sink_cpu_ms_per_message=round(sink_cpu * 1000 / count, 3),
        database_cpu_ms_per_message=round(database_cpu * 1000 / count, 3),
        raw_seconds=round(raw_seconds, 3),
        raw_per_s=round(count / raw_seconds, 1),
        raw_cpu_ms_per_message=round(raw_cpu * 1000 / count, 3),
        raw_connections=connections,
        ratio=round(raw_seconds / dispatcher_seconds, 3),
        bytes_per_message=round(sum(len(c) for _, _, c in kept) / len(kept)),
        load_average=load,
    )


# --------------------------------------------------------------------------- 2. due work


@dataclass
class DueCampaign:
    tables: Tables
    due: list[tuple[int, datetime]]  # the follow-ups due now: (lead, next_send_at)
    account: int
    campaign: int


def due_campaign(
    count: int, account: int, campaign: int, boxes: list[int], now: datetime, seed: int = 20261201
) -> DueCampaign:
    """A campaign sent in lead order, half way through: the first tenth of the leads
    completed, the rest of the first half at step 2 (``DUE_NOW`` of them due now, the others
    in the days to come) but for ``SHARE_HELD`` of them held at step 1 (blocked at the moment
    of sending, or missing a variable), the second half waiting for step 1. A ``messages``
    row for every step sent."""
    rng = random.Random(seed)
    data = generate(count, account, campaign)
    start = now - timedelta(days=10)
    members, messages, due = [], [], []
    contacted = range(count // 10, count // 2)
    held = set(rng.sample(contacted, int(len(contacted) * SHARE_HELD)))
    due_at = set(rng.sample([i for i in contacted if i not in held], DUE_NOW))
    for i in range(count):
        lead = i + 1
        box = boxes[i % len(boxes)]
        added = start + timedelta(seconds=i // 400)
        base = (account, campaign, lead)
        if i >= count // 2 or i in held:
            members.append(
                (
                    *base,
                    "NOT_CONTACTED",
                    False,
                    False,
                    added,
                    added,
                    1,
                    None,
                    box if i in held else None,
                    None,
                    (HOLD if i % 2 else HOLD_MISSING) if i in held else None,
                )
            )
            continue
        sent_1 = now - timedelta(days=3, seconds=rng.randrange(86400))
        messages.append((*base, 1, "A", box, f"<{lead}.1@bench>", "sent", "[]", sent_1, sent_1))
        if i < count // 10:
            sent_2 = sent_1 + timedelta(days=3)
            messages.append((*base, 2, "A", box, f"<{lead}.2@bench>", "sent", "[]", sent_2, sent_2))
            members.append(
                (*base, "COMPLETED", False, False, added, sent_2, None, None, box, sent_2, None)
            )
            continue
        if i in due_at:
            when = now - timedelta(seconds=rng.randrange(1, 6 * 3600))
            due.append((lead, when))
        else:
            when = now + timedelta(seconds=rng.randrange(3600, 3 * 86400))
        members.append(
            (*base, "IN_PROGRESS", False, False, added, sent_1, 2, when, box, sent_1, None)
        )
    tables: Tables = {
        "leads": (COLUMNS["leads"], data.leads),
        "campaign_leads": (MEMBER_COLUMNS, members),
        "messages": (MESSAGE_COLUMNS, messages),
        "block_list": (COLUMNS["block_list"], data.block_list),
        "unsubscribes": (COLUMNS["unsubscribes"], data.unsubscribes),
    }
    return DueCampaign(tables, due, account, campaign)


class StatementTimes:
    """Wall time per statement kind (its first words), from SQLAlchemy's cursor events."""

    def __init__(self, engine: Any) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self.on = False
        sync = engine.sync_engine

        @event.listens_for(sync, "before_cursor_execute")
        def _before(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            conn.info["bench_started"] = time.perf_counter()

        @event.listens_for(sync, "after_cursor_execute")
        def _after(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
            if self.on:
                words = " ".join(statement.split()[:6])
                self.totals[words] += time.perf_counter() - conn.info["bench_started"]


async def _claims(
    url: str, setup: DueCampaign, boxes: list[int], now: datetime, reps: int
) -> tuple[list[float], dict[str, float]]:
    database = create_database(url)
    settings = Settings(database_url=url, secret_key=SECRET)
    dispatcher = Dispatcher(database, Vault(SECRET.encode()), settings)

    async def no_smtp(*_args: Any) -> None:
        return None

    dispatcher._lane = no_smtp  # type: ignore[method-assign]
    timings = StatementTimes(database.writer)
    expected = len(boxes) * settings.sender_batch
    a, c = setup.account, setup.campaign

    async def put_back() -> None:
        async with database.write() as conn:
            await conn.execute(
                update(campaign_leads)
                .where(
                    campaign_leads.c.account_id == a,
                    campaign_leads.c.campaign_id == c,
                    campaign_leads.c.next_seq == 1,
                    campaign_leads.c.next_send_at.is_not(None),
                )
                .values(next_send_at=None, email_account_id=None)
            )
            await conn.execute(
                update(campaign_leads)
                .where(
                    campaign_leads.c.account_id == a,
                    campaign_leads.c.campaign_id == c,
                    campaign_leads.c.lead_id == bindparam("lead"),
                )
                .values(next_send_at=bindparam("at")),
                [{"lead": lead, "at": at} for lead, at in setup.due],
            )
            await conn.execute(
                update(email_accounts)
                .where(email_accounts.c.account_id == a)
                .values(sent_log=None, last_claimed_at=None)
            )
            await conn.execute(
                update(campaigns)
                .where(campaigns.c.id == c)
                .values(new_leads_day=None, new_leads_today=0)
            )
        if not database.is_sqlite:
            async with database.writer.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.exec_driver_sql("VACUUM campaign_leads, email_accounts, campaigns")

    times = []
    try:
        for rep in range(reps + 1):
            timings.on = rep > 0
            started = time.perf_counter()
            claimed = await dispatcher.tick(now)
            elapsed = time.perf_counter() - started
            timings.on = False
            assert claimed == expected, (claimed, expected)
            if rep:
                times.append(elapsed * 1000)
            await put_back()
    finally:
        await dispatcher.journal.close()
        await database.dispose()
    per_tick = {
        k: round(v * 1000 / reps, 2)
        for k, v in sorted(timings.totals.items(), key=lambda kv: -kv[1])
    }
    return times, per_tick


def due_cost(backend: str, count: int, mailboxes: int, reps: int, workdir: Path) -> dict[str, Any]:
    scratch = Scratch.create(backend, workdir, "due")
    try:
        server = _server(scratch)
        try:
            campaign, boxes = set_up_campaign(server, mailboxes, free_port())
            account = account_of(backend, scratch.where, campaign)
        finally:
            server.stop()
        now = datetime.now(UTC).replace(microsecond=0)
        print(f"[{backend}] due work: generating {count:,} leads", flush=True)
        setup = due_campaign(count, account, campaign, boxes, now)
        load = scratch.load(setup.tables)
        # Millions of generated rows left alive would make every full collection of the
        # garbage collector, which the ticks set off, walk them all.
        setup.tables.clear()
        gc.collect()
        scratch.scalar(f"UPDATE campaigns SET status = 'ACTIVE' WHERE id = {campaign} RETURNING id")
        print(f"[{backend}] loaded in {load:.1f} s; timing ticks", flush=True)
        times, statements = asyncio.run(_claims(scratch.url, setup, boxes, now, reps))
    finally:
        scratch.drop()
    return {
        "leads": count,
        "due_now": DUE_NOW,
        "claimed_per_tick": mailboxes * BATCH,
        "load_seconds": round(load, 1),
        "tick_ms": [round(t, 2) for t in times],
        "median_ms": round(statistics.median(times), 2),
        "statements_ms_per_tick": dict(list(statements.items())[:10]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- main


@dataclass
class Result:
    backend: str
    leads: int
    mailboxes: int
    rounds: list[Round] = field(default_factory=list)
    due: list[dict[str, Any]] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(getattr(r, name) for r in self.rounds)

    @property
    def due_ratio(self) -> float | None:
        if len(self.due) < 2:
            return None
        return round(self.due[-1]["median_ms"] / self.due[0]["median_ms"], 2)


def summary(results: list[Result]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for r in results:
        line: dict[str, Any] = {}
        if r.rounds:
            line |= {
                "dispatcher_per_s": r.median("dispatcher_per_s"),
                "raw_per_s": r.median("raw_per_s"),
                "ratio": r.median("ratio"),
                "worker_peak_mb": r.median("worker_peak_mb"),
            }
            print(
                f"[{r.backend}] throughput, {r.leads:,} messages, {r.mailboxes} mailboxes, "
                f"median of {len(r.rounds)}: dispatcher {line['dispatcher_per_s']:,.0f}/s, "
                f"raw aiosmtplib {line['raw_per_s']:,.0f}/s, ratio {line['ratio']:.2f} "
                f"(target >= 0.5), worker peak {line['worker_peak_mb']:.1f} MB, load "
                f"{statistics.median(x.load_average[0] for x in r.rounds):.2f}"
            )
        if r.due:
            costs = ", ".join(f"{d['leads']:,} leads {d['median_ms']:.1f} ms" for d in r.due)
            line |= {
                "due_ms": {d["leads"]: d["median_ms"] for d in r.due},
                "due_ratio": r.due_ratio,
            }
            print(
                f"[{r.backend}] finding due work (one tick without SMTP, median): {costs}; "
                f"ratio {r.due_ratio} (target <= 2), load {r.due[-1]['load_average'][0]:.2f}"
            )
        out[r.backend] = line
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=20_000)
    parser.add_argument("--mailboxes", type=int, default=8)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--part", choices=["throughput", "due", "both"], default="both")
    parser.add_argument("--reps", type=int, default=3, help="throughput rounds per backend")
    parser.add_argument("--claim-reps", type=int, default=7, help="timed ticks per campaign")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="run the worker under cProfile, the stats written here (slower)",
    )
    parser.add_argument(
        "--due-sizes",
        default="10000,1000000",
        help="campaign sizes for the due-work cost, smallest first",
    )
    args = parser.parse_args()
    sizes = [int(x) for x in args.due_sizes.split(",")]

    os.environ["OPENLEAD_SENDER"] = "false"  # the set-up server must not send
    os.environ["OPENLEAD_SECRET_KEY"] = SECRET  # the worker decrypts what the server stored
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    with tempfile.TemporaryDirectory(prefix="openlead-send-bench-") as tmp:
        sink = Sink() if args.part != "due" else None
        try:
            for backend in backends:
                workdir = Path(tmp) / backend
                workdir.mkdir()
                result = Result(backend, args.leads, args.mailboxes)
                results.append(result)
                if sink is not None:
                    for rep in range(args.reps):
                        one = throughput_round(
                            backend, args.leads, args.mailboxes, sink, workdir, args.profile
                        )
                        result.rounds.append(one)
                        print(f"[{backend}] round {rep + 1}: {one.line()}", flush=True)
                if args.part != "throughput":
                    for size in sizes:
                        result.due.append(
                            due_cost(backend, size, args.mailboxes, args.claim_reps, workdir)
                        )
                        print(
                            f"[{backend}] due work at {size:,} leads: "
                            f"{result.due[-1]['median_ms']} ms per tick",
                            flush=True,
                        )
        finally:
            if sink is not None:
                sink.stop()

    print()
    medians = summary(results)
    report: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "leads": args.leads,
        "mailboxes": args.mailboxes,
        "reps": args.reps,
        "claim_reps": args.claim_reps,
        "machine": machine() | {"load_average_end": list(os.getloadavg())},
        "medians": medians,
        "results": [asdict(r) for r in results],
    }
    if "postgres" in backends:
        report["machine"]["postgres"] = _pg_version()
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"send-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
