"""Ingestion throughput on SQLite and PostgreSQL: the store writer against the storage floor,
and ``POST /v1/events`` against the writer. Prints figures and ratios; asserts nothing.

- floor: the same events as bare rows, the log's rows and one recipients row per contact, with
  no checks, no idempotency, no lookups and no roll-up. SQLite: the driver's ``executemany``;
  PostgreSQL: ``COPY`` into the same tables. No writer beats it.
- writer: ``store.writer.write_events`` in batches, each its own transaction.
- http: the same events as NDJSON batches to a ``mailtally serve`` process.

Targets (issue 11): writer >= 0.7x the floor on SQLite and >= 0.6x on PostgreSQL; HTTP >= 0.7x
the writer on each. PostgreSQL is at ``MAILTALLY_BENCH_POSTGRES_URL`` (default the test server);
each part gets a fresh database, dropped afterwards. Without a server that part is skipped.
"""

from __future__ import annotations

import dataclasses
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

from mailtally.events import Event
from mailtally.store import catalog, migrate, partitions
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine, writing
from mailtally.store.writer import write_events
from mailtally.vocab import BounceCode, DeviceType, EventType, Reason, Scope

N_CONTACTS = int(os.environ.get("BENCH_CONTACTS", "50000"))
BATCH = int(os.environ.get("BENCH_BATCH", "10000"))
PG_URL = os.environ.get("MAILTALLY_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
T0 = 1_700_000_000_000
LOG_COLUMNS = ("account_id", "activity_num", "type", "occurred_at", "idem", "id", "contact_num", "device_type",
               "url_id")


def realistic(activity_id: str, contact_ids: list[str], rng: random.Random) -> list[Event]:
    """One send per contact, then opens, clicks and some bounces: about 1.75 events per contact."""
    out: list[Event] = []
    for i, cid in enumerate(contact_ids):
        t = T0 + i
        out.append(Event(EventType.SEND, activity_id, t, cid))
        r = rng.random()
        if r < 0.05:
            out.append(Event(EventType.BOUNCE, activity_id, t + 5000, cid, reason=Reason.USERUNKNOWN,
                             bounce_code=BounceCode.NONEXISTENT, hard=True, dsn_status="5.1.1", reply_code="550",
                             diagnostic="550 5.1.1 user unknown"))
        elif r < 0.6:
            out.append(Event(EventType.OPEN, activity_id, t + 60_000, cid, device_type=DeviceType.MOBILE))
            if r < 0.2:
                out.append(Event(EventType.CLICK, activity_id, t + 90_000, cid, device_type=DeviceType.MOBILE,
                                 url_id="1"))
    return out


class Setup:
    def __init__(self, url: str):
        self.url = url
        self.engine = open_engine(url)
        migrate.upgrade(self.engine)
        with self.engine.begin() as conn:
            self.account = create_account(conn, f"bench-{uuid.uuid4().hex[:6]}")
            self.token = create_token(conn, self.account, frozenset(s.value for s in Scope))
            campaign = catalog.create_campaign(conn, self.account, "bench")
            self.activity = catalog.create_activity(conn, self.account, campaign.id).id
            ids = catalog.contacts_for_emails(conn, self.account, (f"u{i}@bench.example" for i in range(N_CONTACTS)))
        self.contacts = list(ids.values())


@contextmanager
def sqlite_db(folder: Path, name: str) -> Iterator[str]:
    yield f"sqlite:///{folder / name}.db"


@contextmanager
def postgres_db(name: str) -> Iterator[str]:
    import psycopg

    db = f"mailtally_bench_{name}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_URL, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{db}"')
    try:
        yield PG_URL.rpartition("/")[0] + "/" + db
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def postgres_reachable() -> bool:
    import psycopg

    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def free_port() -> int:
    """A fixed port may be another process's on a shared machine: its answers would be measured."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# CPU time per event of the last timed() run: this process, plus on PostgreSQL the server
# processes of the bench's database (a local server, read from /proc). Other programs' load
# moves it much less than the rate by the clock. Label -> microseconds.
CPU_US: dict[str, float] = {}


def timed(events: int, run: Callable[[], None], label: str = "", url: str = "") -> float:
    server = _server_cpu(url)
    cpu = time.process_time()
    t = time.perf_counter()
    run()
    elapsed = time.perf_counter() - t
    if label:
        CPU_US[label] = (time.process_time() - cpu + _server_cpu(url) - server) / events * 1e6
    return events / elapsed


def _server_cpu(url: str) -> float:
    """User + system seconds of the PostgreSQL backends connected to ``url``'s database (0 elsewhere)."""
    if not url.startswith("postgresql"):
        return 0.0
    import psycopg

    with psycopg.connect(PG_URL) as c:
        pids = [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s",
                                        (url.rpartition("/")[2],))]
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def by_email(events: list[Event]) -> list[Event]:
    """The same events naming each (new) contact by address instead of by id."""
    return [dataclasses.replace(e, contact_id=None, email=f"{e.contact_id}@new.bench.example") for e in events]


