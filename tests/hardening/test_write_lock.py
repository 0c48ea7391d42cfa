"""Items 5 and 6, on SQLite with several processes: writes take turns instead of failing with
`database is locked`; a write that cannot get the database in time is a 503 with Retry-After;
small writes go before waiting big batches."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from mailtally.store import migrate
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import gate_of, open_engine, writing
from mailtally.store.write_gate import StoreBusy

from ..support.serve import Serve


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    path = tmp_path_factory.mktemp("lock") / "mailtally.db"
    url = f"sqlite:///{path}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        token = create_token(conn, create_account(conn, "lock-" + uuid.uuid4().hex[:8]),
                             frozenset({"ingest", "campaign_data", "contact_data"}))
    return url, path, token


def test_a_write_that_cannot_get_the_database_is_503(db: tuple[str, Path, str]) -> None:
    url, path, token = db
    h = {"Authorization": f"Bearer {token}"}
    with Serve(url, workers=2, MAILTALLY_WRITE_WAIT_SECONDS="2") as s:
        other = sqlite3.connect(path, isolation_level=None)  # another program holding the write lock
        other.execute("BEGIN IMMEDIATE")
        try:
            r = httpx.post(s.url + "/v1/campaigns", json={"name": "x"}, headers=h, timeout=60)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "2"
        assert r.json()["error"]["code"] == "unavailable"
        assert httpx.post(s.url + "/v1/campaigns", json={"name": "x"}, headers=h, timeout=60).status_code == 201


def test_heavy_writes_from_two_workers_never_fail(db: tuple[str, Path, str]) -> None:
    url, _, token = db
    h = {"Authorization": f"Bearer {token}"}
    with Serve(url, workers=2) as s, httpx.Client(base_url=s.url, headers=h, timeout=120) as c:
        campaign = c.post("/v1/campaigns", json={"name": "load"}).json()["id"]
        activity = c.post(f"/v1/campaigns/{campaign}/activities", json={}).json()["id"]

        def batch(n: int) -> int:
            events = [{"type": "send", "activity_id": activity, "email": f"p{n}-{i}@example.com",
                       "occurred_at": 1714564800000 + i} for i in range(2000)]
            return c.post("/v1/events", json=events).status_code

        def contact(n: int) -> int:
            return c.post("/v1/contacts", json={"email": f"c{n}@example.com"}).status_code

        with ThreadPoolExecutor(12) as pool:
            jobs = [pool.submit(batch, n) for n in range(24)] + [pool.submit(contact, n) for n in range(60)]
            codes = [j.result() for j in jobs]
        assert all(code < 500 for code in codes), sorted(set(codes))
        assert codes.count(200) == 24 and codes.count(201) == 60
        stats = c.get(f"/v1/activities/{activity}/stats").json()
        assert stats["counts"]["sends"] == 24 * 2000


def test_small_writes_go_before_waiting_bulk_ones(tmp_path: Path) -> None:
    """A bulk batch holds the database; another bulk batch waits; a small write arrives after
    it. The small one must commit first."""
    url = f"sqlite:///{tmp_path / 'order.db'}"
    engines = [open_engine(url) for _ in range(3)]  # as three processes would have
    with engines[0].begin() as conn:
        conn.exec_driver_sql("CREATE TABLE commits (who TEXT)")
    release = threading.Event()
    holding = threading.Event()

    def write(i: int, who: str, bulk: bool) -> None:
        with writing(engines[i], bulk=bulk) as conn:
            if who == "first":
                holding.set()
                release.wait(30)
            conn.exec_driver_sql(f"INSERT INTO commits VALUES ('{who}')")

    first = threading.Thread(target=write, args=(0, "first", True))
    first.start()
    assert holding.wait(30)
    big = threading.Thread(target=write, args=(1, "big", True))
    big.start()
    time.sleep(0.3)  # the big batch is waiting for its turn before the small write arrives
    small = threading.Thread(target=write, args=(2, "small", False))
    small.start()
    time.sleep(0.3)
    release.set()
    for t in (first, big, small):
        t.join(30)
    with engines[0].connect() as conn:
        order = [r[0] for r in conn.exec_driver_sql("SELECT who FROM commits ORDER BY rowid")]
    assert order == ["first", "small", "big"]


def test_a_write_holding_its_turn_waits_for_another_program_a_moment_only(tmp_path: Path) -> None:
    """The tracking hits write on the event loop with their turn already taken
    (``has_turn``): a program outside mailtally's turns holding SQLite's lock is waited for
    ``HELD_TURN_BUSY_SECONDS``, not the 30 s a thread's write may wait, then StoreBusy."""
    path = tmp_path / "mailtally.db"
    engine = open_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    gate = gate_of(engine)
    assert gate is not None
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    turn = gate.try_take()
    assert turn is not None
    try:
        with pytest.raises(StoreBusy), engine.connect() as held, \
                writing(engine, held=held, has_turn=True) as conn:
            conn.exec_driver_sql("UPDATE accounts SET seq_event = seq_event")
    finally:
        turn.release()
        other.execute("ROLLBACK")
        other.close()
    with writing(engine) as conn:  # and once the program lets go, writes go on
        conn.exec_driver_sql("UPDATE accounts SET seq_event = seq_event")
    engine.dispose()
