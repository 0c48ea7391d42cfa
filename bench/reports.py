"""Benchmark of the Constant Contact v3 reports on an activity with 1M sends.

Builds (once, then reuses) a SQLite file under /tmp with one activity of 1,000,000 sends and
realistic engagement, written through ``mailtally.store.writer.write_events``. Then prints:

- p50/p99 of the activity stats operation and of 500-row pages at several depths of the
  bounces and opens reports (and unique opens), called in-process (query + serializer);
- the same over HTTP against ``mailtally serve`` in a subprocess (loopback);
- requests/s of the stats operation over HTTP, loaded by ``wrk``, beside a bare FastAPI
  "hello" (``bench/hello.py``) served the way ``serve`` serves (``serving.serve_app``: the
  same workers, a listening socket each) and loaded the same way in the same run, and the
  ratio of the two.

Targets (BRIEF.md, issue 11): stats < 5 ms p99; any 500-row page < 20 ms p99 at any depth;
stats requests/s >= 0.45x the FastAPI hello's.

    .venv/bin/python bench/reports.py [--db /tmp/x.db] [--sends 1000000] [--seconds 8] [--rounds 4] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import Connection, Engine, func, select

from mailtally.api.cc_v3.common import Page
from mailtally.api.cc_v3.email_reports import event_report, unique_opens_report
from mailtally.api.cc_v3.stats import activity_stats_report
from mailtally.events import Event
from mailtally.store import catalog, migrate
from mailtally.store.accounts import create_account, create_token, instance_secret
from mailtally.store.db import open_engine
from mailtally.store.reports import activity_num
from mailtally.store.schema import accounts, activities, activity_counters, events
from mailtally.store.summaries import last_event_id
from mailtally.store.writer import write_events
from mailtally.vocab import BounceCode, DeviceType, EventType, Scope

ACCOUNT = "bench-reports"
BASE_MS = 1_714_550_400_000  # 2024-05-01T08:00:00Z
CONTACTS_PER_BATCH = 25_000
LINKS = [("1", "https://shop.example.com/"), ("2", "https://shop.example.com/sale"),
         ("3", "https://blog.example.com/post")]
# Engagement, per send: 2.2% bounce (mostly B), 24% open (1.6 opens each), 4% click.
BOUNCE_CODES = [BounceCode.NONEXISTENT, BounceCode.UNDELIVERABLE, BounceCode.MAILBOX_FULL, BounceCode.SUSPENDED,
                BounceCode.VACATION, BounceCode.OTHER, BounceCode.BLOCKED]
BOUNCE_WEIGHTS = [45, 12, 10, 5, 8, 5, 15]
DEVICES = [DeviceType.MOBILE, DeviceType.COMPUTER, DeviceType.TABLET, DeviceType.OTHER]
DEVICE_WEIGHTS = [55, 30, 8, 7]


# -- building the data ------------------------------------------------------------------------


def _batch_events(rng: random.Random, activity_id: str, first: int, count: int, total: int) -> list[Event]:
    out: list[Event] = []
    span = 3_600_000  # sends over an hour, engagement over the following days
    for i in range(first, first + count):
        email = f"c{i:07d}@bench.example.com"
        sent = BASE_MS + i * span // total
        out.append(Event(EventType.SEND, activity_id, sent, email=email))
        u = rng.random()
        if u < 0.022:
            code = rng.choices(BOUNCE_CODES, BOUNCE_WEIGHTS)[0]
            out.append(Event(EventType.BOUNCE, activity_id, sent + rng.randrange(1_000, 600_000), email=email,
                             bounce_code=code))
            if code is not BounceCode.VACATION:
                continue
        if u < 0.26:
            device = rng.choices(DEVICES, DEVICE_WEIGHTS)[0]
            t = sent + rng.randrange(60_000, 3 * 86_400_000)
            for _ in range(1 if rng.random() < 0.55 else rng.randrange(2, 4)):
                out.append(Event(EventType.OPEN, activity_id, t, email=email, device_type=device))
                t += rng.randrange(60_000, 86_400_000)
            if rng.random() < 0.17:
                out.append(Event(EventType.CLICK, activity_id, t + 5_000, email=email, device_type=device,
                                 url_id=rng.choice(LINKS)[0]))
            if rng.random() < 0.012:
                out.append(Event(EventType.FORWARD, activity_id, t + 9_000, email=email))
            if rng.random() < 0.008:
                out.append(Event(EventType.OPTOUT, activity_id, t + 12_000, email=email,
                                 optout_reason="Too many emails"))
    return out


def build(engine: Engine, sends: int) -> tuple[int, str, str]:
    """The bench account and its activity, created once; (account, campaign, activity)."""
    with engine.begin() as conn:
        found = conn.execute(select(accounts.c.id).where(accounts.c.name == ACCOUNT)).scalar()
        if found is not None:
            row = conn.execute(
                select(activities.c.id, activities.c.campaign_id, activity_counters.c.sends)
                .join(activity_counters, (activity_counters.c.account_id == activities.c.account_id)
                      & (activity_counters.c.activity_id == activities.c.id))
                .where(activities.c.account_id == found)
            ).first()
            if row is not None and row.sends == sends:
                print(f"reusing {engine.url.database}: {sends:,} sends")
                return int(found), row.campaign_id, row.id
            raise SystemExit(f"{engine.url.database} holds another bench; delete it to rebuild")
        account = create_account(conn, ACCOUNT)
        campaign = catalog.create_campaign(conn, account, "Bench: one million sends")
        activity = catalog.create_activity(conn, account, campaign.id, subject="Hello, a million")
        catalog.put_links(conn, account, activity.id, [{"url_id": u, "url": url} for u, url in LINKS])
    rng = random.Random(1_000_000)
    started, written = time.perf_counter(), 0
    for first in range(0, sends, CONTACTS_PER_BATCH):
        batch = _batch_events(rng, activity.id, first, min(CONTACTS_PER_BATCH, sends - first), sends)
        with engine.begin() as conn:
            written += write_events(conn, account, batch).accepted
        rate = written / (time.perf_counter() - started)
        print(f"\r  built {first + CONTACTS_PER_BATCH:>9,} sends, {written:>9,} events ({rate:,.0f}/s)",
              end="", flush=True)
    print(f"\n  built in {time.perf_counter() - started:.0f} s")
    return account, campaign.id, activity.id


# -- measuring --------------------------------------------------------------------------------


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50 * 1000, p99 * 1000


def timed(fn: Callable[[], Any], n: int, warmup: int = 5) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return percentiles(samples)


def report(label: str, p: tuple[float, float], target_ms: float) -> None:
    ok = "ok" if p[1] < target_ms else "MISSED"
    print(f"  {label:<46} p50 {p[0]:7.2f} ms   p99 {p[1]:7.2f} ms   (target p99 < {target_ms:g} ms: {ok})")


def deep_keys(conn: Connection, account: int, activity_id: str, etype: EventType) -> dict[str, list[int]]:
    """Keyset positions (occurred_at, id) at several depths of a report, found once by offset."""
    num = activity_num(account, activity_id)
    total = conn.execute(select(func.count()).select_from(events).where(
        events.c.account_id == account, events.c.activity_num == num, events.c.type == etype.value)).scalar_one()
    out: dict[str, list[int]] = {}
    for name, frac in (("50%", 0.5), ("99%", 0.99)):
        offset = max(0, min(total - 501, int(total * frac)))
        row = conn.execute(
            select(events.c.occurred_at, events.c.idem)
            .where(events.c.account_id == account, events.c.activity_num == num, events.c.type == etype.value)
            .order_by(events.c.occurred_at.desc(), events.c.idem.desc()).offset(offset).limit(1)
        ).one()
        out[f"{name} of {total:,}"] = [row.occurred_at, row.idem]
    return out


def cursor_for(page: Page, values: list[Any]) -> str:
    href = page.links(values)["next"]["href"]
    return parse_qs(urlsplit(href).query)["next"][0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(port: int, request: bytes, seconds: float, connections: int) -> tuple[int, int]:
    """Keep-alive connections each sending the request and reading the whole response, in a loop.

    Raw sockets rather than an HTTP client library, so the client's own CPU (on the same
    2 cores) distorts the server's figure as little as possible.
    """
    deadline = time.perf_counter() + seconds
    done = errors = 0

    async def one() -> None:
        nonlocal done, errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200"):
                    done += 1
                else:
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(connections)))
    return done, errors


def _wrk(url: str, token: str, seconds: float, connections: int) -> tuple[int, int, str]:
    """Load from wrk (C, one thread): the load generator shares the 2 cores with the server."""
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-H", f"Authorization: Bearer {token}",
                          url], capture_output=True, text=True, check=True).stdout
    done = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    return done - errors, errors, "wrk"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", default="/tmp/mailtally-bench-reports.db")
    ap.add_argument("--sends", type=int, default=1_000_000)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=8.0, help="load on each server, over all rounds")
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds of stats and hello load")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server worker processes")
    args = ap.parse_args()

    url = f"sqlite:///{args.db}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    account, campaign_id, activity_id = build(engine, args.sends)
    with engine.begin() as conn:
        secret = instance_secret(conn).encode()
        token = create_token(conn, account, frozenset({Scope.CAMPAIGN_DATA.value}), name="bench")

    n = args.iterations
    print(f"\nin-process (query + serializer), {n} calls each")
    with engine.connect() as conn:
        report("activity stats", timed(lambda: activity_stats_report(conn, account, [activity_id]), n * 5), 5)
        positions = {etype: deep_keys(conn, account, activity_id, etype)
                     for etype in (EventType.BOUNCE, EventType.OPEN)}
        pages: list[tuple[str, str, str | None]] = []  # (label, path, cursor)
        for etype, name in ((EventType.BOUNCE, "bounces"), (EventType.OPEN, "opens")):
            path = f"/v3/reports/email_reports/{activity_id}/tracking/{name}"
            pages.append((f"{name}: first page", path, None))
            for depth, key in positions[etype].items():
                pages.append((f"{name}: page at {depth}", path, cursor_for(Page(account, secret, path, 500), key)))
        for label, path, cursor in pages:
            etype = EventType.BOUNCE if "/bounces" in path else EventType.OPEN
            page = Page(account, secret, path, 500, cursor)
            assert len(event_report(conn, page, activity_id, etype)["tracking_activities"]) == 500
            report(label, timed(partial(event_report, conn, page, activity_id, etype), n), 20)
        uo_path = f"/v3/reports/email_reports/{activity_id}/tracking/unique_opens"
        as_of = last_event_id(conn, account)
        uo_depths: dict[str, list[int] | None] = {"first page": None, **positions[EventType.OPEN]}
        for depth, uo_key in uo_depths.items():
            cursor = cursor_for(Page(account, secret, uo_path, 500), [as_of, *uo_key]) if uo_key else None
            label = f"unique_opens: {depth}" if uo_key is None else f"unique_opens: page at {depth} opens"
            uo_page = Page(account, secret, uo_path, 500, cursor)
            report(label, timed(partial(unique_opens_report, conn, uo_page, activity_id), n), 20)

    with _served(mailtally_server, url, args.workers) as base:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
            print(f"\nover HTTP (mailtally serve, {args.workers} worker(s), loopback, httpx keep-alive), "
                  f"{n} calls each")
            stats_url = f"/v3/reports/stats/email_campaign_activities/{activity_id}"
            assert http.get(stats_url).status_code == 200
            report("activity stats", timed(lambda: http.get(stats_url), n * 3), 5)
            report("campaign stats", timed(lambda: http.get(f"/v3/reports/stats/email_campaigns/{campaign_id}"), n), 5)
            for label, path, cursor in pages:
                params = {"next": cursor} if cursor else {}
                r = http.get(path, params=params)
                assert r.status_code == 200 and len(r.json()["tracking_activities"]) == 500, r.text[:200]
                report(label, timed(partial(http.get, path, params=params), n), 20)
    stats_rate, stats_errors, hello_rate, hello_errors, client = interleaved(
        url, args.workers, stats_url, token, args.seconds, args.connections, args.rounds)
    ratio = stats_rate / hello_rate if hello_rate else 0.0
    ok = "ok" if ratio >= 0.45 and not stats_errors else "MISSED"
    print(f"\nthroughput over HTTP, serve --workers {args.workers}, {args.connections} keep-alive connections, "
          f"{args.rounds} alternating rounds of {args.seconds / args.rounds:g} s each, {client}:")
    print(f"  FastAPI hello (bench/hello.py)     {hello_rate:>9,.0f} requests/s, {hello_errors} errors")
    print(f"  v3 activity stats (1M sends)       {stats_rate:>9,.0f} requests/s, {stats_errors} errors")
    print(f"  ratio stats / hello                {ratio:>9.2f}x   (target >= 0.45x: {ok})")


def interleaved(url: str, workers: int, stats_url: str, token: str, seconds: float, connections: int,
                rounds: int, verbose: bool = True) -> tuple[float, int, float, int, str]:
    """Both servers up at once and loaded in turn, ``rounds`` times each: on a shared machine the
    load of other programs drifts over seconds, and measuring one server after the other put the
    drift into the ratio (0.29x and 0.67x one minute apart here). Also prints each server's CPU
    time per request (its processes' user + system time), which other programs' load moves less."""
    with _served(mailtally_server, url, workers) as stats_base, _served(hello_server, url, workers) as hello_base:
        done = {"stats": 0.0, "hello": 0.0}
        errors = {"stats": 0, "hello": 0}
        cpu = {"stats": 0.0, "hello": 0.0}
        client = ""
        for n in range(rounds):
            for name, base, path in (("stats", stats_base, stats_url), ("hello", hello_base, "/hello")):
                before = cpu_seconds(_PIDS[base])
                rate, errs, client = _throughput(base, path, token, seconds / rounds, connections, warm=n == 0)
                cpu[name] += cpu_seconds(_PIDS[base]) - before
                done[name] += rate / rounds
                errors[name] += errs
                if verbose:
                    print(f"    round {n + 1}: {name} {rate:,.0f} requests/s", flush=True)
    if cpu["stats"] > 0 and cpu["hello"] > 0:
        per = {k: cpu[k] / (done[k] * seconds) * 1e6 for k in cpu}
        print(f"  server CPU per request: stats {per['stats']:.0f} us, hello {per['hello']:.0f} us "
              f"(ratio {per['hello'] / per['stats']:.2f}x)")
    return done["stats"], errors["stats"], done["hello"], errors["hello"], client


_PIDS: dict[str, int] = {}  # base URL -> the server's process id


def mailtally_server(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "mailtally", "serve", "--port", str(port), "--workers", str(workers)]


def hello_server(port: int, workers: int) -> list[str]:
    return [sys.executable, "-c", "from mailtally.serving import serve_app; "
            f"serve_app('hello:fastapi_app', '127.0.0.1', {port}, {workers}, factory=True)"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its child processes (the server's workers), from /proc."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's id
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@contextmanager
def _served(command: Callable[[int, int], list[str]], url: str, workers: int) -> Iterator[str]:
    """A server in a subprocess: mailtally as ``mailtally serve`` runs it, or the hello served the
    same way (``serving.serve_app``: a listening socket per worker; with uvicorn's one shared
    socket, a client's 16 connections mostly went to one worker, in one round and not the next)."""
    port = free_port()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_PORT": str(port), "MAILTALLY_WEBHOOK_WORKER": "0",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    cmd = command(port, workers)
    server = subprocess.Popen(cmd, env=env)
    base = f"http://127.0.0.1:{port}"
    _PIDS[base] = server.pid
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/openapi.json", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def _throughput(base: str, path: str, token: str, seconds: float, connections: int,
                warm: bool = True) -> tuple[float, int, str]:
    """Requests/s (and errors) of ``path``: by wrk, or by the asyncio loop with a warning."""
    if shutil.which("wrk"):
        if warm:
            _wrk(f"{base}{path}", token, 1, connections)  # warm-up: every worker's first requests
        done, errors, client = _wrk(f"{base}{path}", token, seconds, connections)
    else:
        print("WARNING: wrk is not installed (apt-get install wrk): loading with a Python client, which shares "
              "the CPU and understates both figures")
        port = int(base.rsplit(":", 1)[1])
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
        done, errors = asyncio.run(_load(port, request, seconds, connections))
        client = "python asyncio client"
    return done / seconds, errors, client


if __name__ == "__main__":
    Path("/tmp").mkdir(exist_ok=True)
    main()
