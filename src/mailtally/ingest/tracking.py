"""Recipients' own hits (pixel loads, link clicks, opt-outs, forwards) into Events.

Opens and clicks arrive one at a time and are written in groups (``store.group_commit``);
each gets its device type, user agent, IP (kept as the instance's setting says), seconds
since the send and a machine verdict. Whether a machine hit counts for the vendor surfaces
follows the account's policy; every hit stays in the log either way.
"""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import logging
import os
import random
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..events import Event
from ..store import hit_journal, rawsql, wal
from ..store import hits as store
from ..store.accounts import allocate
from ..store.db import driver_writing, now_ms, writing
from ..store.hit_journal import QueuedHit
from ..store.hit_writer import Click, HitRow, write_hits
from ..store.writer import write_events
from ..tracking.device import read_agent
from ..tracking.tokens import HitRef, Kind
from ..tracking.verdict import Hit, Rules, in_networks, judge
from ..vocab import (
    DeviceType,
    EventType,
    IpStorage,
    MachineCounting,
    OptoutSource,
    Verdict,
    VerdictWhy,
    counts_for_vendors,
)

MAX_UA = 1000
log = logging.getLogger("mailtally.tracking")
K = TypeVar("K")
V = TypeVar("V")
R = TypeVar("R")


class PendingHit(NamedTuple):
    """An open or click as the endpoint saw it, before it is judged (a tuple: quick to make,
    and the roll-up makes one for every hit it reads back)."""

    ref: HitRef
    at: int  # ms
    user_agent: str
    ip: str | None
    method: str = "GET"
    scanner: bool | None = None  # the IP was in a scanner network (known when the IP was cut: a journaled hit)
    idem: int | None = None  # its log id, given when it was journaled (else one is drawn when it is judged)


@lru_cache(maxsize=65536)
def stored_ip(ip: str | None, how: IpStorage) -> str | None:
    """The IP as the log keeps it: whole, cut to its /24 or /48, or not at all."""
    if not ip or how is IpStorage.NONE:
        return None
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return None
    if how is IpStorage.FULL:
        return str(addr)
    prefix = 24 if addr.version == 4 else 48
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False).network_address)


class _Remembered(Generic[K, V]):
    """Facts that never change (numeric ids to UUIDs, an IP's network), remembered per process."""

    def __init__(self, limit: int = 200_000) -> None:
        self.known: dict[K, V] = {}
        self.limit = limit

    def many(self, keys: Iterable[K], look_up: Callable[[list[K]], dict[K, V]]) -> dict[K, V]:
        """The value of each key that has one; those not remembered are looked up together."""
        known = self.known
        missing = [k for k in set(keys) if k not in known]
        if missing:
            found = look_up(missing)
            if len(known) + len(found) > self.limit:
                known.clear()
            known.update(found)
        return known


