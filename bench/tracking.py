"""Tracking hits over HTTP: pixel loads and click redirects per second, with p50/p99 latency,
against a bare ASGI "hello" served with the same settings, in the same run.

``mailtally serve --workers 2`` on SQLite (or ``--database-url postgresql://...``, an empty
database) in a subprocess; the load comes from another process (wrk when installed, else a
Python asyncio client, with a warning). Every hit is a real event: verified, answered only once
durable (journaled on SQLite, group-committed on PostgreSQL), judged and written to the log.
Targets: >= 5,000 hits/s each, p99 < 10 ms, and at least 0.25 of the bare hello's rate.

Where the time goes, in the same run: the pixel with a token that verifies to nothing (the
same server, routing and response, no write), and the hit recorder alone in this process (what
writes a group of hits to the log, on groups of a given size, no HTTP).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import httpx
import orjson
from sqlalchemy import func, select

from mailtally.events import Event
from mailtally.store import catalog, hit_journal
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine, writing
from mailtally.store.migrate import upgrade
from mailtally.store.schema import events
from mailtally.store.writer import write_events
from mailtally.tracking.toolkit import Recipient, render_messages
from mailtally.vocab import EventType, Scope

SECRET = "bench-tracking-secret"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build(url: str, people: int, base: str) -> tuple[list[str], list[str], str, str]:
    """An activity sent to ``people`` an hour ago; the pixel and a click path of each, another
    activity (for the toolkit's run) and an API token."""
    engine = open_engine(url)
    upgrade(engine)
    emails = [f"reader{i}@example.com" for i in range(people)]
    with writing(engine) as conn:
        account = create_account(conn, "bench")
        activity = catalog.create_activity(conn, account, catalog.create_campaign(conn, account, "bench").id)
        ids = catalog.contacts_for_emails(conn, account, emails)
        sent = int(time.time() * 1000) - 3_600_000
        write_events(conn, account, [Event(EventType.SEND, activity.id, sent, ids[e]) for e in emails])
        other = catalog.create_activity(conn, account, activity.campaign_id)
        token = create_token(conn, account, frozenset({Scope.INGEST.value}))
    html = '<html><body><a href="https://shop.example.com/sale">Sale</a></body></html>'
    pixels, clicks = [], []
    for m in render_messages(engine, account, activity.id, [Recipient(email=e) for e in emails], html=html,
                             base_url=base, secret=SECRET.encode()):
        body = m.html or ""
        pixels.append(re.search(r"/t/o/[\w-]+", body).group(0))  # type: ignore[union-attr]
        clicks.append(re.findall(r"/t/c/[\w-]+", body)[1])
    engine.dispose()
    return pixels, clicks, other.id, token


TOOLKIT_HTML = ("<html><body><h1>Spring</h1>" + "".join(
    f'<p><a href="https://shop.example.com/item/{i}">Item {i}</a></p>' for i in range(8))
    + '<p><a href="{{unsubscribe_url}}">Unsubscribe</a> <a href="{{forward_url}}">Forward</a></p></body></html>')


def toolkit(port: int, activity_id: str, token: str, recipients: int) -> tuple[float, int, int]:
    """Seconds to get every message of a ``recipients``-long NDJSON request (sends recorded),
    the messages received and the bytes."""
    head = orjson.dumps({"html": TOOLKIT_HTML, "text": "Items: https://shop.example.com/item/1", "record_send": True})
    body = head + b"\n" + b"\n".join(b'{"email": "buyer%d@example.com"}' % i for i in range(recipients))
    t = time.perf_counter()
    got = size = 0
    with httpx.Client(timeout=600) as client, client.stream(
            "POST", f"http://127.0.0.1:{port}/v1/activities/{activity_id}/messages", content=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}) as r:
        if r.status_code != 200:
            raise SystemExit(f"toolkit request failed: {r.status_code} {r.read()[:300]!r}")
        for line in r.iter_lines():
            if line:
                got += 1
                size += len(line)
    return time.perf_counter() - t, got, size


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404):
                return server
        except httpx.HTTPError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()