def bench_writer(url: str, email: bool = False) -> float:
    s = Setup(url)
    events = realistic(s.activity, s.contacts, random.Random(1))
    if email:
        events = by_email(events)

    def run() -> None:
        for i in range(0, len(events), BATCH):
            with writing(s.engine) as conn:
                write_events(conn, s.account, events[i : i + BATCH])

    rate = timed(len(events), run, "writer by email" if email else "writer", url)
    s.engine.dispose()
    return rate


Rows = list[tuple[Any, ...]]


def floor_rows(s: Setup, events: list[Event], conn: Any) -> Iterator[tuple[Rows, Rows]]:
    activity_num = conn.exec_driver_sql(
        f"SELECT num_id FROM activities WHERE id = '{s.activity}'").scalar_one()
    nums = dict(conn.exec_driver_sql(f"SELECT id, num_id FROM contacts WHERE account_id = {s.account}").all())
    stored: set[int] = set()
    for i in range(0, len(events), BATCH):
        chunk = events[i : i + BATCH]
        log = [(s.account, activity_num, e.type.value, e.occurred_at, i + n, i + n, nums[e.contact_id],
                e.device_type.value if e.device_type else None, e.url_id) for n, e in enumerate(chunk)]
        firsts = {nums[e.contact_id]: e.occurred_at for e in reversed(chunk)}
        yield log, [(s.account, activity_num, c, at) for c, at in firsts.items() if c not in stored]
        stored.update(firsts)


STATE_COLUMNS = ("account_id", "activity_num", "contact_num", "sent_at")


def bench_floor_sqlite(url: str) -> float:
    """Bare rows through the driver's executemany (ON CONFLICT DO NOTHING, as any log insert needs)."""
    s = Setup(url)
    events = realistic(s.activity, s.contacts, random.Random(1))
    with s.engine.connect() as conn:
        batches = list(floor_rows(s, events, conn))

    def run() -> None:
        for log, states in batches:
            with writing(s.engine) as conn:
                cur = conn.connection.cursor()
                cur.executemany(f"INSERT INTO events ({', '.join(LOG_COLUMNS)}) VALUES "
                                f"({', '.join('?' * len(LOG_COLUMNS))}) ON CONFLICT DO NOTHING", log)
                cur.executemany(f"INSERT INTO recipients ({', '.join(STATE_COLUMNS)}) VALUES (?, ?, ?, ?) "
                                "ON CONFLICT DO NOTHING", states)

    rate = timed(len(events), run, "floor", url)
    s.engine.dispose()
    return rate


def bench_floor_postgres(url: str) -> float:
    """The same rows by COPY into the same tables (COPY cannot skip duplicates: it is the floor)."""
    s = Setup(url)
    events = realistic(s.activity, s.contacts, random.Random(1))
    with s.engine.connect() as conn:
        batches = list(floor_rows(s, events, conn))
    with writing(s.engine) as conn:  # the log's months (the writer makes them as it goes; here, ahead)
        partitions.ensure_months(conn, partitions.months_between(events[0].occurred_at, events[-1].occurred_at))

    def run() -> None:
        for log, states in batches:
            with writing(s.engine) as conn:
                cur = conn.connection.cursor()
                for table, cols, rows in (("events", LOG_COLUMNS, log), ("recipients", STATE_COLUMNS, states)):
                    with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)

    rate = timed(len(events), run, "floor", url)
    s.engine.dispose()
    return rate


