"""The hit path's own writer against the general one: the same groups of hits, judged the same
way, written once through ``store.hit_writer`` and once as Events through ``write_events``,
must leave every table the same (the log, the recipients' state, the activity's counters, the
links' counters and clickers, the hourly chart) on both databases, for every counting policy."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from sqlalchemy import Engine, select

from mailtally.events import Event
from mailtally.ingest import tracking as ingest
from mailtally.ingest.tracking import HitRecorder, PendingHit
from mailtally.store import catalog, wal
from mailtally.store import hits as store
from mailtally.store.db import now_ms, writing
from mailtally.store.schema import (
    activities,
    activity_counters,
    activity_hourly,
    contacts,
    events,
    link_clickers,
    link_counters,
    recipients,
)
from mailtally.store.writer import write_events
from mailtally.tracking.tokens import HitRef, Kind
from mailtally.tracking.verdict import HONEYPOT_URL_ID, Rules
from mailtally.vocab import BounceCode, EventType, IpStorage, MachineCounting, Reason
from tests.conftest import make_account
from tests.tracking.support import DESKTOP, IPHONE

AGENTS = [DESKTOP, IPHONE, "Mozilla/5.0", "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via "
          "ggpht.com GoogleImageProxy)", "curl/8.5.0", ""]
PEOPLE = 12


def _activity(engine: Engine, policy: tuple[str, str], now: int) -> tuple[int, int, list[int]]:
    """An account with one activity of PEOPLE contacts: most sent an hour ago, two a moment ago
    (too soon), one bounced, one never sent; three links and the honeypot."""
    account = make_account(engine).id
    emails = [f"p{i}@example.com" for i in range(PEOPLE)]
    with writing(engine) as conn:
        activity = catalog.create_activity(conn, account, catalog.create_campaign(conn, account, "c").id)
        ids = catalog.contacts_for_emails(conn, account, emails)
        batch = [Event(EventType.SEND, activity.id, now - (2_000 if i in (1, 2) else 3_600_000), ids[e])
                 for i, e in enumerate(emails[:-1])]
        batch.append(Event(EventType.BOUNCE, activity.id, now - 3_000_000, ids[emails[3]], reason=Reason("mailboxfull"),
                           bounce_code=BounceCode.MAILBOX_FULL, hard=False))
        write_events(conn, account, batch)
        store.register_urls(conn, account, activity.id, ["https://a.example/1", "https://a.example/2",
                                                           "https://a.example/3"], {HONEYPOT_URL_ID: "/t/x"})
        store.set_counting(conn, account, MachineCounting(policy[0]), MachineCounting(policy[1]))
        num = conn.execute(select(activities.c.num_id).where(
            activities.c.id == activity.id)).scalar_one()
        nums = dict(conn.execute(select(contacts.c.email, contacts.c.num_id).where(
            contacts.c.account_id == account)).all())
    return account, int(num), [int(nums[e]) for e in emails]


def _groups(seed: int) -> list[list[tuple[int, bool, str | None, int, str, str, str]]]:
    """Hits as (person, click, url_id, ms after now, user agent, ip, method), in groups: bursts
    of one recipient's clicks within a second, split across groups too."""
    rng = random.Random(seed)
    hits = [(1, False, None, 0, DESKTOP, "192.0.2.7", "GET"), (2, True, "1", 0, DESKTOP, "192.0.2.7", "GET")]
    t = 0
    for _ in range(160):
        t += rng.choice((0, 0, 1, 30, 200, 700, 1500))
        click = rng.random() < 0.55
        url = rng.choice(("1", "2", "3", "1", "2", HONEYPOT_URL_ID)) if click else None
        hits.append((rng.randrange(PEOPLE), click, url, t, rng.choice(AGENTS),
                     rng.choice(("192.0.2.7", "198.51.100.20", "2001:db8::1")), rng.choice(("GET",) * 9 + ("HEAD",))))
    groups, i = [], 0
    while i < len(hits):
        n = rng.choice((1, 2, 5, 16, 40))
        groups.append(hits[i:i + n])
        i += n
    return groups


def _record(engine: Engine, recorder: HitRecorder, account: int, num: int, people: list[int],
            groups: list[list[Any]], start: int) -> None:
    for g in groups:
        kinds = [(Kind.CLICK if click else Kind.OPEN) for _, click, *_ in g]
        recorder([PendingHit(HitRef(k, account, num, people[who], url), start + at, ua, ip, method)
                  for k, (who, _, url, at, ua, ip, method) in zip(kinds, g, strict=True)])