LUA = """
paths = {%s}
n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1], {["User-Agent"] = "%s"})
end
"""


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(port: int, paths: list[str], seconds: float, connections: int) -> tuple[float, float, float, int]:
    """(requests/s, p50 ms, p99 ms, errors) from wrk, one thread, cycling through ``paths``."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(LUA % (",".join(f'"{p}"' for p in paths), UA))
    try:
        out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", f.name,
                              f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        errors += sum(int(x) for x in sock.groups())
    return rate, _ms(*p50.groups()), _ms(*p99.groups()), errors  # type: ignore[union-attr]


async def _python_load(port: int, paths: list[str], seconds: float, connections: int
                       ) -> tuple[float, float, float, int]:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    errors = 0

    async def one(k: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        try:
            while time.perf_counter() < deadline:
                path = paths[i % len(paths)]
                i += connections
                t = time.perf_counter()
                writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(x.split(b":")[1]) for x in head.split(b"\r\n")
                               if x.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - t) * 1000)
                if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 302")):
                    errors += 1
        finally:
            writer.close()

    start_t = time.perf_counter()
    await asyncio.gather(*(one(k) for k in range(connections)))
    elapsed = time.perf_counter() - start_t
    latencies.sort()
    return (len(latencies) / elapsed, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], errors)


def load(port: int, paths: list[str], seconds: float, connections: int) -> tuple[float, float, float, int]:
    if shutil.which("wrk"):
        return wrk(port, paths, seconds, connections)
    return asyncio.run(_python_load(port, paths, seconds, connections))


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes (every thread), from /proc."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICK


def _machine() -> tuple[float, float]:
    """(busy, all) CPU seconds of the machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / _TICK, sum(v) / _TICK


class Run(NamedTuple):
    rate: float
    p50: float
    p99: float
    errors: int
    server_us: float  # server CPU (all workers, all threads) per request
    client_us: float  # the load generator's CPU per request
    others: float  # cores busy with neither (the machine's other tenants), on average
    behind_ms: float = 0.0  # after the load, until the hits answered were all in the log


def _behind(db: str | None) -> float:
    """Seconds until the hits answered are all in the log (SQLite journals them first)."""
    if db is None or not hit_journal.files(db):
        return 0.0
    engine = open_engine(f"sqlite:///{db}")
    t = time.perf_counter()
    try:
        with engine.connect() as conn:
            while hit_journal.waiting(conn, db) and time.perf_counter() - t < 120:
                conn.rollback()  # the next look sees the latest commit
                time.sleep(0.005)
    finally:
        engine.dispose()
    return time.perf_counter() - t


