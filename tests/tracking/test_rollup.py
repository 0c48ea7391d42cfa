"""The hits' journal on a SQLite file (``store.hit_journal``, ``ingest.tracking.RollUp``): each hit
journaled and answered, written by one process, the roller, in groups; applied by two at once (the
roller and a report of another process), and again from its start, still once in the log and the
counters as written straight away; a journal whose process died applied by the next, but for a last
line cut short; one roller at a time, and another when it stops; a report reads every answered hit,
whichever process answered it; the journal stays small under steady load."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
import threading
import time
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


def _waiting(engine: Engine) -> int:
    with engine.connect() as conn:
        return hit_journal.waiting(conn, _db(engine))


def _until(done: Any, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.01)
    return bool(done())


def _opens(engine: Engine, account: int, num: int) -> int:
    return sum(dict(r)["type"] == "open" for r in _tables(engine, account, num)["events"])


def test_journaled_hits_applied_twice_at_once_are_in_the_log_once(sqlite_file: Engine,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes' journals applied seven hits at a time (the oldest of both first) by one
    process while another catches up on all of them at once (as a report read in another
    worker does), then written again from the start (as if the offsets had been lost): every
    table as the general writer leaves the same hits written straight away."""
    engine = sqlite_file
    policy = ("proxy", "none")
    start = now_ms()
    account, num, people = _activity(engine, policy, start)
    direct_account, direct_num, direct_people = _activity(engine, policy, start)
    groups = _groups(7)
    owner = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    journal, second = hit_journal.Journal(_db(engine)), hit_journal.Journal(_db(engine))  # two workers'
    journaled = [owner.journaled(h) for g in groups for h in _hits(account, num, people, g, start)]
    journal.append(journaled[0::2])
    second.append(journaled[1::2])
    journal.close()  # their processes are gone
    second.close()
    _record(engine, HitRecorder(engine, Rules(), IpStorage.TRUNCATED, general=True), direct_account, direct_num,
            direct_people, groups, start)
    monkeypatch.setattr(RollUp, "EVERY", 3600.0)  # their own roller threads held off: the test applies
    monkeypatch.setattr(RollUp, "IDLE", 3600.0)
    stepping = RollUp(owner, _db(engine))
    reporting = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), _db(engine))
    errors: list[BaseException] = []

    def run(work: Any) -> None:
        try:
            work()
        except BaseException as e:  # reported below: a thread's exception is otherwise lost
            errors.append(e)

    def seven_at_a_time() -> None:
        while stepping.apply(stepping._reader, most=7):
            pass

    for _ in range(5):  # alone first: what it read and did not take, it starts from next time
        assert stepping.apply(stepping._reader, most=7) == 7
    threads = [threading.Thread(target=run, args=(work,)) for work in (seven_at_a_time, reporting.catch_up)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    again = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    again.transaction(lambda conn: again.write(conn, journaled), has_turn=False)
    again.close()
    stepping.close()
    reporting.close()
    got, want = _tables(engine, account, num), _tables(engine, direct_account, direct_num)
    assert sum(dict(r)["type"] in ("open", "click") for r in got["events"]) == len(journaled)
    for name in want:
        assert got[name] == want[name], name
    assert not journal.path.exists() and not second.path.exists() and _waiting(engine) == 0


DIES = """
import os, sys, orjson
from mailtally.store.hit_journal import Journal, QueuedHit
journal = Journal(sys.argv[1])
journal.append([QueuedHit(*h) for h in orjson.loads(sys.argv[2])])
with journal.path.open("ab") as f:
    f.write(b'[1, 2, 3, fal')
os._exit(9)
"""


def test_a_dead_process_journal_is_applied_by_the_next_but_a_last_line_cut_short(sqlite_file: Engine) -> None:
    """The process died with hits journaled (its lock gone with it), mid-write of a last one it
    never answered: the next process to start applies the whole lines and deletes the file. The
    journal keeps the IP cut as the log does, and the scanner verdict taken on the whole address."""
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
    assert [(h.ip, h.scanner) for h in hit_journal.read(dead).hits] == [("203.0.113.0", True), ("203.0.113.0", False)]
    starting = RollUp(HitRecorder(engine, rules, IpStorage.TRUNCATED), _db(engine))
    assert _until(lambda: not dead.exists())  # its roller, unasked
    whys = sorted(dict(r)["verdict_why"] for r in _tables(engine, account, num)["events"] if dict(r)["type"] == "open")
    assert whys == ["no_signal", "scanner_network"]
    starting.close()
    assert _waiting(engine) == 0 and not hit_journal.files(_db(engine))
    recorder.close()


def test_one_process_rolls_up_every_journal_and_another_takes_over(sqlite_file: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes' roll-ups on one file: one holds the roller's lock and writes the hits the
    other journals too; once it stops, the other takes the lock and writes on."""
    monkeypatch.setattr(RollUp, "LOOK_FOR_LOCK", 0.02)
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    one = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), _db(engine))
    two = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), _db(engine))
    assert _until(lambda: one.rolling or two.rolling)
    time.sleep(0.1)
    assert one.rolling != two.rolling  # one at a time
    roller, other = (one, two) if one.rolling else (two, one)

    def record(rollup: RollUp, n: int) -> None:
        for i in range(n):
            rollup.record(PendingHit(HitRef(Kind.OPEN, account, num, people[i % 10]), now_ms(), DESKTOP, "192.0.2.1"))

    record(other, 30)
    assert _until(lambda: _opens(engine, account, num) == 30)  # by the roller, nobody asking
    assert _waiting(engine) == 0
    roller.close()
    assert _until(lambda: other.rolling)
    record(other, 20)
    assert _until(lambda: _opens(engine, account, num) == 50)
    other.close()
    assert not list(hit_journal.folder(_db(engine)).iterdir())


def test_hits_are_answered_while_another_writer_holds_the_turn(sqlite_file: Engine) -> None:
    """While another process holds the turn to write, hits are journaled (answered) at once;
    once it lets go, the roller writes them."""
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    gate = gate_of(engine)
    assert gate is not None
    rollup = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), _db(engine))
    assert _until(lambda: rollup.rolling)
    other = gate.try_take()  # another worker writing
    assert other is not None
    took = time.monotonic()
    for i in range(40):
        rollup.record(PendingHit(HitRef(Kind.OPEN, account, num, people[i % 10]), now_ms(), DESKTOP, "192.0.2.1"))
    answered_in = time.monotonic() - took
    time.sleep(0.2)
    held = _opens(engine, account, num)
    other.release()
    assert _until(lambda: _opens(engine, account, num) == 40)
    assert held == 0 and answered_in < 1.0
    rollup.close()


def test_a_report_reads_every_answered_hit_whichever_process_answered(sqlite_file: Engine,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two servers on one database file (two workers), with their roll-ups held off: hits stay
    journaled until a report is read, in either server; what is still journaled when a server
    stops, it applies on its way out."""
    monkeypatch.setattr(RollUp, "EVERY", 3600.0)
    monkeypatch.setattr(RollUp, "IDLE", 3600.0)
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
        assert _waiting(engine) > 0
        s = stats(b, account.headers, activity)  # the other server's report
        assert (s["counts"]["opens"], s["counts"]["opens_all"], s["counts"]["clicks"]) == (1, 1, 1)
        assert stats(a, account.headers, activity)["counts"]["opens_all"] == 1  # applied once
        assert _waiting(engine) == 0
        assert b.get(pixel, headers={"User-Agent": IPHONE}).status_code == 200
        assert _waiting(engine) > 0
    assert _waiting(engine) == 0
    assert not list(hit_journal.folder(_db(engine)).iterdir())
    with engine.connect() as conn:
        assert conn.execute(select(activity_counters.c.opens_all).where(
            activity_counters.c.account_id == account.id)).scalar_one() == 2


def test_under_steady_load_the_journal_stays_small(sqlite_file: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hits keep coming while the roller writes them, so some are always waiting: the journal
    still does not grow, its older files deleted as their hits reach the log; and a new file,
    empty as it is made, is never taken for one done with (every hit reaches the log)."""
    monkeypatch.setattr(hit_journal, "MAX_BYTES", 2000)  # ~10 hits a file
    # At its usual lower priority, on a machine busy with other tests, the roller may not run at all for
    # the test's half second: what is tested here is which files go, not how the roller shares the CPU.
    monkeypatch.setattr(RollUp, "NICE", 0)
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    rollup = RollUp(HitRecorder(engine, Rules(), IpStorage.TRUNCATED), _db(engine))
    assert _until(lambda: rollup.rolling)
    sizes: list[int] = []
    for _ in range(40):
        for i in range(10):
            rollup.record(PendingHit(HitRef(Kind.OPEN, account, num, people[i]), now_ms(), DESKTOP, "192.0.2.1"))
        sizes.append(sum(p.stat().st_size for p in hit_journal.files(_db(engine)) if p.exists()))
        time.sleep(0.01)
    assert _until(lambda: _opens(engine, account, num) == 400), _opens(engine, account, num)
    assert max(sizes) < 6 * hit_journal.MAX_BYTES  # the newest file, and what the roller has not reached
    assert len(hit_journal.files(_db(engine))) <= 2
    rollup.close()
    assert _waiting(engine) == 0 and not list(hit_journal.folder(_db(engine)).iterdir())


def test_a_file_a_process_died_making_is_swept_not_one_being_made(tmp_path: Path) -> None:
    """A file made (locked, not yet named) by a process that died before naming it is deleted
    once it is a minute old; one a live process is making is left alone."""
    db = str(tmp_path / "sweep.db")
    where = hit_journal.folder(db)
    where.mkdir()
    dead, fresh = where / "1-aa-0.new", where / "2-bb-0.new"
    dead.touch()
    fresh.touch()
    os.utime(dead, (time.time() - 120, time.time() - 120))
    hit_journal.sweep(db)
    assert not dead.exists() and fresh.exists()


def test_a_roller_behind_takes_the_oldest_hits_of_every_journal_first(tmp_path: Path) -> None:
    """Two workers' journals, more hits than a roll-up takes: the oldest of both, each journal's
    first ones, and from where each was cut, the rest."""
    db = str(tmp_path / "oldest.db")
    one, two = hit_journal.Journal(db), hit_journal.Journal(db)

    def hit(at: int) -> hit_journal.QueuedHit:
        return hit_journal.QueuedHit(1, 1, at, False, None, at, DESKTOP, None, False, False, at)

    one.append([hit(1), hit(3), hit(5)])
    two.append([hit(2), hit(4), hit(6)])
    tails = [hit_journal.read(p) for p in (one.path, two.path)]
    first = hit_journal.oldest(tails, 3)
    assert [[h.at for h in t.hits] for t in first] == [[1, 3], [2]]
    rest = [hit_journal.read(t.path, t.end) for t in first]
    assert [[h.at for h in t.hits] for t in rest] == [[5], [4, 6]]
    assert [t.end for t in rest] == [one.path.stat().st_size, two.path.stat().st_size]
    assert hit_journal.oldest(tails, 6) == tails
    one.close()
    two.close()