def _tables(engine: Engine, account: int, num: int, skip_ids: tuple[str, ...] = ("idem", "id")) -> dict[str, Any]:
    """Every row the hits touch, with the account's own ids left out (two accounts compared)."""
    with engine.connect() as conn:
        activity_id = conn.execute(select(activities.c.id).where(
            activities.c.account_id == account, activities.c.num_id == num)).scalar_one()
        emails = dict(conn.execute(select(contacts.c.id, contacts.c.email).where(
            contacts.c.account_id == account)).all())
        nums = dict(conn.execute(select(contacts.c.num_id, contacts.c.email).where(
            contacts.c.account_id == account)).all())

        def rows(table: Any, *skip: str, where: Any) -> list[tuple[Any, ...]]:
            cols = [c for c in table.c if c.name not in ("account_id", "activity_id", "activity_num", *skip)]
            out = []
            for r in conn.execute(select(*cols).where(table.c.account_id == account, where)):
                d = dict(zip([c.name for c in cols], r, strict=True))
                if "contact_num" in d:
                    d["contact_num"] = nums[d["contact_num"]]
                if "contact_id" in d:
                    d["contact_id"] = emails[d["contact_id"]]
                out.append(tuple(sorted(d.items(), key=lambda kv: kv[0])))
            return sorted(out, key=repr)

        return {
            "events": rows(events, *skip_ids, where=events.c.activity_num == num),
            "recipients": rows(recipients, where=recipients.c.activity_num == num),
            "counters": rows(activity_counters, "updated_at", where=activity_counters.c.activity_id == activity_id),
            "links": rows(link_counters, where=link_counters.c.activity_id == activity_id),
            "clickers": rows(link_clickers, where=link_clickers.c.activity_id == activity_id),
            "hourly": rows(activity_hourly, where=activity_hourly.c.activity_num == num),
        }


@pytest.mark.parametrize("policy", [("proxy", "none"), ("all", "all"), ("none", "proxy")])
def test_the_hit_path_writes_what_the_general_writer_writes(engine: Engine, policy: tuple[str, str]) -> None:
    start = now_ms()
    fast_account, fast_num, fast_people = _activity(engine, policy, start)
    slow_account, slow_num, slow_people = _activity(engine, policy, start)
    fast = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    slow = HitRecorder(engine, Rules(), IpStorage.TRUNCATED, general=True)
    groups = _groups(sum(map(ord, "".join(policy))))
    _record(engine, fast, fast_account, fast_num, fast_people, groups, start)
    _record(engine, slow, slow_account, slow_num, slow_people, groups, start)
    got, want = _tables(engine, fast_account, fast_num), _tables(engine, slow_account, slow_num)
    assert sum(dict(r)["type"] in ("open", "click") for r in got["events"]) == sum(map(len, groups))
    assert {dict(r)["verdict_why"] for r in got["events"]} >= {"no_signal", "click_burst", "honeypot", "too_soon"}
    for name in want:
        assert got[name] == want[name], name


def test_remembered_clicks_judge_as_clicks_read_back_from_the_log(engine: Engine) -> None:
    """The burst rule's recent clicks, remembered by the recorder that wrote them, judge every
    hit as a recorder that reads them back from the log each group does; and two recorders
    writing groups in turn (two processes) each see the other's clicks."""
    start = now_ms()
    policy = ("proxy", "none")
    groups = _groups(11)
    accounts = [_activity(engine, policy, start) for _ in range(3)]

    def write(account: int, num: int, people: list[int], recorder_of: Any, fresh: bool = False) -> None:
        for i, g in enumerate(groups):
            recorder = recorder_of(i)
            _record(engine, recorder, account, num, people, [g], start)
            if fresh:
                recorder.close()

    remembering = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    write(*accounts[0], lambda i: remembering)
    write(*accounts[1], lambda i: HitRecorder(engine, Rules(), IpStorage.TRUNCATED), fresh=True)  # never remembers
    pair = (HitRecorder(engine, Rules(), IpStorage.TRUNCATED), HitRecorder(engine, Rules(), IpStorage.TRUNCATED))
    write(*accounts[2], lambda i: pair[i % 2])
    (a, an, _), (b, bn, _), (c, cn, _) = accounts
    remembered, read_back, in_turn = _tables(engine, a, an), _tables(engine, b, bn), _tables(engine, c, cn)
    assert sum(dict(r)["verdict_why"] == "click_burst" for r in read_back["events"]) >= 5
    for name in read_back:
        assert remembered[name] == read_back[name], name
        assert in_turn[name] == read_back[name], name
    for recorder in (remembering, *pair):
        recorder.close()