def measured(server: subprocess.Popen[bytes], port: int, paths: list[str], seconds: float,
             connections: int, db: str | None = None) -> Run:
    """A load run, with where the CPU went: the server's workers, the load generator, the rest.
    ``db``: the server's SQLite file; the run lasts until every hit journaled is in its log, so
    the rate and the CPU a hit count the writing of hits answered near the end (hits/s: the
    hits over the load's seconds and those)."""
    workers = [server.pid, *_children(server.pid)]
    s0, c0, m0, t0 = _cpu_seconds(workers), resource.getrusage(resource.RUSAGE_CHILDREN), _machine(), time.time()
    own0 = resource.getrusage(resource.RUSAGE_SELF)
    rate, p50, p99, errors = load(port, paths, seconds, connections)
    behind = _behind(db)
    rate = rate * seconds / (seconds + behind)
    s1, c1, m1, t1 = _cpu_seconds(workers), resource.getrusage(resource.RUSAGE_CHILDREN), _machine(), time.time()
    own1 = resource.getrusage(resource.RUSAGE_SELF)
    n = max(rate * (seconds + behind), 1.0)
    client = (c1.ru_utime + c1.ru_stime - c0.ru_utime - c0.ru_stime
              + own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime)  # wrk, or this process's client
    busy = m1[0] - m0[0]
    others = max(busy - (s1 - s0) - client, 0.0) / (t1 - t0)
    return Run(rate, p50, p99, errors, (s1 - s0) / n * 1e6, client / n * 1e6, others, behind * 1000)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def recorder_alone(url: str, pixels: list[str], clicks: list[str], group: int) -> tuple[float, float, float]:
    """Hits/s of the group commit's write function alone, in this process: pixel hits, click
    hits, and the milliseconds a group of ``group`` takes."""
    from mailtally.ingest.tracking import HitRecorder, PendingHit
    from mailtally.store.tracking_keys import load_keyring
    from mailtally.tracking.tokens import Kind
    from mailtally.tracking.verdict import Rules
    from mailtally.vocab import IpStorage

    engine = open_engine(url)
    with engine.connect() as conn:
        ring = load_keyring(conn, SECRET.encode())
    recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    rates, group_ms = [], 0.0
    for kind, paths in ((Kind.OPEN, pixels), (Kind.CLICK, clicks)):
        refs = [r for p in paths if (r := ring.verify(p.rsplit("/", 1)[1], kind)) is not None]
        now = int(time.time() * 1000)
        groups = [[PendingHit(r, now, UA, "192.0.2.7") for r in refs[i:i + group]] for i in range(0, len(refs), group)]
        recorder(groups[0])  # warm: ids remembered, statements prepared
        t = time.perf_counter()
        for g in groups[1:]:
            recorder(g)
        elapsed = time.perf_counter() - t
        rates.append(sum(map(len, groups[1:])) / elapsed)
        if kind is Kind.OPEN:
            group_ms = elapsed / len(groups[1:]) * 1000
    engine.dispose()
    return rates[0], rates[1], group_ms


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"connection counts separated by commas, e.g. 16,64: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"connection counts must be 1 or more: {text!r}")
    return counts


