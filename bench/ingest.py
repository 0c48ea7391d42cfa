"""Ingestion throughput: events/s through the store writer, and through POST /v1/events.

Both on SQLite files in a temporary folder. Targets (BRIEF.md): >= 100k/s writer,
>= 30k/s HTTP. Prints figures; asserts nothing.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import orjson

from mailtally.events import Event
from mailtally.store import catalog, migrate, rawsql, writer
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine
from mailtally.store.writer import write_events
from mailtally.vocab import BounceCode, DeviceType, EventType, Reason, Scope

N_CONTACTS = 50_000
BATCH = int(os.environ.get("BENCH_BATCH", "10000"))
T0 = 1_700_000_000_000


def realistic(activity_id: str, contact_ids: list[str], rng: random.Random) -> list[Event]:
    """One send per contact, then opens, clicks and some bounces: about 1.8 events per contact."""
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


def setup(url: str) -> tuple[object, int, str, list[str], str]:
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        account = create_account(conn, f"bench-{uuid.uuid4().hex[:6]}")
        token = create_token(conn, account, frozenset(s.value for s in Scope))
        campaign = catalog.create_campaign(conn, account, "bench")
        activity = catalog.create_activity(conn, account, campaign.id)
        ids = catalog.contacts_for_emails(conn, account, (f"u{i}@bench.example" for i in range(N_CONTACTS)))
    return engine, account, activity.id, list(ids.values()), token


def bench_writer(folder: Path) -> float:
    engine, account, activity, contacts, _ = setup(f"sqlite:///{folder / 'writer.db'}")
    events = realistic(activity, contacts, random.Random(1))
    t = time.perf_counter()
    for i in range(0, len(events), BATCH):
        with engine.begin() as conn:  # type: ignore[attr-defined]
            write_events(conn, account, events[i : i + BATCH])
    rate = len(events) / (time.perf_counter() - t)
    print(f"writer  : {len(events):,} events in batches of {BATCH:,} -> {rate:,.0f} events/s  (target >= 100,000)")
    return rate


def bench_floor(folder: Path) -> float:
    """The same events as bare rows: the log's rows and one recipients row per contact,
    through the driver's executemany, with no validation, idempotency, lookups or roll-up.

    What SQLite and the driver alone cost on this machine: the writer cannot beat it.
    """
    engine, account, activity, contacts, _ = setup(f"sqlite:///{folder / 'floor.db'}")
    events = realistic(activity, contacts, random.Random(1))
    with engine.connect() as conn:
        activity_num = conn.exec_driver_sql("SELECT num_id FROM activities WHERE id = ?", (activity,)).scalar_one()
        nums = dict(conn.exec_driver_sql("SELECT id, num_id FROM contacts WHERE account_id = ?", (account,)).all())
    t = time.perf_counter()
    for i in range(0, len(events), BATCH):
        chunk = events[i : i + BATCH]
        log = [(account, activity_num, e.type.value, e.occurred_at, n, i + n, nums[e.contact_id],
                e.device_type.value if e.device_type else None, e.url_id) for n, e in enumerate(chunk)]
        firsts = {nums[e.contact_id]: e.occurred_at for e in reversed(chunk)}
        states = [(account, activity_num, c, at) for c, at in firsts.items()]
        with engine.begin() as conn:  # type: ignore[attr-defined]
            rawsql.insert_new(conn, "events", writer.SHORT_COLUMNS, log)
            rawsql.insert_new(conn, "recipients", ("account_id", "activity_num", "contact_num", "sent_at"), states)
    rate = len(events) / (time.perf_counter() - t)
    print(f"floor   : the same {len(events):,} events as bare rows (no checks, no roll-up) -> {rate:,.0f} rows/s")
    return rate


def bench_http(folder: Path) -> float:
    url = f"sqlite:///{folder / 'http.db'}"
    _, _, activity, contacts, token = setup(url)
    events = realistic(activity, contacts, random.Random(2))
    bodies = []
    for i in range(0, len(events), BATCH):
        chunk = events[i : i + BATCH]
        bodies.append(b"\n".join(orjson.dumps({
            "type": e.type.value, "activity_id": e.activity_id, "contact_id": e.contact_id,
            "occurred_at": e.occurred_at, "device_type": e.device_type.value if e.device_type else None,
            "url_id": e.url_id, "bounce_code": e.bounce_code.value if e.bounce_code else None,
        }) for e in chunk))
    port = 18765
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=120,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}) as c:
            for _ in range(100):
                try:
                    c.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            t = time.perf_counter()
            for body in bodies:
                r = c.post("/v1/events", content=body)
                r.raise_for_status()
            rate = len(events) / (time.perf_counter() - t)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"http    : {len(events):,} events as NDJSON batches of {BATCH:,} -> {rate:,.0f} events/s"
          "  (target >= 30,000)")
    return rate


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_writer(Path(tmp))
        bench_floor(Path(tmp))
        bench_http(Path(tmp))


if __name__ == "__main__":
    main()