def test_a_burst_across_groups_judges_the_click_before_it(engine: Engine) -> None:
    """Link 1 clicked, then in the next group links 2 and 1 within the second: all three are a
    machine's, the remembered first click too."""
    start = now_ms()
    account, num, people = _activity(engine, ("proxy", "none"), start)
    recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    _record(engine, recorder, account, num, people, [[(0, True, "1", 0, DESKTOP, "192.0.2.7", "GET")]], start)
    _record(engine, recorder, account, num, people, [[(0, True, "2", 300, DESKTOP, "192.0.2.7", "GET"),
                                                      (0, True, "1", 400, DESKTOP, "192.0.2.7", "GET")]], start)
    recorder.close()
    whys = sorted((dict(r)["url_id"], dict(r)["verdict_why"]) for r in _tables(engine, account, num)["events"]
                  if dict(r)["type"] == "click")
    assert whys == [("1", "click_burst"), ("1", "click_burst"), ("2", "click_burst")]


def test_a_reader_who_clicks_one_link_again_and_again_then_another(engine: Engine) -> None:
    """Twenty-five clicks of link 1, 100 ms apart, one a group (more than a recipient's
    remembered clicks are kept before the old ones are let go), then link 2: the clicks of
    link 1 in the second before it open the burst, the older ones stay a person's; judged
    alike by a recorder that remembers and by fresh ones that read the log back."""
    start = now_ms()
    clicks = [[(0, True, "1", 100 * i, DESKTOP, "192.0.2.7", "GET")] for i in range(25)]
    groups = [*clicks, [(0, True, "2", 100 * 24 + 50, DESKTOP, "192.0.2.7", "GET")]]
    whys = []
    for fresh in (False, True):
        account, num, people = _activity(engine, ("proxy", "none"), start)
        remembering = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
        for g in groups:
            recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED) if fresh else remembering
            _record(engine, recorder, account, num, people, [g], start)
            if fresh:
                recorder.close()
        remembering.close()
        whys.append(sorted((dict(r)["occurred_at"] - start, dict(r)["url_id"], dict(r)["verdict_why"])
                           for r in _tables(engine, account, num)["events"] if dict(r)["type"] == "click"))
    burst = {100 * i for i in range(25) if 100 * 24 + 50 - 100 * i <= 1000}
    assert whys[0] == [(100 * i, "1", "click_burst" if 100 * i in burst else "no_signal") for i in range(25)] \
        + [(2450, "2", "click_burst")]
    assert whys[1] == whys[0]


def test_a_group_the_hit_path_refuses_goes_through_the_general_writer(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """An id already in the log (here forced: a second hit given the first one's ``idem`` in
    the same millisecond) fails the hit path's insert; the group is judged again, with new ids,
    and written by the general writer: every hit once."""
    account, num, people = _activity(engine, ("proxy", "none"), now_ms())
    ids = iter((42, 42, 43, 44, 45))  # the first group; the second's, refused; the second's again
    monkeypatch.setattr(ingest, "_random_ids", lambda n: [next(ids) for _ in range(n)])
    recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    at = now_ms()
    recorder([PendingHit(HitRef(Kind.OPEN, account, num, people[0]), at, DESKTOP, "192.0.2.1")])
    recorder([PendingHit(HitRef(Kind.OPEN, account, num, people[0]), at, DESKTOP, "192.0.2.1"),
              PendingHit(HitRef(Kind.OPEN, account, num, people[4]), at + 1, DESKTOP, "192.0.2.1")])
    assert next(ids, None) is None
    tables = _tables(engine, account, num, skip_ids=("id",))
    assert sorted(dict(r)["idem"] for r in tables["events"] if dict(r)["type"] == "open") == [42, 44, 45]
    counters = dict(tables["counters"][0])
    assert (counters["opens_all"], counters["opens"], counters["opens_human"]) == (3, 2, 3)


def test_the_hit_writer_leaves_checkpoints_to_a_thread(tmp_path: Any) -> None:
    """On a SQLite file the recorder's connection does not checkpoint at SQLite's 1,000 pages
    (a group's requests would wait for the fsyncs); the checkpointer thread does, soon after."""
    from mailtally.store import migrate
    from mailtally.store.db import open_engine

    engine = open_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    migrate.upgrade(engine)
    account, num, people = _activity(engine, ("proxy", "none"), now_ms())
    recorder = HitRecorder(engine, Rules(), IpStorage.TRUNCATED)
    recorder([PendingHit(HitRef(Kind.OPEN, account, num, people[0]), now_ms(), DESKTOP, "192.0.2.1")])
    conn = recorder._connection()
    assert conn.connection.dbapi_connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == wal.WRITER_PAGES  # type: ignore[union-attr]
    checkpointer = recorder._checkpointer
    assert checkpointer is not None
    for _ in range(100):
        if checkpointer.runs:
            break
        time.sleep(0.02)
    assert checkpointer.runs >= 1
    checkpointer.close()
    recorder.close()
    engine.dispose()