def _meets(r: dict[str, Run], name: str) -> bool:
    x = r[name]
    return x.rate >= 5000 and x.p99 < 10 and x.rate / r["hello"].rate >= 0.25


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=_counts, default=[16],
                    help="keep-alive connections of the load; several (16,32,64) measure each in turn")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--people", type=int, default=5000)
    ap.add_argument("--toolkit-recipients", type=int, default=100_000)
    ap.add_argument("--database-url", help="an empty PostgreSQL database (default: a new SQLite file)")
    ap.add_argument("--group", type=int, default=16, help="group size for the recorder-alone figure")
    ap.add_argument("--rounds", type=int, default=1, help="hello, pixel and click measured this many times over")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("WARNING: wrk is not installed (apt-get install wrk): a Python load generator is used instead; "
              "it takes more of the shared CPU, so the figures come out lower", file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/tracking.db"
        db = None if args.database_url else f"{tmp}/tracking.db"
        port = free_port()
        pixels, clicks, other, token = build(url, args.people, f"http://127.0.0.1:{port}")
        env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_SECRET": SECRET,
               "MAILTALLY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        # The reference: the hello served as `serve` serves (a listening socket per worker), and
        # by uvicorn's own --workers (one socket shared, whichever worker wakes first accepts).
        hello_port, shared_port = free_port(), free_port()
        hello = start([sys.executable, "-c", "import sys; from mailtally.serving import serve_app; "
                       f"serve_app('hello:app', '127.0.0.1', {hello_port}, {args.workers})"],
                      {**env, "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])}, hello_port)
        shared = start([sys.executable, "-m", "uvicorn", "hello:app", "--app-dir", str(HERE), "--host", "127.0.0.1",
                        "--port", str(shared_port), "--workers", str(args.workers), "--log-level", "warning",
                        "--no-access-log"], env, shared_port)
        server = start([sys.executable, "-m", "mailtally", "serve", "--port", str(port), "--workers",
                        str(args.workers)], env, port)
        runs: dict[int, list[dict[str, Run]]] = {}
        try:
            first = args.connections[0]
            load(hello_port, ["/"], 1, first)  # warm-up
            load(shared_port, ["/"], 1, first)
            load(port, pixels[:200], 1, first)  # warm-up: imports, caches, the UA parser
            # The same path with a token that verifies to nothing: everything but the write.
            blank = [p[:-4] + ("AAAA" if not p.endswith("AAAA") else "BBBB") for p in pixels[:500]]
            for _ in range(args.rounds):  # each round's ratios against its own hello: the machine changes
                for c in args.connections:
                    runs.setdefault(c, []).append({
                        "hello": measured(hello, hello_port, ["/"], args.seconds, c),
                        "shared": measured(shared, shared_port, ["/"], args.seconds, c),
                        "blank": measured(server, port, blank, args.seconds, c),
                        "pixel": measured(server, port, pixels, args.seconds, c, db),
                        "click": measured(server, port, clicks, args.seconds, c, db),
                    })
            t_secs, t_got, t_bytes = toolkit(port, other, token, args.toolkit_recipients)
        finally:
            stop(server)
            stop(hello)
            stop(shared)
        engine = open_engine(url)
        with engine.connect() as conn:
            by_type = select(events.c.type, func.count()).group_by(events.c.type)
            logged: dict[str, int] = dict(conn.execute(by_type).all())
        engine.dispose()
        r_open, r_click, r_ms = recorder_alone(url, pixels, clicks, args.group)

    client = "wrk -t1" if shutil.which("wrk") else "python asyncio client"
    backend = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    labels = {"hello": "bare ASGI hello", "shared": "hello, shared socket", "blank": "pixel, no write",
              "pixel": "open pixel  /t/o", "click": "click redirect /t/c"}
    for c, rounds in runs.items():
        print(f"\ntracking hits over HTTP: mailtally serve --workers {args.workers}, {backend}, {c} "
              f"keep-alive connections, {args.seconds:g} s each, load from {client} in another process")
        print(f"{'':22s}{'requests/s':>11s}{'p50 ms':>8s}{'p99 ms':>8s}{'errors':>7s}{'vs hello':>9s}"
              f"{'server us':>10s}{'client us':>10s}{'others':>7s}{'behind ms':>10s}")
        for k, r in enumerate(rounds):
            if len(rounds) > 1:
                print(f"round {k + 1}")
            for name, label in labels.items():
                x = r[name]
                print(f"{label:22s}{x.rate:11,.0f}{x.p50:8.2f}{x.p99:8.2f}{x.errors:7d}{x.rate / r['hello'].rate:9.2f}"
                      f"{x.server_us:10.0f}{x.client_us:10.0f}{x.others:7.2f}{x.behind_ms:10.0f}")
    print("\nserver us / client us: CPU per request of the server's workers and of the load generator; others: "
          "cores busy with the machine's other work during the run, on average")
    print("behind ms: after the load, until every hit answered was in the log (SQLite journals them first); "
          "requests/s counts that time too")
    print("bare ASGI hello: served as `serve` serves, a listening socket per worker (the reference of the "
          "ratios); hello, shared socket: by uvicorn --workers, whose one socket's connections mostly go to one worker")
    print(f"events logged: {logged.get('open', 0):,} opens, {logged.get('click', 0):,} clicks")
    print(f"hit recorder alone (this process, no HTTP, groups of {args.group}): {r_open:,.0f} pixel hits/s, "
          f"{r_click:,.0f} click hits/s, {r_ms:.2f} ms a group of pixel hits")
    print(f"toolkit: {t_got:,} recipients' messages over NDJSON (9 links each, sends recorded) in {t_secs:.1f} s "
          f"= {t_got / t_secs:,.0f} messages/s, {t_bytes / 1e6:,.0f} MB")
    # Each round is judged on its own (rate, p99 and ratio in the same round), not the best one picked.
    for c, rounds in runs.items():
        for name in ("pixel", "click"):
            met = sum(_meets(r, name) for r in rounds)
            print(f"target {name} at {c} connections: >= 5,000/s, p99 < 10 ms, >= 0.25 of hello: "
                  f"{'ok' if met == len(rounds) else 'MISSED'} ({met} of {len(rounds)} rounds)")


if __name__ == "__main__":
    main()
