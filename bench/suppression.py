"""Suppression: checking 100k addresses in one call, and the writer with the policy on vs off.

- ``POST /v1/suppressions/check`` with 100,000 addresses (10,000 of them suppressed), over
  HTTP to ``mailtally serve``; the reference is the same check as one store call in-process.
  Target: < 1 s.
- events/s through the writer with the in-transaction step (policy, suppressed sends, alerts,
  outbox) on, versus the same events with it off, into accounts holding the same 10,000-entry
  suppression list. Target: on >= 0.8 x off.

On SQLite files in a temporary folder; prints figures, asserts nothing.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import realistic

from mailtally.store import catalog, migrate, suppressions
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import now_ms, open_engine
from mailtally.store.writer import write_events
from mailtally.vocab import Scope, SuppressionReason

N_CHECK = 100_000
N_LISTED = 10_000
N_CONTACTS = 30_000
BATCH = 10_000


def listed(account: int, engine: object) -> None:
    """10,000 suppressed addresses: every tenth of the checked ones, some of them contacts."""
    t = now_ms() - 1000
    entries = [suppressions.Entry(f"u{i}@bench.example", SuppressionReason.IMPORT, t) for i in range(0, N_CHECK, 10)]
    with engine.begin() as conn:  # type: ignore[attr-defined]
        suppressions.add(conn, account, entries, replace=True)


def bench_check(folder: Path) -> None:
    url = f"sqlite:///{folder / 'check.db'}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        account = create_account(conn, "bench-check")
        token = create_token(conn, account, frozenset(s.value for s in Scope))
    listed(account, engine)
    emails = [f"u{i}@bench.example" for i in range(N_CHECK)]
    body = orjson.dumps({"emails": emails})

    t = time.perf_counter()
    with engine.connect() as conn:
        found = suppressions.check(conn, account, emails)
    store_s = time.perf_counter() - t
    assert len(found) == N_LISTED

    port = 18766
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_WEBHOOK_WORKER": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60,
                          headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"}) as c:
            for _ in range(200):
                try:
                    c.get("/healthz")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            times = []
            for _ in range(5):
                t = time.perf_counter()
                r = c.post("/v1/suppressions/check", content=body)
                r.raise_for_status()
                times.append(time.perf_counter() - t)
                assert len(r.json()["suppressed"]) == N_LISTED
    finally:
        proc.terminate()
        proc.wait(10)
    best, median = min(times), sorted(times)[len(times) // 2]
    print(f"check   : {N_CHECK:,} addresses ({N_LISTED:,} suppressed) in one POST /v1/suppressions/check -> "
          f"best {best * 1000:,.0f} ms, median {median * 1000:,.0f} ms  (target < 1,000 ms)")
    print(f"          the same check as one store call in-process: {store_s * 1000:,.0f} ms  "
          f"(HTTP and JSON cost {median / store_s:.1f}x the query)")


def bench_policy(folder: Path) -> None:
    def run(react: bool) -> tuple[float, float]:
        """(events per second by the clock, events per CPU second of this process)."""
        # A database of its own for each run: in a shared one every run writes into a log the
        # runs before it grew, and the later (policy on) runs would pay for a deeper index.
        engine = open_engine(f"sqlite:///{folder / f'policy-{uuid.uuid4().hex[:8]}.db'}")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            account = create_account(conn, f"bench-{uuid.uuid4().hex[:6]}")
            campaign = catalog.create_campaign(conn, account, "bench")
            activity = catalog.create_activity(conn, account, campaign.id)
            ids = catalog.contacts_for_emails(conn, account, (f"u{i}@bench.example" for i in range(N_CONTACTS)))
        listed(account, engine)
        events = realistic(activity.id, list(ids.values()), random.Random(1))
        t, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(events), BATCH):
            with engine.begin() as conn:
                write_events(conn, account, events[i:i + BATCH], react=react)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        engine.dispose()
        return len(events) / wall, len(events) / cpu

    rates: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    for react in (False, True, True, False, False, True, True, False):  # ABBA: drift hits both alike
        rates[react].append(run(react))
    on, off = max(w for w, _ in rates[True]), max(w for w, _ in rates[False])
    on_cpu, off_cpu = max(c for _, c in rates[True]), max(c for _, c in rates[False])
    print(f"writer  : policy on {on:,.0f} events/s, off {off:,.0f} events/s -> ratio {on / off:.2f}  "
          "(target >= 0.80; best of 4 each, interleaved)")
    print(f"          per CPU second (what the machine's other load disturbs least): on {on_cpu:,.0f}, "
          f"off {off_cpu:,.0f} -> ratio {on_cpu / off_cpu:.2f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_check(Path(tmp))
        bench_policy(Path(tmp))


if __name__ == "__main__":
    main()