def wait_until_serving(client: httpx.Client, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180  # start-up (with migrations) is slow on a loaded machine
    while True:
        try:
            client.get("/healthz")
            return
        except httpx.TransportError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("mailtally serve did not start") from None
            time.sleep(0.2)


def bench_http(url: str, port: int) -> float:
    s = Setup(url)
    events = realistic(s.activity, s.contacts, random.Random(2))
    bodies = []
    for i in range(0, len(events), BATCH):
        chunk = events[i : i + BATCH]
        bodies.append(b"\n".join(orjson.dumps({
            "type": e.type.value, "activity_id": e.activity_id, "contact_id": e.contact_id,
            "occurred_at": e.occurred_at, "device_type": e.device_type.value if e.device_type else None,
            "url_id": e.url_id, "bounce_code": e.bounce_code.value if e.bounce_code else None,
        }) for e in chunk))
    s.engine.dispose()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120, headers={
                "Authorization": f"Bearer {s.token}", "Content-Type": "application/x-ndjson"}) as c:
            wait_until_serving(c, proc)

            def run() -> None:
                for body in bodies:
                    c.post("/v1/events", content=body).raise_for_status()

            return timed(len(events), run)
    finally:
        proc.terminate()
        proc.wait(10)


def line(label: str, rate: float, ref: float | None = None, ref_name: str = "", target: float | None = None) -> None:
    text = f"{label:<34}{rate:>10,.0f} events/s"
    if ref:
        text += f"   {rate / ref:.2f}x {ref_name}"
        if target is not None:
            text += f" (target >= {target}x{', met' if rate / ref >= target else ', NOT met'})"
    print(text, flush=True)


def cpu_line() -> None:
    floor, writer = CPU_US.get("floor"), CPU_US.get("writer")
    if floor and writer:
        print(f"{'  CPU per event (client + server)':<34}{floor:>7.1f} us floor, {writer:.1f} us writer"
              f"   {floor / writer:.2f}x", flush=True)


def main() -> None:
    only = sys.argv[1] if len(sys.argv) > 1 else ""  # "sqlite" or "postgres": one database
    n = len(realistic("a", ["c"] * N_CONTACTS, random.Random(1)))
    print(f"{n:,} events for {N_CONTACTS:,} contacts, batches of {BATCH:,}")
    if only != "postgres":
        bench_sqlite()
    if only != "sqlite":
        bench_postgres()


def bench_sqlite() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with sqlite_db(folder, "floor") as url:
            floor = bench_floor_sqlite(url)
        with sqlite_db(folder, "writer") as url:
            writer = bench_writer(url)
        with sqlite_db(folder, "email") as url:
            email = bench_writer(url, email=True)
        with sqlite_db(folder, "http") as url:
            http = bench_http(url, free_port())
        line("SQLite floor (executemany)", floor)
        line("SQLite writer", writer, floor, "the floor", 0.7)
        cpu_line()
        line("SQLite writer, new contacts by email", email, writer, "the writer by id")
        line("SQLite HTTP POST /v1/events", http, writer, "the writer", 0.7)


def bench_postgres() -> None:
    if not postgres_reachable():
        print(f"PostgreSQL not reachable at {PG_URL} (set MAILTALLY_BENCH_POSTGRES_URL): skipped")
        return
    with postgres_db("floor") as url:
        floor = bench_floor_postgres(url)
    with postgres_db("writer") as url:
        writer = bench_writer(url)
    with postgres_db("email") as url:
        email = bench_writer(url, email=True)
    with postgres_db("http") as url:
        http = bench_http(url, free_port())
    line("PostgreSQL floor (COPY)", floor)
    line("PostgreSQL writer", writer, floor, "the floor", 0.6)
    cpu_line()
    line("PostgreSQL writer, new contacts by email", email, writer, "the writer by id")
    line("PostgreSQL HTTP POST /v1/events", http, writer, "the writer", 0.7)


if __name__ == "__main__":
    main()
