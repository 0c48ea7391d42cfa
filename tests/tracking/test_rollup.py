"""The hits' queue on a SQLite file (``store.hit_queue``, ``ingest.tracking.RollUp``): queued hits
rolled up in other groups, by several writers at once, leave every table as hits written
straight away do; each hit once, whoever applies it; a report reads every answered hit."""

from __future__ import annotations

import ipaddress
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from mailtally.config import Settings
from mailtally.ingest import tracking as ingest
from mailtally.ingest.tracking import HitRecorder, PendingHit, RollUp
from mailtally.store import migrate
from mailtally.store.db import now_ms, open_engine
from mailtally.store.schema import activity_counters, hit_queue
from mailtally.tracking.tokens import HitRef, Kind
from mailtally.tracking.verdict import Rules
from mailtally.vocab import IpStorage
from tests.conftest import TEST_SECRET, LiveServer, free_port, make_account

from .support import DESKTOP, IPHONE, paths, sent_long_ago, stats
from .test_hit_writer import _activity, _groups, _record, _tables


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Any:
    engine = open_engine(f"sqlite:///{tmp_path / 'queue.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _queued(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(hit_queue)).scalar_one())


def _hits(account: int, num: int, people: list[int], group: list[Any], start: int) -> list[PendingHit]:
    return [PendingHit(HitRef(Kind.CLICK if click else Kind.OPEN, account, num, people[who], url), start + at, ua, ip,
                       method) for who, click, url, at, ua, ip, method in group]


def test_queued_hits_rolled_up_by_two_writers_at_once_equal_hits_written_at_once(sqlite_file: Engine) -> None:
    """Queued in the groups they came in, applied seven at a time by two recorders racing for
    the turn (as two worker processes do): every table as the general writer leaves it."""
    engine = sqlite_file
    policy = ("proxy", "none")
    start = now_ms()
    queued_account, queued_num, queued_people = _activity(engine, policy, start)
    direct_account, direct_num, direct_people = _activity(engine, policy, start)
    groups = _groups(7)
    front = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    for g in groups:
        front.enqueue(_hits(queued_account, queued_num, queued_people, g, start))
    assert _queued(engine) == sum(map(len, groups))
    _record(engine, HitRecorder(engine, Rules(), IpStorage.TRUNCATED, general=True), direct_account, direct_num,
            direct_people, groups, start)

    applied: list[int] = []
    errors: list[BaseException] = []

    def roll_up() -> None:
        recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
        try:
            while n := recorder.apply_queued(7):
                applied.append(n)
        except BaseException as e:  # reported below: a thread's exception is otherwise lost
            errors.append(e)
        finally:
            recorder.close()

    threads = [threading.Thread(target=roll_up) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    front.close()
    assert not errors
    assert sum(applied) == sum(map(len, groups)) and _queued(engine) == 0
    got, want = _tables(engine, queued_account, queued_num), _tables(engine, direct_account, direct_num)
    for name in want:
        assert got[name] == want[name], name


def test_a_queued_batch_the_hit_path_refuses_is_written_once_by_the_general_writer(
        sqlite_file: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two hits given the same ``idem`` (forced) in one millisecond fail the hit path's insert:
    the batch is judged again and written by the general writer, and leaves the queue with it."""
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms())
    ids = iter((42, 42, 43, 44, 45, 46))  # the batch's, refused; the batch's again
    monkeypatch.setattr(ingest, "_random_ids", lambda n: [next(ids) for _ in range(n)])
    recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    at = now_ms()
    recorder.enqueue([PendingHit(HitRef(Kind.OPEN, account, num, people[0]), at, DESKTOP, "192.0.2.1")])
    recorder.enqueue([PendingHit(HitRef(Kind.OPEN, account, num, people[0]), at, DESKTOP, "192.0.2.1"),
                      PendingHit(HitRef(Kind.OPEN, account, num, people[4]), at + 1, IPHONE, "192.0.2.1")])
    assert recorder.apply_queued(10) == 3
    assert next(ids, None) is None and _queued(engine) == 0
    tables = _tables(engine, account, num, skip_ids=("id",))
    assert sorted(dict(r)["idem"] for r in tables["events"] if dict(r)["type"] == "open") == [44, 45, 46]
    counters = dict(tables["counters"][0])
    assert (counters["opens_all"], counters["opens"], counters["opens_human"]) == (3, 2, 3)
    recorder.close()


def test_the_queue_keeps_the_ip_as_the_log_does(sqlite_file: Engine) -> None:
    """The full IP is never at rest: cut to its /24 before it is queued, and its scanner
    network judged from the whole address first."""
    engine = sqlite_file
    account, num, people = _activity(engine, ("proxy", "none"), now_ms() - 3_600_000)
    recorder = HitRecorder(engine, Rules(scanner_networks=(ipaddress.ip_network("203.0.113.0/28"),)),
                           IpStorage.TRUNCATED)
    at = now_ms()
    recorder.enqueue([PendingHit(HitRef(Kind.OPEN, account, num, people[0]), at, DESKTOP, "203.0.113.9"),
                      PendingHit(HitRef(Kind.OPEN, account, num, people[4]), at, DESKTOP, "203.0.113.200")])
    with engine.connect() as conn:
        assert sorted(conn.execute(select(hit_queue.c.ip, hit_queue.c.scanner))) == [
            ("203.0.113.0", False), ("203.0.113.0", True)]
    recorder.apply_queued(10)
    whys = sorted(dict(r)["verdict_why"] for r in _tables(engine, account, num)["events"]
                  if dict(r)["type"] == "open")
    assert whys == ["no_signal", "scanner_network"]
    recorder.close()


def test_a_report_reads_hits_the_roll_up_has_not_reached(sqlite_file: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the roll-up held off, hits stay queued until a report is read: the report applies
    them first. What is still queued when the server stops, it applies on its way out."""
    monkeypatch.setattr(RollUp, "AT", 10**9)
    monkeypatch.setattr(RollUp, "AFTER", 3600.0)
    engine = sqlite_file
    account = make_account(engine)
    settings = Settings(database_url=engine.url.render_as_string(hide_password=False), secret=TEST_SECRET,
                        port=free_port(), webhook_worker=False)
    with LiveServer(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        activity, msgs = sent_long_ago(http, account.headers, ["late@example.com"])
        pixel = paths(msgs[0]["html"], "o")[0]
        assert http.get(pixel, headers={"User-Agent": IPHONE}).status_code == 200
        assert http.get(paths(msgs[0]["html"], "c")[1], headers={"User-Agent": IPHONE}).status_code == 302
        assert _queued(engine) == 2
        s = stats(http, account.headers, activity)
        assert (s["counts"]["opens"], s["counts"]["clicks"]) == (1, 1)
        assert _queued(engine) == 0
        assert http.get(pixel, headers={"User-Agent": IPHONE}).status_code == 200
        assert _queued(engine) == 1
    assert _queued(engine) == 0
    with engine.connect() as conn:
        assert conn.execute(select(activity_counters.c.opens_all).where(
            activity_counters.c.account_id == account.id)).scalar_one() == 2
