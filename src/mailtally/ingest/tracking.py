"""Recipients' own hits (pixel loads, link clicks, opt-outs, forwards) into Events.

Opens and clicks arrive one at a time and are written in groups (``store.group_commit``);
each gets its device type, user agent, IP (kept as the instance's setting says), seconds
since the send and a machine verdict. Whether a machine hit counts for the vendor surfaces
follows the account's policy; every hit stays in the log either way.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from ..events import Event
from ..store import hit_journal, rawsql, wal
from ..store import hits as store
from ..store.accounts import allocate
from ..store.db import driver_writing, writing
from ..store.hit_journal import QueuedHit
from ..store.hit_writer import HitRow, write_hits
from ..store.write_gate import WriteGate
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


@dataclass(frozen=True, slots=True)
class PendingHit:
    """An open or click as the endpoint saw it, before it is judged."""

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
        self._transaction(lambda conn: self._record_all(conn, group), has_turn)

    def journaled(self, h: PendingHit) -> QueuedHit:
        """A hit as the journal keeps it (``store.hit_journal``): its IP already cut as the log
        keeps it (the full IP is never at rest), whether that IP was in a scanner network, and
        its log id."""
        r = h.ref
        return QueuedHit(r.account_id, r.activity_num, r.contact_num, r.kind is Kind.CLICK, r.url_id, h.at,
                         h.user_agent[:MAX_UA], stored_ip(h.ip, self.ip_storage), self._in_scanner_network(h.ip),
                         h.method == "HEAD", _random_ids(1)[0])

    def write_journaled(self, hits: list[QueuedHit], has_turn: bool = False, held: Connection | None = None) -> None:
        """Judge and write journaled hits in one transaction; any already in the log (applied
        before) are left as they are. ``held``: a connection of the caller's (another thread's)."""
        self._transaction(lambda conn: self._record_all(conn, [
            PendingHit(HitRef(Kind.CLICK if q.click else Kind.OPEN, q.account_id, q.activity_num, q.contact_num,
                              q.url_id), q.at, q.user_agent, q.ip, "HEAD" if q.head else "GET", q.scanner, q.idem)
            for q in hits]), has_turn, held)

    def _record_all(self, conn: rawsql.Conn, group: list[PendingHit]) -> None:
        by_account: dict[int, list[PendingHit]] = defaultdict(list)
        for h in group:
            by_account[h.ref.account_id].append(h)
        for account, items in by_account.items():
            self._record(conn, account, items)

    def _transaction(self, work: Callable[[rawsql.Conn], R], has_turn: bool, held: Connection | None = None) -> R:
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
                    pass  # rolled back: a month without its partition, an id already logged (see hit_writer)
            with writing(self.engine, held=conn, has_turn=has_turn) as c:
                out = work(c)
            self._committed()
            return out
        except BaseException:
            if held is None:
                self.close()  # whatever broke, the next group starts on a fresh connection
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

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _record(self, conn: rawsql.Conn, account: int, items: list[PendingHit]) -> None:
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

    def _judge_again(self, conn: rawsql.Conn, account: int, clicks: list[store.LoggedClick]) -> None:
        """Logged human clicks that turned out to open a burst: machine, counted as the policy says."""
        _, click_policy = self._counting(conn, account)
        machine, why = Verdict.MACHINE, VerdictWhy.CLICK_BURST
        store.judge_again(conn, account, clicks, machine.value, why.value,
                          counts_for_vendors(machine, why, click_policy),
                          {c.activity_num: self.activities.known[(account, c.activity_num)] for c in clicks},
                          {c.contact_num: self.contacts.known[(account, c.contact_num)] for c in clicks})

    def _ids(self, conn: rawsql.Conn, account: int, items: list[PendingHit]
             ) -> tuple[dict[tuple[int, int], str], dict[tuple[int, int], str]]:
        def look(table: Callable[..., dict[int, str]]) -> Callable[[list[tuple[int, int]]], dict[tuple[int, int], str]]:
            return lambda keys: {(account, n): u for n, u in table(conn, account, [n for _, n in keys]).items()}
        return (self.activities.many([(account, h.ref.activity_num) for h in items], look(store.activity_ids)),
                self.contacts.many([(account, h.ref.contact_num) for h in items], look(store.contact_ids)))

    def judge(self, conn: rawsql.Conn, account: int, items: list[PendingHit]) -> Judged:
        """The group's hits of one account, judged, with what writing them needs; and the logged
        clicks they show opened a burst. Takes the account's write lock first: the recipients'
        state and recent clicks read here are then the ones the write adds to (and a burst whose
        clicks land in two processes' groups is seen whole by whichever writes second)."""
        activity_ids, contact_ids = self._ids(conn, account, items)
        # Validly signed, but for an activity or contact that is not there: nothing to record.
        known = [h for h in items if (account, h.ref.activity_num) in activity_ids
                 and (account, h.ref.contact_num) in contact_ids]
        judged = Judged()
        if not known:
            return judged
        judged.first_id = allocate(conn, account, "seq_event", len(known))
        judged.activity_ids = {n: activity_ids[(account, n)] for n in {h.ref.activity_num for h in known}}
        judged.contact_ids = {n: contact_ids[(account, n)] for n in {h.ref.contact_num for h in known}}
        prior = judged.prior = store.recipient_states(conn, account, {(h.ref.activity_num, h.ref.contact_num)
                                                                      for h in known})
        open_policy, click_policy = self._counting(conn, account)
        burst_ms = int(self.rules.burst_seconds * 1000)
        clicks = [h for h in known if h.ref.kind is Kind.CLICK]
        seen: dict[tuple[int, int], list[_Click]] = {}
        if clicks:
            logged = store.recent_clicks(conn, account, {(h.ref.activity_num, h.ref.contact_num) for h in clicks},
                                         min(h.at for h in clicks) - burst_ms)
            seen = {pair: [_Click(c.occurred_at, c.url_id, c.verdict == Verdict.HUMAN.value, logged=c) for c in found]
                    for pair, found in logged.items()}
        ip_storage, rules = self.ip_storage, self.rules
        burst_verdict = counts_for_vendors(Verdict.MACHINE, VerdictWhy.CLICK_BURST, click_policy)
        drawn = iter(_random_ids(sum(h.idem is None for h in known)))
        for h in sorted(known, key=lambda h: h.at):
            idem = h.idem if h.idem is not None else next(drawn)
            r = h.ref
            is_click = r.kind is Kind.CLICK
            pair = (r.activity_num, r.contact_num)
            state = prior.get(pair)
            sent_at = state.sent_at if state is not None else None
            since = (h.at - sent_at) / 1000 if sent_at is not None else None
            other_click = None
            others: list[_Click] = []
            if is_click:
                others = [c for c in seen.setdefault(pair, []) if c.url_id != r.url_id and c.at <= h.at]
                other_click = min((h.at - c.at) / 1000 for c in others) if others else None
            ua = h.user_agent[:MAX_UA]
            scanner = self._in_scanner_network(h.ip) if h.scanner is None else h.scanner
            verdict, why = judge(Hit(is_click, ua, h.ip, h.method, since, r.url_id, other_click, scanner), rules)
            policy = click_policy if is_click else open_policy
            row = HitRow(r.activity_num, r.contact_num, is_click, h.at, idem, read_agent(ua).device,
                         r.url_id if is_click else None, ua or None, stored_ip(h.ip, ip_storage),
                         int(since) if since is not None else None, verdict.value, why.value,
                         counts_for_vendors(verdict, why, policy))
            judged.hits.append(row)
            if not is_click:
                continue
            # The first click of a burst looked like a person's when it came: judged again with the burst.
            for c in others:
                if c.human and h.at - c.at <= burst_ms:
                    c.human = False
                    if c.row is not None:  # in this group: not written yet
                        c.row.verdict, c.row.why = Verdict.MACHINE.value, VerdictWhy.CLICK_BURST.value
                        c.row.counted = burst_verdict
                    elif c.logged is not None:
                        judged.burst_starts.append(c.logged)
            seen[pair].append(_Click(h.at, r.url_id or "", verdict is Verdict.HUMAN, row=row))
        return judged


class RollUp:
    """The hits' write path on a SQLite file: each hit journaled and answered, then judged and
    written in groups on the event loop (``store.hit_journal`` says why).

    ``record`` appends a hit to this process's journal and keeps it pending; once ``AT`` are
    pending, or ``AFTER`` seconds after the first, the pending hits (``LIMIT`` at most a
    transaction) are rolled up under a turn to write taken without waiting, since the loop
    must not wait (another process writing: tried again shortly), and each of the journal's
    files is deleted once all its hits are in the log. Reports call ``catch_up`` first, so that
    none misses a hit that was answered, in this process or another; a process applies the
    journals of dead ones when it starts, and its own pending hits when it stops.
    """

    AT = 32  # pending hits that start a roll-up at once (fewer: more transactions; more: longer pauses)
    AFTER = 0.01  # seconds: the longest a pending hit otherwise waits for one
    LIMIT = 40  # hits per roll-up transaction: bounds the loop's pause (~2 ms)
    # A worker that falls behind (the other one held the turn) takes more at a time, cheaper a
    # hit, up to MOST (a pause of ~20 ms): its pending hits must not grow without end.
    MOST = 400
    RETRY = 0.002  # seconds, when another process holds the turn

    def __init__(self, recorder: HitRecorder, turns: WriteGate, db_path: str):
        self.recorder = recorder
        self.turns = turns
        self.db_path = db_path
        self.journal = hit_journal.Journal(db_path)
        self._pending: list[tuple[int, QueuedHit]] = []  # (the journal's file it is in, the hit)
        # Held while the pending hits or the journal change: ``record`` and the roll-up on the
        # loop, ``catch_up`` on any thread (reports are read on the loop and in the threadpool).
        self._lock = threading.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._reader = HitRecorder(recorder.engine, recorder.rules, recorder.ip_storage)  # for catch_up

    def record(self, hit: PendingHit) -> None:
        """Journal ``hit`` (durable when this returns) and roll it up soon (on the loop)."""
        queued = self.recorder.journaled(hit)
        with self._lock:
            self._pending.append((self.journal.append([queued]), queued))
            pending = len(self._pending)
        self._schedule(0.0 if pending >= self.AT else self.AFTER)

    def _schedule(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + seconds
        if self._timer is not None:
            if self._due <= due:
                return
            self._timer.cancel()
        self._due = due
        self._timer = loop.call_later(seconds, self.apply)

    def apply(self) -> None:
        """``LIMIT`` pending hits (more when many are), judged and written (on the loop)."""
        self._timer = None
        if not self._pending:
            return
        if not self._lock.acquire(blocking=False):  # a report is catching up: it takes them
            self._schedule(self.RETRY)
            return
        try:
            turn = self.turns.try_take()
            if turn is None:
                self._schedule(self.RETRY)
                return
            try:
                batch = self._pending[:min(max(self.LIMIT, len(self._pending) // 4), self.MOST)]
                self.recorder.write_journaled([h for _, h in batch], has_turn=True)
            except Exception:
                log.exception("rolling up tracking hits failed; they stay journaled")
                self._schedule(1.0)
                return
            finally:
                turn.release()
            del self._pending[:len(batch)]
            self.journal.applied_before(self._pending[0][0] if self._pending else None)
        finally:
            self._lock.release()
        if self._pending:  # more: once the loop has seen to its requests
            self._schedule(0.0)

    def catch_up(self) -> None:
        """Every hit answered so far, by this process or another, in the log (a report calls
        this before it reads). Waits for SQLite's own lock, a second at most, not for a turn to
        write (up to ``MAILTALLY_WRITE_WAIT_SECONDS``): reports are read on the loop too."""
        others = self.journal.others()
        if not self._pending and not others:
            return
        with self._lock, self.recorder.engine.connect() as held:
            if self._pending:
                self._write_pending(held, has_turn=True)
            for path in others:  # live or dead, what they hold again: those already in the log stay once
                hits = hit_journal.read(path)
                if hits:
                    self._reader.write_journaled(hits, has_turn=True, held=held)

    def recover(self) -> None:
        """Apply and delete the journals of processes that died (at start)."""
        for path in hit_journal.files(self.db_path):
            if path in self.journal.paths():
                continue
            with hit_journal.orphan(path) as dead:
                if not dead:
                    continue
                hits = hit_journal.read(path)
                if hits:
                    with self.recorder.engine.connect() as held:
                        self._reader.write_journaled(hits, held=held)
                path.unlink(missing_ok=True)

    def _write_pending(self, held: Connection, has_turn: bool) -> None:
        """Every pending hit written, on ``held`` (the lock held), and the journal emptied."""
        self._reader.write_journaled([h for _, h in self._pending], has_turn=has_turn, held=held)
        self._pending.clear()
        self.journal.applied_before(None)

    def forget_policy(self, account: int) -> None:
        self.recorder.forget_policy(account)
        self._reader.forget_policy(account)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            if self._pending:
                with self._lock, self.recorder.engine.connect() as held:
                    self._write_pending(held, has_turn=False)
        finally:
            self.journal.close(applied=not self._pending)
            self._reader.close()


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


@dataclass(slots=True)
class _Click:
    """A click of one recipient the burst rule looks back on: logged before, or in this group."""

    at: int
    url_id: str
    human: bool
    logged: store.LoggedClick | None = None
    row: HitRow | None = None


@dataclass(slots=True)
class Judged:
    hits: list[HitRow] = field(default_factory=list)
    burst_starts: list[store.LoggedClick] = field(default_factory=list)  # logged human clicks a burst began
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