class HitRecorder:
    """Writes a group of hits in one transaction (the group committer's write function).

    Set-based: per group and account, the account's lock (and the log ids), one query each for
    the ids not remembered yet, the recipients' state and their recent clicks, then the hit
    path's own writer (``store.hit_writer``: a statement per table); nothing per hit reaches
    the database. A group that writer cannot take is written again through ``write_events``.
    """

    def __init__(self, engine: Engine, rules: Rules, ip_storage: IpStorage, *, general: bool = False):
        self.engine = engine
        self.general = general  # every group through the general writer (the reference the tests compare with)
        self._conn: Connection | None = None
        self._checkpointer: wal.Checkpointer | None = None
        self.rules = rules
        self.ip_storage = ip_storage
        self.activities: _Remembered[tuple[int, int], str] = _Remembered()
        self.contacts: _Remembered[tuple[int, int], str] = _Remembered()
        self._scanner: dict[str, bool] = {}
        self._recent: dict[int, _RecentClicks] = {}  # by account
        self._policy: dict[int, tuple[float, tuple[MachineCounting, MachineCounting]]] = {}

    def _counting(self, conn: rawsql.Conn, account: int) -> tuple[MachineCounting, MachineCounting]:
        now = time.monotonic()
        hit = self._policy.get(account)
        if hit is None or now - hit[0] > 5.0:
            hit = (now, store.counting(conn, account))
            self._policy[account] = hit
        return hit[1]

    def forget_policy(self, account: int) -> None:
        self._policy.pop(account, None)

    def _in_scanner_network(self, ip: str | None) -> bool:
        if not ip:
            return False
        found = self._scanner.get(ip)
        if found is None:
            if len(self._scanner) > 100_000:
                self._scanner.clear()
            found = self._scanner[ip] = in_networks(ip, self.rules.scanner_networks)
        return found

    def __call__(self, group: list[PendingHit], has_turn: bool = False) -> None:
        """Judge and write ``group``. ``has_turn``: the caller holds the turn to write (``store.db.writing``)."""
        hits = [self._queued(h, None) for h in group]  # their ids drawn when judged: again if refused
        self.transaction(lambda conn: self._record_all(conn, hits), has_turn)

    def journaled(self, h: PendingHit) -> QueuedHit:
        """A hit as the journal keeps it (``store.hit_journal``): its IP already cut as the log
        keeps it (the full IP is never at rest), whether that IP was in a scanner network, and
        its log id."""
        return self._queued(h, _random_ids(1)[0])

    def _queued(self, h: PendingHit, idem: int | None) -> QueuedHit:
        r = h.ref
        return QueuedHit(r.account_id, r.activity_num, r.contact_num, r.kind is Kind.CLICK, r.url_id, h.at,
                         h.user_agent[:MAX_UA], stored_ip(h.ip, self.ip_storage), self._in_scanner_network(h.ip),
                         h.method == "HEAD", idem)

    def write(self, conn: rawsql.Conn, hits: list[QueuedHit]) -> None:
        """Judge and write journaled hits in the caller's transaction (``transaction``'s work)."""
        self._record_all(conn, hits)

    def _record_all(self, conn: rawsql.Conn, group: list[QueuedHit]) -> None:
        by_account: dict[int, list[QueuedHit]] = defaultdict(list)
        for h in group:
            by_account[h.account_id].append(h)
        for account, items in by_account.items():
            self._record(conn, account, items)

    def transaction(self, work: Callable[[rawsql.Conn], R], has_turn: bool, held: Connection | None = None) -> R:
        """``work`` in one write transaction: on the driver's connection (a ``Tx``), or, where the
        hit path's own writer refused the group, again through the general writer."""
        conn = held if held is not None else self._connection()
        try:
            if not self.general:
                try:
                    with driver_writing(self.engine, conn, has_turn=has_turn) as tx:
                        out = work(tx)
                    self._committed()
                    return out
                except (IntegrityError, self.engine.dialect.loaded_dbapi.IntegrityError):
                    # rolled back: a month without its partition, an id already logged (see hit_writer)
                    self._recent.clear()
            with writing(self.engine, held=conn, has_turn=has_turn) as c:
                out = work(c)
            self._committed()
            return out
        except BaseException:
            self._recent.clear()  # what judging the group added to it was rolled back
            if held is None:
                self._drop_connection()  # whatever broke, the next group starts on a fresh connection
            raise

    def _connection(self) -> Connection:
        """The recorder's own connection, kept between groups (called from one thread at a time:
        the group committer's). On a SQLite file its commits leave the WAL's checkpoints to a
        thread (``store.wal``): a checkpoint's fsyncs are not waited for by a group's requests."""
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
            if wal.on_file(self.engine):
                wal.defer_checkpoints(self._conn.connection.dbapi_connection)
                if self._checkpointer is None:
                    self._checkpointer = wal.Checkpointer(self.engine)
        return self._conn

    def _committed(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.poke()

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        """Its connection closed and its checkpoint thread stopped."""
        self._drop_connection()
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None

    def _record(self, conn: rawsql.Conn, account: int, items: list[QueuedHit]) -> None:
        """One account's hits of the group, judged and written: by the hit path's own writer in
        a transaction on the driver's connection (a ``Tx``), or as Events through the general
        writer in a SQLAlchemy one."""
        judged = self.judge(conn, account, items)
        if judged.hits:
            if isinstance(conn, rawsql.Tx):
                write_hits(conn, account, judged.first_id, judged.hits, judged.prior, judged.activity_ids,
                           judged.contact_ids)
            else:
                write_events(conn, account, [_event(h, judged) for h in judged.hits])
        if judged.burst_starts:
            self._judge_again(conn, account, judged.burst_starts)

    def _judge_again(self, conn: rawsql.Conn, account: int, clicks: list[Click]) -> None:
        """Logged human clicks that turned out to open a burst: machine, counted as the policy says."""
        _, click_policy = self._counting(conn, account)
        machine, why = Verdict.MACHINE, VerdictWhy.CLICK_BURST
        store.judge_again(conn, account, clicks, machine.value, why.value,
                          counts_for_vendors(machine, why, click_policy),
                          {c.activity_num: self.activities.known[(account, c.activity_num)] for c in clicks},
                          {c.contact_num: self.contacts.known[(account, c.contact_num)] for c in clicks})

    def _ids(self, conn: rawsql.Conn, account: int, items: list[QueuedHit]
             ) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], str]]:
        def look(table: Callable[..., dict[int, str]]) -> Callable[[list[tuple[int, int]]], dict[tuple[int, int], str]]:
            return lambda keys: {(account, n): u for n, u in table(conn, account, [n for _, n in keys]).items()}
        return (self.activities.many([(account, h.activity_num) for h in items], look(store.activity_ids)),
                self.contacts.many([(account, h.contact_num) for h in items], look(store.contact_ids)))

    def judge(self, conn: rawsql.Conn, account: int, items: list[QueuedHit]) -> Judged:
        """The group's hits of one account, judged, with what writing them needs; and the logged
        clicks they show opened a burst. Takes the account's write lock first: the recipients'
        state and recent clicks read here are then the ones the write adds to (and a burst whose
        clicks land in two processes' groups is seen whole by whichever writes second)."""
        activity_ids, contact_ids = self._ids(conn, account, items)
        # Validly signed, but for an activity or contact that is not there: nothing to record.
        known = [h for h in items if (account, h.activity_num) in activity_ids
                 and (account, h.contact_num) in contact_ids]
        judged = Judged()
        if not known:
            return judged
        judged.first_id = allocate(conn, account, "seq_event", len(known))
        judged.activity_ids = {n: activity_ids[(account, n)] for n in {h.activity_num for h in known}}
        judged.contact_ids = {n: contact_ids[(account, n)] for n in {h.contact_num for h in known}}
        prior = judged.prior = store.recipient_states(conn, account, {(h.activity_num, h.contact_num)
                                                                      for h in known})
        open_policy, click_policy = self._counting(conn, account)
        burst_ms = int(self.rules.burst_seconds * 1000)
        clicks = [h for h in known if h.click]
        recent = self._recent.get(account)
        if recent is None or recent.next_id != judged.first_id:  # another writer logged events since
            recent = self._recent[account] = _RecentClicks()
        recent.next_id = judged.first_id + len(known)
        window_from = min(h.at for h in clicks) - burst_ms if clicks else 0
        # The recipients whose clicks in the window are of two links or more, with their logged
        # clicks and the group's so far: only they can be in a burst. The rest (a reader who
        # clicks one link, once or again and again) need nothing more.
        mixed: dict[tuple[int, int], tuple[list[Click], list[HitRow]]] = {}
        if clicks:
            urls: dict[tuple[int, int], set[str | None]] = defaultdict(set)
            for h in clicks:
                urls[(h.activity_num, h.contact_num)].add(h.url_id)
            logged = recent.since(conn, account, urls, window_from)
            for pair, mine in urls.items():
                if len(mine) > 1:
                    earlier = [c for c in logged[pair] if c.at >= window_from]
                else:
                    earlier = [c for c in logged[pair] if c.at >= window_from and c.url_id not in mine]
                    if not earlier:
                        continue
                mixed[pair] = (earlier, [])
        rules = self.rules
        human, machine, burst = Verdict.HUMAN.value, Verdict.MACHINE.value, VerdictWhy.CLICK_BURST.value
        burst_counted = counts_for_vendors(Verdict.MACHINE, VerdictWhy.CLICK_BURST, click_policy)
        drawn = iter(_random_ids(sum(h.idem is None for h in known)))
        for h in sorted(known, key=_at):
            idem = h.idem if h.idem is not None else next(drawn)
            is_click = h.click
            pair = (h.activity_num, h.contact_num)
            state = prior.get(pair)
            sent_at = state.sent_at if state is not None else None
            since = (h.at - sent_at) / 1000 if sent_at is not None else None
            window = mixed.get(pair) if is_click else None
            other_click = None
            if window is not None:
                url, at = h.url_id, h.at
                before = [c for c in window[0] if c.url_id != url and c.at <= at]
                now = [c for c in window[1] if c.url_id != url]  # the group's, in time order: none later
                if before or now:
                    other_click = min((at - c.at) / 1000 for c in (*before, *now))
            ua = h.user_agent
            verdict, why = judge(Hit(is_click, ua, h.ip, "HEAD" if h.head else "GET", since, h.url_id, other_click,
                                     h.scanner), rules)
            policy = click_policy if is_click else open_policy
            row = HitRow(h.activity_num, h.contact_num, is_click, h.at, idem, read_agent(ua).device,
                         h.url_id if is_click else None, ua or None, h.ip,
                         int(since) if since is not None else None, verdict.value, why.value,
                         counts_for_vendors(verdict, why, policy))
            judged.hits.append(row)
            if window is None:
                continue
            # The first click of a burst looked like a person's when it came: judged again with the burst.
            for c in before:
                if c.verdict == human and h.at - c.at <= burst_ms:
                    c.verdict = machine  # as judge_again leaves it
                    judged.burst_starts.append(c)
            for r in now:
                if r.verdict == human and h.at - r.at <= burst_ms:
                    r.verdict, r.why, r.counted = machine, burst, burst_counted  # not written yet
            window[1].append(row)
        if clicks:
            recent.keep([row for row in judged.hits if row.click], window_from)
        return judged


