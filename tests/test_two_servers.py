"""Two separate ``mailtally serve`` processes on one PostgreSQL database, as behind a load
balancer: concurrent event batches (each sent to both), bounce messages and tracking hits go to
both, reports are read from both, and the counts are exact against a recount of the log."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from mailtally.store import migrate
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine
from mailtally.vocab import Scope

from .conftest import TEST_SECRET, free_port, fresh_postgres_database
from .support.mail import dsn
from .support.scenario import campaign_with_activity
from .test_writer import recount
from .tracking.support import IPHONE, paths, render

PEOPLE = 60


@pytest.fixture(scope="module")
def two_servers() -> Iterator[tuple[str, list[str], str, int]]:
    with fresh_postgres_database() as url:
        engine = open_engine(url)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            account = create_account(conn, "two-servers")
            token = create_token(conn, account, frozenset(s.value for s in Scope))
        engine.dispose()
        procs, bases = [], []
        for _ in range(2):
            port = free_port()
            env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_SECRET": TEST_SECRET}
            procs.append(subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(port)], env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            bases.append(f"http://127.0.0.1:{port}")
        try:
            for base in bases:
                _wait(base)
            yield url, bases, token, account
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(20)


def _wait(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{base} did not start")


def _post(base: str, token: str, path: str, **kw: Any) -> dict[str, Any]:
    r = httpx.post(base + path, headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})},
                   timeout=120, **kw)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_counts_are_exact_with_two_servers(two_servers: tuple[str, list[str], str, int]) -> None:
    url, bases, token, account = two_servers
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=bases[0], timeout=60) as http:
        _, activity = campaign_with_activity(http, auth, links=[{"url_id": "1", "url": "https://shop.example.com/"}])
    emails = [f"p{i}@remote.example" for i in range(PEOPLE)]
    rng = random.Random(7)
    events = []
    for i, e in enumerate(emails):
        at = 1_577_836_800_000 + i * 1000  # 2020: tracking hits now are long after the send
        events.append({"type": "send", "activity_id": activity, "email": e, "occurred_at": at})
        for k in range(rng.randrange(4)):
            kind = rng.choice(["open", "click", "forward", "optout"])
            events.append({"type": kind, "activity_id": activity, "email": e, "occurred_at": at + 60_000 * (k + 1),
                           "device_type": rng.choice(["mobile", "computer"]), "url_id": "1"
                           if kind == "click" else None})
    rng.shuffle(events)
    batches = [events[i : i + 17] for i in range(0, len(events), 17)]
    sends_first = [e for e in events if e["type"] == "send"]
    # The sends first (both servers at once), so every bounce and hit below finds its send.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: _post(bases[b[0] % 2], token, "/v1/events", json=b[1]),
                      enumerate([sends_first[i : i + 7] for i in range(0, len(sends_first), 7)])))
    with httpx.Client(base_url=bases[1], timeout=60) as http:
        messages = render(http, auth, activity, emails[:20])
    pixels = [paths(m["html"], "o")[0] for m in messages]

    def job(n: int) -> None:
        if n < len(batches) * 2:  # every batch to both servers: the second copy counts nothing
            _post(bases[n % 2], token, "/v1/events", json=batches[n // 2])
        elif n < len(batches) * 2 + 40:  # a bounce message for 20 people, each to both servers
            i = n - len(batches) * 2
            _post(bases[i % 2], token, "/v1/bounces", content=dsn(emails[30 + i // 2]),
                  headers={"Content-Type": "message/rfc822"})
        else:  # tracking pixels, each fetched twice, on alternate servers
            i = n - len(batches) * 2 - 40
            r = httpx.get(bases[i % 2] + pixels[i // 2], headers={"User-Agent": IPHONE}, timeout=60)
            assert r.status_code == 200

    jobs = list(range(len(batches) * 2 + 40 + len(pixels) * 2))
    random.Random(3).shuffle(jobs)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(job, jobs))

    reports = [httpx.get(f"{b}/v1/activities/{activity}/stats", headers=auth, timeout=60).json()["counts"]
               for b in bases]
    assert reports[0] == reports[1]
    engine = open_engine(url)
    try:
        expected = recount(engine, account, activity)
        with engine.connect() as conn:
            logged = conn.execute(text("SELECT COUNT(*) FROM events WHERE account_id = :a"), {"a": account}).scalar()
            hits = conn.execute(text("SELECT COUNT(*) FROM events WHERE account_id = :a AND verdict IS NOT NULL"),
                                {"a": account}).scalar()
    finally:
        engine.dispose()
    got = reports[0]
    verdicts = {"opens_human", "opens_machine", "clicks_human", "clicks_machine"}
    for name in (set(expected) | {k for k, v in got.items() if v}) - verdicts:
        assert got.get(name, 0) == expected.get(name, 0), name
    # Nothing lost, nothing doubled: every distinct event once, each bounce once, each hit logged.
    distinct = {(e["type"], e["email"], e["occurred_at"]) for e in events}
    assert logged == len(distinct) + 20 + hits
    assert got["bounces"] == expected["bounces"] == 20
    assert hits == len(pixels) * 2 and got["opens_human"] + got["opens_machine"] == hits
