"""``/healthz`` and ``mailtally tracking status`` on a SQLite file: "behind" (503, exit 1) once a
hit answered longer ago than ``MAILTALLY_TRACKING_MAX_BEHIND_SECONDS`` is not in the log yet,
whether no roller writes or the roller fails; with the failure's time and error when it fails,
seen from another process than the roller's; "ok" again once the roller has caught up."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from mailtally.config import Settings
from mailtally.ingest.tracking import HitRecorder, PendingHit, RollUp
from mailtally.store import hit_journal, migrate
from mailtally.store.db import gate_of, now_ms, open_engine
from mailtally.tracking.tokens import HitRef, Kind
from mailtally.tracking.verdict import Rules
from mailtally.vocab import IpStorage
from tests.conftest import TEST_SECRET, LiveServer, free_port, make_account

from .support import DESKTOP, IPHONE, paths, sent_long_ago, stats
from .test_hit_writer import _activity

MAX_BEHIND = 1.0


def _health(http: httpx.Client) -> tuple[int, dict[str, Any]]:
    r = http.get("/healthz")
    return r.status_code, r.json()


def _until(done: Any, seconds: float = 30.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = done()
        if got:
            return got
        time.sleep(0.05)
    return done()


def _status(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mailtally", "tracking", "status", "--database", url],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MAILTALLY_TRACKING_MAX_BEHIND_SECONDS": str(MAX_BEHIND)})


def test_behind_while_no_roller_writes_then_ok_once_one_has(tmp_path: Path) -> None:
    """The roller's lock held by somebody else, so nobody writes the journaled hits: healthy
    until the hit has waited ``MAX_BEHIND`` seconds, then "behind" in /healthz and the CLI; once
    the lock is free, a roller takes it and writes the hit, and both say "ok"."""
    url = f"sqlite:///{tmp_path / 'health.db'}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    account = make_account(engine)
    lock = os.open(hit_journal.roller_lock(str(engine.url.database)), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)  # the server's roller waits for it
    settings = Settings(database_url=url, secret=TEST_SECRET, port=free_port(), webhook_worker=False,
                        tracking_max_behind_seconds=MAX_BEHIND)
    try:
        with LiveServer(settings) as server, httpx.Client(base_url=server.url, timeout=30) as http:
            status, body = _health(http)
            assert status == 200 and body["status"] == "ok"
            assert body["tracking"]["waiting_bytes"] == 0 and body["tracking"]["oldest_waiting_seconds"] is None
            activity, msgs = sent_long_ago(http, account.headers, ["late@example.com"])
            assert http.get(paths(msgs[0]["html"], "o")[0], headers={"User-Agent": IPHONE}).status_code == 200
            status, body = _health(http)
            assert status == 200 and body["tracking"]["waiting_bytes"] > 0  # answered, not yet waited too long
            status, body = _until(lambda: (s := _health(http))[0] == 503 and s)
            assert body["status"] == "behind"
            assert body["tracking"]["oldest_waiting_seconds"] >= MAX_BEHIND
            assert body["tracking"]["roll_up_error"] is None  # not failing: nobody rolls up
            cli = _status(url)
            assert cli.returncode == 1 and cli.stdout.startswith("behind: "), cli.stdout + cli.stderr
            fcntl.flock(lock, fcntl.LOCK_UN)  # lets go: the server's roller takes it
            status, body = _until(lambda: (s := _health(http))[0] == 200 and s)
            assert body["status"] == "ok" and body["tracking"]["waiting_bytes"] == 0
            cli = _status(url)
            assert cli.returncode == 0 and cli.stdout.startswith("ok: "), cli.stdout + cli.stderr
            assert stats(http, account.headers, activity)["counts"]["opens"] == 1
    finally:
        os.close(lock)
        engine.dispose()


def test_a_failing_roller_in_serves_own_process_is_said_by_a_workers_healthz_and_the_cli(tmp_path: Path) -> None:
    """``serve --workers 2``: its own process rolls up. Another writer holds the database's
    turn for longer than a write may wait, so each roll-up fails: a worker's /healthz and the
    CLI say since when and why once the hit has waited too long; once the turn is let go, the
    hit is written and the failure is forgotten."""
    url = f"sqlite:///{tmp_path / 'failing.db'}"
    engine = open_engine(url)
    migrate.upgrade(engine)
    account = make_account(engine)
    port = free_port()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": url, "MAILTALLY_SECRET": TEST_SECRET,
           "MAILTALLY_WEBHOOK_WORKER": "0", "MAILTALLY_WRITE_WAIT_SECONDS": "0.3",
           "MAILTALLY_TRACKING_MAX_BEHIND_SECONDS": str(MAX_BEHIND)}
    serve = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--workers", "2", "--port", str(port)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            assert _until(lambda: _up(http), 60), "serve did not start"
            activity, msgs = sent_long_ago(http, account.headers, ["late@example.com"])
            gate = gate_of(engine)
            assert gate is not None
            turn = _until(gate.try_take)  # another writer, holding on
            assert turn is not None
            try:
                assert http.get(paths(msgs[0]["html"], "o")[0], headers={"User-Agent": IPHONE}).status_code == 200
                _, body = _until(lambda: (s := _health(http))[0] == 503 and s)
                waits = body["tracking"]
                assert body["status"] == "behind" and waits["waiting_bytes"] > 0
                assert "busy" in waits["roll_up_error"], waits
                assert waits["roll_up_failing_since"].endswith("Z")
                marker = tmp_path / "failing.db-hits.failing"  # the roller's word, for every process
                assert marker.stat().st_mode & 0o777 == 0o600  # as the journals: the error may name paths
                cli = _status(url)
                assert cli.returncode == 1, cli.stdout + cli.stderr
                assert "the roll-up has failed since" in cli.stdout and "busy" in cli.stdout, cli.stdout
                as_json = subprocess.run([*_status_command(url), "--json"], capture_output=True, text=True,
                                         timeout=60, env=os.environ)
                assert orjson.loads(as_json.stdout)["tracking"]["roll_up_error"] == waits["roll_up_error"]
            finally:
                turn.release()
            _, body = _until(lambda: (s := _health(http))[0] == 200 and s)
            assert body["tracking"]["roll_up_error"] is None and body["tracking"]["waiting_bytes"] == 0
            assert not marker.exists()
            assert stats(http, account.headers, activity)["counts"]["opens"] == 1
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=30)
        engine.dispose()
    assert "rolling up tracking hits failed" in err.decode()  # and said in the roller's log


def _status_command(url: str) -> list[str]:
    return [sys.executable, "-m", "mailtally", "tracking", "status", "--database", url]


def _up(http: httpx.Client) -> bool:
    try:
        return http.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def test_a_roller_far_behind_warns_in_the_log_once_a_minute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Hits answered two minutes ago still waiting after a roll-up (the roller takes a few at a
    time): the roller says so in the log, once however many roll-ups see it."""
    monkeypatch.setattr(RollUp, "MOST", 3)
    monkeypatch.setattr(RollUp, "WATCH", 0.0)
    engine = open_engine(f"sqlite:///{tmp_path / 'behind.db'}")
    migrate.upgrade(engine)
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    caplog.set_level("WARNING", logger="mailtally.tracking")
    rollup = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), str(engine.url.database), max_behind=60.0)
    try:
        long_ago = now_ms() - 120_000
        for i in range(30):
            rollup.record(PendingHit(HitRef(Kind.OPEN, account, num, people[i % 10]), long_ago + i, DESKTOP,
                                     "192.0.2.1"))
        with engine.connect() as conn:
            assert _until(lambda: not hit_journal.waiting(conn, str(engine.url.database)))
    finally:
        rollup.close()
        engine.dispose()
    said = [r.getMessage() for r in caplog.records if "after they were answered" in r.getMessage()]
    assert len(said) == 1, said
    assert said[0].startswith("tracking hits reach the log 12")  # ~120 s after