class RollUp:
    """The hits' write path on a SQLite file: each hit journaled and answered at once
    (``store.hit_journal`` says why), written into the log in big groups by one process.

    ``record`` appends a hit to this process's journal. Every process runs a roller thread that
    waits for the roller's lock (``hit_journal.roller_lock``); the one holding it looks at every
    process's journal every ``EVERY`` seconds while hits come (less often, up to ``IDLE``,
    while none do) and writes what is new, ``MOST`` hits a transaction at most. One writer means
    big groups, a page cache no other writer empties, and no turns lost to another. Its thread
    leaves the event loop to the requests: SQLite's work is done without the GIL. When the
    roller dies, another process's thread takes the lock within ``LOOK_FOR_LOCK`` seconds.
    Reports call ``catch_up`` first, so that none misses a hit that was answered, in this
    process or another; a process applies everything left when it stops.

    A roller that fails keeps trying, once a second, and says so (``hit_journal.mark_failing``,
    the log once a minute); one whose oldest waiting hit was answered over ``max_behind``
    seconds ago warns in the log, once a minute (``/healthz`` says "behind" meanwhile).
    """

    EVERY = 0.005  # seconds between looks while hits come: most of a roll-up's hits come while it writes
    IDLE = 0.1  # seconds between looks once none have come for a while
    MOST = 2000  # hits a transaction at most: a roller that fell behind catches up in steps
    LOOK_FOR_LOCK = 0.25  # seconds between tries for the roller's lock
    # The roller's priority (a thread's own on Linux): when hits come faster than every core can
    # both answer and write them, answering comes first and the writing catches up after (the
    # journal holds them). At 0 the roller took its core's turns from the workers: p99 over 10 ms.
    NICE = 10
    WATCH = 5.0  # seconds between looks at how long the oldest waiting hit has waited, while hits come
    SAY_EVERY = 60.0  # seconds between two warnings of the same trouble in the log

    def __init__(self, recorder: HitRecorder, db_path: str, journal: bool = True, max_behind: float = 60.0):
        self.recorder = recorder  # the roller thread's
        self.db_path = db_path
        self.max_behind = max_behind
        self._said: dict[str, float] = {}  # trouble -> when the log last heard of it (monotonic)
        # None: a process that answers no hits and only rolls up (``serve``'s own, beside its workers)
        self.journal = hit_journal.Journal(db_path) if journal else None
        self._reader = HitRecorder(recorder.engine, recorder.rules, recorder.ip_storage)  # catch_up's
        self._catching = threading.Lock()  # catch_up runs on the loop and in the threadpool: one at a time
        # Bytes of each file known to be in the log: never more than it has (less, at worst, when
        # the roller and a report update it at once: one more look at the log, nothing lost).
        self._applied: dict[str, int] = {}
        self._ahead: dict[str, hit_journal.Tail] = {}  # hits the roller read and did not take yet
        self.rolling = False  # this process holds the roller's lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._roll, name="mailtally-hit-roller", daemon=True)
        self._thread.start()

    def record(self, hit: PendingHit) -> None:
        """Journal ``hit``: durable when this returns."""
        assert self.journal is not None, "a roller without a journal answers no hits"
        self.journal.append([self.recorder.journaled(hit)])

    def _roll(self) -> None:
        if sys.platform == "linux":  # where a thread has its own priority: this one's alone
            os.nice(self.NICE)
        fd = os.open(hit_journal.roller_lock(self.db_path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not self._stop.is_set():
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    self._stop.wait(self.LOOK_FOR_LOCK)  # another process rolls up
                    continue
                self.rolling = True
                hit_journal.sweep(self.db_path)
                wait = self.EVERY
                failing = True  # unknown: a marker a roller before this one left goes at the first roll-up
                watched = time.monotonic()
                while not self._stop.wait(wait):
                    try:
                        wrote = self.apply(self.recorder, most=self.MOST)
                    except Exception as e:
                        self._failed(e)
                        failing, wait = True, 1.0
                        continue
                    if failing:
                        hit_journal.mark_working(self.db_path)
                        failing = False
                    wait = self.EVERY if wrote else min(wait * 2, self.IDLE)
                    if wrote and time.monotonic() - watched >= self.WATCH:
                        watched = time.monotonic()
                        self._watch()
        finally:
            self.rolling = False
            os.close(fd)  # lets go of the lock

    def _say(self, trouble: str) -> bool:
        """Whether the log should hear of ``trouble`` now (once every ``SAY_EVERY`` seconds)."""
        now = time.monotonic()
        if now - self._said.get(trouble, -self.SAY_EVERY) < self.SAY_EVERY:
            return False
        self._said[trouble] = now
        return True

    def _failed(self, e: Exception) -> None:
        try:
            hit_journal.mark_failing(self.db_path, f"{type(e).__name__}: {e}")
        except OSError:
            log.exception("could not say the tracking roll-up is failing")
        if self._say("failed"):
            log.exception("rolling up tracking hits failed; they stay journaled, and it is tried again "
                          "every second (said once a minute)")

    def _watch(self) -> None:
        """Warn when the oldest waiting hit was answered more than ``max_behind`` seconds ago."""
        with self.recorder.engine.connect() as c:
            waits = hit_journal.backlog(c, self.db_path)
        waited = waits.waited(now_ms())
        if waited is not None and waited > self.max_behind and self._say("behind"):
            log.warning("tracking hits reach the log %.0f s after they were answered (%d bytes wait); reports "
                        "wait for them: the machine answers hits faster than it can write them", waited,
                        waits.waiting_bytes)

    def pending(self) -> bool:
        """Whether a journal may hold hits not in the log (from what this process knows)."""
        for path in hit_journal.files(self.db_path):
            try:
                if path.stat().st_size != self._applied.get(path.name, 0):
                    return True
            except FileNotFoundError:
                continue
        return False

    def apply(self, recorder: HitRecorder, most: int | None = None, held: Connection | None = None,
              has_turn: bool = False) -> int:
        """Write the hits every journal holds past what the log has (``most`` at most) in one
        transaction, moving each file's applied offset on in it; delete the files done with.
        Returns how many hits were written."""
        if not self.pending():
            return 0
        paths = hit_journal.files(self.db_path)

        def work(conn: rawsql.Conn) -> tuple[list[hit_journal.Tail], list[hit_journal.Tail]]:
            before = hit_journal.applied(conn)
            read = [self._read(path, before.get(path.name, 0), most) for path in paths]
            tails = hit_journal.oldest(read, most) if most is not None else read
            recorder.write(conn, [h for t in tails for h in t.hits])
            named = {p.name for p in paths}
            hit_journal.mark_applied(conn, before, {t.path.name: t.end for t in tails},
                                     [name for name in before if name not in named])
            self._applied.update(before)
            return tails, read

        tails, read = recorder.transaction(work, has_turn, held)
        if most is not None:  # what was read and not taken, for the next roll-up
            self._ahead = {r.path.name: r.after(len(t.hits)) for t, r in zip(tails, read, strict=True)
                           if len(r.hits) > len(t.hits)}
        for t in tails:
            self._applied[t.path.name] = max(self._applied.get(t.path.name, 0), t.end)
            self._delete_if_done(t)
        return sum(len(t.hits) for t in tails)

    def _read(self, path: Path, start: int, most: int | None) -> hit_journal.Tail:
        """``hit_journal.read``, starting from what the last roll-up read and left (a roller
        behind reads more than it takes: ``hit_journal.oldest``)."""
        ahead = self._ahead.get(path.name)
        if ahead is None or ahead.start != start or most is None:
            return hit_journal.read(path, start, most)
        more = hit_journal.read(path, ahead.end, most - len(ahead.hits)) if len(ahead.hits) < most else None
        if more is None:
            return ahead
        return hit_journal.Tail(path, start, more.end, ahead.hits + more.hits, ahead.ends + more.ends)

    def _delete_if_done(self, tail: hit_journal.Tail) -> None:
        """A file that will not grow, all of whose hits are in the log, is deleted (its row
        goes in the next roll-up). Bytes after its last line are a line cut short: its writer
        was killed mid-write and never answered that hit."""
        if self.journal is not None and tail.path == self.journal.writing:
            return  # this process writes to it
        with hit_journal.unheld(tail.path) as done:
            if done and not hit_journal.read(tail.path, tail.end, 1).hits:
                tail.path.unlink(missing_ok=True)
                self._applied.pop(tail.path.name, None)

    def catch_up(self) -> None:
        """Every hit answered so far, by this process or another, in the log (a report calls
        this before it reads). Waits for SQLite's own lock, a second at most, not for a turn to
        write (up to ``MAILTALLY_WRITE_WAIT_SECONDS``): reports are read on the loop too."""
        if self.pending():
            self._apply_all(has_turn=True)

    def _apply_all(self, has_turn: bool) -> None:
        """Everything the journals hold past the log, on a connection of its own (any thread)."""
        with self._catching, self.recorder.engine.connect() as held:
            self.apply(self._reader, held=held, has_turn=has_turn)

    def forget_policy(self, account: int) -> None:
        self.recorder.forget_policy(account)
        self._reader.forget_policy(account)

    def close(self) -> None:
        """Stop rolling up; this process's file let go of, and everything left applied."""
        self._stop.set()
        self._thread.join(30)
        if self.journal is not None:
            self.journal.close()
        try:
            self._apply_all(has_turn=False)
            if self.journal is not None:  # its file is in the log now, if it had hits: gone with them
                done = self._applied.get(self.journal.path.name, 0)
                self._delete_if_done(hit_journal.Tail(self.journal.path, done, done, [], []))
        finally:
            self.recorder.close()
            self._reader.close()


def _at(h: QueuedHit) -> int:
    return h.at


def _random_ids(n: int) -> list[int]:
    """``n`` random 63-bit ids (a hit's ``idem``). They only have to differ from the others of
    their millisecond, not to be secret: ``random``'s own generator, seeded from the system's
    randomness and seeded again in a forked child (two workers never draw the same), takes a
    tenth of a microsecond, where reading the system's randomness cost a system call a hit."""
    return [random.getrandbits(63) for _ in range(n)]


def _event(h: HitRow, judged: Judged) -> Event:
    """A judged hit as an Event, for the general writer."""
    return Event(EventType.CLICK if h.click else EventType.OPEN, judged.activity_ids[h.activity_num], h.at,
                 contact_id=judged.contact_ids[h.contact_num], device_type=DeviceType(h.device), url_id=h.url_id,
                 user_agent=h.user_agent, ip=h.ip, since_send_s=h.since_send_s, verdict=Verdict(h.verdict),
                 verdict_why=VerdictWhy(h.why), counted=h.counted, hit_id=h.idem)


class _RecentClicks:
    """One account's recent clicks as the burst rule reads them, kept by the recorder that
    wrote them instead of read back from the log each group (a query a group, a seek a
    recipient: a fifth of a click's write). Each recipient's are complete from a time on;
    they hold only while every event logged for the account since was this recorder's, which
    the account's log ids tell (``next_id``: every writer of the log takes ids in turn). A
    group's are kept when it is judged; a transaction that fails forgets them all."""

    LIMIT = 100_000  # recipients remembered; past it, forgotten and read again as needed
    KEEP = 16  # a recipient's clicks kept before those older than the window are let go

    def __init__(self) -> None:
        self.next_id = 0
        self.pairs: dict[tuple[int, int], tuple[int, list[Click]]] = {}  # -> (complete from, clicks)

    def since(self, conn: rawsql.Conn, account: int, pairs: Iterable[tuple[int, int]], since: int
              ) -> dict[tuple[int, int], list[Click]]:
        """The logged clicks of each recipient, from ``since`` (ms) on at least (some older,
        perhaps): remembered, else read and remembered. The lists are the remembered ones."""
        known = self.pairs
        out: dict[tuple[int, int], list[Click]] = {}
        unknown = []
        for pair in pairs:
            have = known.get(pair)
            if have is None or have[0] > since:
                unknown.append(pair)
            else:
                out[pair] = have[1]
        if unknown:
            read = store.recent_clicks(conn, account, unknown, since)
            if len(known) + len(unknown) > self.LIMIT:
                known.clear()
            for pair in unknown:
                found: list[Click] = [*read.get(pair, ())]
                known[pair] = (since, found)
                out[pair] = found
        return out

    def keep(self, written: list[HitRow], since: int) -> None:
        """The clicks a judged group writes, added to their recipients' (read by ``since``,
        for a group that starts at ``since``: the older ones are let go now and then)."""
        known = self.pairs
        for row in written:
            pair = (row.activity_num, row.contact_num)
            have = known.get(pair)
            if have is None:
                continue  # forgotten past LIMIT: read again when next needed
            have[1].append(row)
            if len(have[1]) > self.KEEP:
                known[pair] = (since, [c for c in have[1] if c.at >= since])


@dataclass(slots=True)
class Judged:
    hits: list[HitRow] = field(default_factory=list)
    burst_starts: list[Click] = field(default_factory=list)  # logged human clicks a burst began
    first_id: int = 0  # the log ids allocated for ``hits``
    prior: dict[tuple[int, int], store.Prior] = field(default_factory=dict)  # the recipients' state before
    activity_ids: dict[int, str] = field(default_factory=dict)  # number -> UUID, of those in ``hits``
    contact_ids: dict[int, str] = field(default_factory=dict)


def optout_event(conn: Connection, account: int, activity_num: int, contact_num: int, source: OptoutSource,
                 reason: str | None, at: int) -> Event | None:
    """The opt-out of one recipient of one activity, keyed so that it is recorded once whichever
    way it came (one-click, the page, the mailto: address); None when the ids name nothing here."""
    ids = store.ids_for(conn, account, activity_num, contact_num)
    if ids is None:
        return None
    return Event(EventType.OPTOUT, ids.activity_id, at, contact_id=ids.contact_id, optout_source=source.value,
                 optout_reason=(reason or None) and reason[:1000],
                 idempotency_key=f"optout:{activity_num}:{contact_num}")


def record_optout(engine: Engine, ref: HitRef, source: OptoutSource, reason: str | None, at: int) -> bool:
    """The opt-out, once per recipient and activity; False when the token names nothing here."""
    with writing(engine) as conn:
        event = optout_event(conn, ref.account_id, ref.activity_num, ref.contact_num, source, reason, at)
        if event is None:
            return False
        write_events(conn, ref.account_id, [event])
    return True


def record_forward(engine: Engine, ref: HitRef, friend: str, at: int) -> bool:
    """A forward event and the friend's address, once per friend; False when the token names nothing."""
    with writing(engine) as conn:
        ids = store.ids_for(conn, ref.account_id, ref.activity_num, ref.contact_num)
        if ids is None:
            return False
        if store.keep_forward(conn, ref.account_id, ref.activity_num, ref.contact_num, friend, at):
            write_events(conn, ref.account_id, [Event(
                EventType.FORWARD, ids.activity_id, at, contact_id=ids.contact_id,
                idempotency_key=f"forward:{ref.activity_num}:{ref.contact_num}:"
                                + hashlib.sha256(friend.lower().encode()).hexdigest()[:24],
            )])
    return True
