"""The hits' journal on a SQLite file (``store.hit_journal``, ``ingest.tracking.RollUp``): each hit
journaled and answered, rolled up in groups; applied twice at once (its process and a report of
another's), still once in the log and the counters as written straight away; a journal whose
process died applied at the next start, but for a last line cut short; a report reads every
answered hit, whichever process answered it."""

from __future__ import annotations

import asyncio
import ipaddress
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, select

from mailtally.config import Settings
from mailtally.ingest.tracking import HitRecorder, PendingHit, RollUp
from mailtally.store import hit_journal, migrate
from mailtally.store.db import gate_of, now_ms, open_engine
from mailtally.store.schema import activity_counters
from mailtally.tracking.tokens import HitRef, Kind
from mailtally.tracking.verdict import Rules
from mailtally.vocab import IpStorage
from tests.conftest import TEST_SECRET, LiveServer, free_port, make_account
from tests.support.loops import run_in_own_loop

from .support import DESKTOP, IPHONE, paths, sent_long_ago, stats
from .test_hit_writer import _activity, _groups, _record, _tables


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Any:
    engine = open_engine(f"sqlite:///{tmp_path / 'journal.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _db(engine: Engine) -> str:
    return str(engine.url.database)


def _hits(account: int, num: int, people: list[int], group: list[Any], start: int) -> list[PendingHit]:
    return [PendingHit(HitRef(Kind.CLICK if click else Kind.OPEN, account, num, people[who], url), start + at, ua, ip,
                       method) for who, click, url, at, ua, ip, method in group]


def test_journaled_hits_applied_twice_at_once_are_in_the_log_once(sqlite_file: Engine) -> None:
    """A process rolls its journal up seven hits at a time while another applies the whole file
    (as a report read in another worker does): every table as the general writer leaves the
    same hits written straight away."""
    engine = sqlite_file
    policy = ("proxy", "none")
    start = now_ms()
    account, num, people = _activity(engine, policy, start)
    direct_account, direct_num, direct_people = _activity(engine, policy, start)
    groups = _groups(7)
    owner = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    journal = hit_journal.Journal(_db(engine))
    journaled = [owner.journaled(h) for g in groups for h in _hits(account, num, people, g, start)]
    journal.append(journaled)
    _record(engine, HitRecorder(engine, Rules(), IpStorage.TRUNCATED, general=True), direct_account, direct_num,
            direct_people, groups, start)
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as e:  # reported below: a thread's exception is otherwise lost
            errors.append(e)

    def roll_up() -> None:
        for i in range(0, len(journaled), 7):
            owner.write_journaled(journaled[i:i + 7])

    def apply_file() -> None:
        other = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
        other.write_journaled(hit_journal.read(journal.path))
        other.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in (roll_up, apply_file)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    owner.close()
    assert not errors
    got, want = _tables(engine, account, num), _tables(engine, direct_account, direct_num)
    assert sum(dict(r)["type"] in ("open", "click") for r in got["events"]) == len(journaled)
    for name in want:
        assert got[name] == want[name], name
    path = journal.path
    journal.applied_before(None)
    journal.close(applied=True)
    assert not path.exists()


DIES = """
import os, sys, orjson
from mailtally.store.hit_journal import Journal, QueuedHit
journal = Journal(sys.argv[1])
journal.append([QueuedHit(*h) for h in orjson.loads(sys.argv[2])])
with journal.path.open("ab") as f:
    f.write(b'[1, 2, 3, fal')
os._exit(9)
"""


def test_a_dead_process_journal_is_applied_at_start_but_a_last_line_cut_short(sqlite_file: Engine) -> None:
    """The process died with hits journaled (its lock gone with it), mid-write of a last one it
    never answered: the next start applies the whole lines and deletes the file. The journal
    keeps the IP cut as the log does, and the scanner verdict taken on the whole address."""
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    rules = Rules(scanner_networks=(ipaddress.ip_network("203.0.113.0/28"),))
    recorder = HitRecorder(engine, rules, IpStorage.TRUNCATED)
    at = now_ms()
    hits = [recorder.journaled(PendingHit(HitRef(Kind.OPEN, account, num, people[i]), at, ua, ip))
            for i, ua, ip in ((0, DESKTOP, "203.0.113.9"), (4, IPHONE, "203.0.113.200"))]
    # A worker that journals two hits and dies mid-write of a third (never answered).
    died = subprocess.run([sys.executable, "-c", DIES, _db(engine), orjson.dumps([tuple(h) for h in hits])],
                          capture_output=True, text=True, timeout=60)
    assert died.returncode == 9, died.stderr
    [dead] = hit_journal.files(_db(engine))
    assert b"203.0.113.9" not in dead.read_bytes()
    assert [(h.ip, h.scanner) for h in hit_journal.read(dead)] == [("203.0.113.0", True), ("203.0.113.0", False)]
    gate = gate_of(engine)
    assert gate is not None
    starting = RollUp(HitRecorder(engine, rules, IpStorage.TRUNCATED), gate, _db(engine))
    starting.recover()
    assert not dead.exists()
    whys = sorted(dict(r)["verdict_why"] for r in _tables(engine, account, num)["events"] if dict(r)["type"] == "open")
    assert whys == ["no_signal", "scanner_network"]
    starting.close()
    assert hit_journal.waiting(_db(engine)) == 0
    recorder.close()


def test_a_report_reads_every_answered_hit_whichever_process_answered(sqlite_file: Engine,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two servers on one database file (two workers), with their roll-ups held off: hits stay
    journaled until a report is read, in either server; what is still journaled when a server
    stops, it applies on its way out."""
    monkeypatch.setattr(RollUp, "AT", 10**9)
    monkeypatch.setattr(RollUp, "AFTER", 3600.0)
    engine = sqlite_file
    account = make_account(engine)
    url = engine.url.render_as_string(hide_password=False)

    def settings() -> Settings:
        return Settings(database_url=url, secret=TEST_SECRET, port=free_port(), webhook_worker=False)

    with LiveServer(settings()) as one, LiveServer(settings()) as two, \
            httpx.Client(base_url=one.url, timeout=30) as a, httpx.Client(base_url=two.url, timeout=30) as b:
        activity, msgs = sent_long_ago(a, account.headers, ["late@example.com"])
        pixel = paths(msgs[0]["html"], "o")[0]
        assert a.get(pixel, headers={"User-Agent": IPHONE}).status_code == 200
        assert a.get(paths(msgs[0]["html"], "c")[1], headers={"User-Agent": IPHONE}).status_code == 302
        assert hit_journal.waiting(_db(engine)) > 0
        s = stats(b, account.headers, activity)  # the other server's report
        assert (s["counts"]["opens"], s["counts"]["opens_all"], s["counts"]["clicks"]) == (1, 1, 1)
        assert stats(a, account.headers, activity)["counts"]["opens_all"] == 1  # applied once
        assert hit_journal.waiting(_db(engine)) == 0
        assert b.get(pixel, headers={"User-Agent": IPHONE}).status_code == 200
        assert hit_journal.waiting(_db(engine)) > 0
    assert hit_journal.waiting(_db(engine)) == 0
    assert not list(hit_journal.folder(_db(engine)).iterdir())
    with engine.connect() as conn:
        assert conn.execute(select(activity_counters.c.opens_all).where(
            activity_counters.c.account_id == account.id)).scalar_one() == 2


def test_the_roll_up_never_waits_for_the_turn_on_the_loop(sqlite_file: Engine) -> None:
    """While another process holds the turn to write, hits are answered (journaled) and stay
    pending, the loop going on; once it lets go, they are written."""
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    gate = gate_of(engine)
    assert gate is not None
    rollup = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), gate, _db(engine))

    def logged() -> int:
        return sum(dict(r)["type"] == "open" for r in _tables(engine, account, num)["events"])

    async def main() -> tuple[int, int, int]:
        other = gate.try_take()  # another worker writing
        assert other is not None
        for i in range(RollUp.AT + 2):  # enough to start a roll-up at once
            rollup.record(PendingHit(HitRef(Kind.OPEN, account, num, people[i % 10]), now_ms(), DESKTOP, "192.0.2.1"))
        ticks = 0
        for _ in range(20):  # the loop keeps turning meanwhile
            await asyncio.sleep(0.005)
            ticks += 1
        held = logged()
        other.release()
        for _ in range(400):
            await asyncio.sleep(0.005)
            if logged() == RollUp.AT + 2:
                break
        return ticks, held, hit_journal.waiting(_db(engine))

    [(ticks, held, left)] = run_in_own_loop(main)
    assert ticks == 20 and held == 0
    assert logged() == RollUp.AT + 2 and left == 0  # written, and the journal emptied
    rollup.close()


def test_under_steady_load_the_journal_stays_small(sqlite_file: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hits keep coming faster than one roll-up takes them, so some are always pending: the
    journal still does not grow, its older files deleted as their hits reach the log."""
    monkeypatch.setattr(hit_journal, "MAX_BYTES", 2000)  # ~10 hits a file
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    gate = gate_of(engine)
    assert gate is not None
    rollup = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), gate, _db(engine))
    sizes: list[int] = []
    pending: list[int] = []

    def burst(n: int) -> None:
        for i in range(n):
            rollup.record(PendingHit(HitRef(Kind.OPEN, account, num, people[i % 10]), now_ms(), DESKTOP, "192.0.2.1"))

    async def main() -> None:
        # The loop never turns here, so no timer fires: one roll-up after each burst, by hand.
        burst(10)
        for _ in range(30):
            burst(RollUp.LIMIT)  # as many as a roll-up takes: ten always left pending
            rollup.apply()
            sizes.append(hit_journal.waiting(_db(engine)))
            pending.append(len(rollup._pending))

    run_in_own_loop(main)
    total = 10 + 30 * RollUp.LIMIT
    assert set(pending) == {10}  # never all applied: one file could never be emptied
    assert max(sizes) < 3 * hit_journal.MAX_BYTES  # the newest file or two, whatever has passed
    rollup.close()
    assert sum(dict(r)["type"] == "open" for r in _tables(engine, account, num)["events"]) == total
    assert hit_journal.waiting(_db(engine)) == 0 and not list(hit_journal.folder(_db(engine)).iterdir())
