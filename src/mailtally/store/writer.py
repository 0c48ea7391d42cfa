"""The event writer: the batch goes in as rows and the database does the rest, in one transaction.

Python builds one tuple per event (with its idempotency hash) and stages them
(``store.staging``: ``executemany`` on SQLite, ``COPY`` on PostgreSQL). Set-based SQL then
appends the events the log does not hold yet (``ON CONFLICT DO NOTHING``), folds each
touched recipient's new events into its ``recipients`` row, and adds to the counters the
difference between the recipients' state after and before. Roll-ups stay exact and in the
events' transaction, so a report never disagrees with the log.

Events are counted by Python as it builds the rows (``_rows``' tally, one dict update an
event): the event counters, link hits and latest times follow from it without a scan of the stage.

Adding a fact (a verdict, a flag): a column in the staged rows (``staging.STAGE_COLUMNS`` and
``_rows``), then, where it counts, one more rule in ``event_counters`` (counts events, from
the tally's key), ``STATE`` (a per-recipient column, folded from its events) or
``STATE_COUNTERS`` (counts recipients by their state). Steps that act on what was recorded (suppression, alerts) run in
the same transaction on ``WriteResult.new_events``, or in SQL on ``mt_stage``, which holds the
accepted events until the transaction ends.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection

from .. import timefmt
from ..events import Event
from ..timefmt import MAX_MS, MIN_MS, RANGE_TEXT
from ..vocab import BounceCode, DeviceType, EventType, Reason, Verdict, VerdictWhy
from . import catalog, hourly, partitions, rawsql, reactions, staging, statistics
from .accounts import allocate
from .db import now_ms
from .hourly import HOUR
from .schema import COUNTER_COLUMNS


@dataclass(frozen=True, slots=True)
class ItemError:
    index: int
    field: str
    message: str


class BatchRejected(Exception):
    """A batch with any invalid item is rejected whole."""

    def __init__(self, errors: list[ItemError]):
        super().__init__(f"{len(errors)} invalid event(s)")
        self.errors = errors


class NewEvent(NamedTuple):
    """An event the log did not hold before this batch, as recorded."""

    batch_index: int  # its place in the batch given to write_events
    event: Event
    id: int  # its id in the log (arrival order)
    contact_id: str  # resolved (or created) for events given by address


@dataclass(slots=True)
class WriteResult:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    contacts_created: int = 0
    # What later steps of the same transaction need; built on demand by new_events.
    _batch: Sequence[Event] = field(default=(), repr=False)
    _indices: Sequence[int] = field(default=(), repr=False)
    _first_id: int = field(default=0, repr=False)
    _by_email: dict[str, str] = field(default_factory=dict, repr=False)
    _sends: dict[int, int] = field(default_factory=dict, repr=False)  # accepted sends by activity number

    def event(self, n: int) -> tuple[Event, str]:
        """The batch's ``n``-th event and its contact's id (resolved for events given by address)."""
        ev = self._batch[n]
        return ev, ev.contact_id or self._by_email[(ev.email or "").lower()]

    @property
    def new_events(self) -> list[NewEvent]:
        """The accepted events in batch order (duplicates left out)."""
        batch, first, by_email = self._batch, self._first_id, self._by_email
        out = []
        for i in self._indices:
            ev = batch[i]
            cid = ev.contact_id or by_email[(ev.email or "").lower()]
            out.append(NewEvent(i, ev, first + i, cid))
        return out


# -- what the roll-ups are, as SQL ----------------------------------------------------------

def _q(member: EventType | BounceCode | DeviceType | Verdict) -> str:
    return f"'{member.value}'"


_SEND, _OPEN, _CLICK, _FORWARD = (_q(t) for t in (EventType.SEND, EventType.OPEN, EventType.CLICK, EventType.FORWARD))
_OPTOUT, _ABUSE, _BOUNCE = (_q(t) for t in (EventType.OPTOUT, EventType.ABUSE, EventType.BOUNCE))
_NONE = _q(DeviceType.NONE)
# A tracked machine hit that the account's policy keeps out of the vendor counters is logged
# and tallied by verdict, and touches nothing else: no recipient state, no vendor counter.
COUNTED = "s.uncounted IS NULL"

# Counters of events: what one event adds to, by its kind, device, verdict and whether it is
# counted. Python applies it to the batch's tally (``_rows`` counts events by these facts, so
# it runs once per distinct combination, not per event): a scan of the stage cost more.
def event_counters(kind: str | None, device: str | None, verdict: str | None, counted: bool) -> list[str]:
    """The event counters (``COUNTER_COLUMNS``) that one event adds 1 to."""
    out = []
    if counted and kind in (_OPEN_T, _CLICK_T):
        out += [f"{kind}s_all", f"{kind}s_{device or _NONE_T}"]
    elif counted and kind == _FORWARD_T:
        out.append("forwards")
    if kind in (_OPEN_T, _CLICK_T) and verdict is not None:  # tracked hits by verdict, counted or not
        out.append(f"{kind}s_{verdict}")
    return out


_OPEN_T, _CLICK_T, _FORWARD_T, _SEND_T = (t.value for t in (EventType.OPEN, EventType.CLICK, EventType.FORWARD,
                                                             EventType.SEND))
_NONE_T = DeviceType.NONE.value
EVENT_COUNTERS: tuple[str, ...] = (
    *(f"{kind}s_{x}" for kind in (_OPEN_T, _CLICK_T) for x in ("all", *(d.value for d in DeviceType))),
    "forwards",
    *(f"{kind}s_{v.value}" for kind in (_OPEN_T, _CLICK_T) for v in Verdict),
)

# Counters of recipients: a condition on one recipients row (alias ``r``). Each counter's
# delta is its count over the touched rows after the batch minus the count before.
STATE_COUNTERS: dict[str, str] = {
    "sends": "r.sent_at IS NOT NULL",
    "opens": "r.first_open_at IS NOT NULL",
    "clicks": "r.clicks > 0",
    "optouts": "r.optout_at IS NOT NULL",
    "abuse": "r.abuse_at IS NOT NULL",
    "bounces": "r.bounced_at IS NOT NULL",
    **{f"bounces_{c.value.lower()}": f"r.bounce_code = {_q(c)}" for c in BounceCode},
    "not_opened": "r.sent_at IS NOT NULL AND r.first_open_at IS NULL AND r.bounced_at IS NULL",
}
assert set(EVENT_COUNTERS) | set(STATE_COUNTERS) == set(COUNTER_COLUMNS), "every counter has one rule"


class StateColumn(NamedTuple):
    name: str
    kind: str  # its SQL type in mt_agg
    batch: str  # over one recipient's staged events (alias ``s``, grouped by recipient)
    merge: str  # the stored value ``{old}.x`` merged with the batch's ``{new}.x``


def _first(name: str, kind: str) -> StateColumn:
    return StateColumn(name, "BIGINT", f"MIN(CASE WHEN s.type = {kind} THEN s.occurred_at END)",
                       f"COALESCE({{old}}.{name}, {{new}}.{name})")


def _count(name: str, kind: str) -> StateColumn:
    # COALESCE: ``{old}`` is NULL for a recipient not stored yet (in the deltas' LEFT JOIN).
    return StateColumn(name, "BIGINT", f"COUNT(CASE WHEN s.type = {kind} THEN 1 END)",
                       f"COALESCE({{old}}.{name}, 0) + {{new}}.{name}")


def _one(column: str, kind: str, order: str) -> str:
    """``column`` of the recipient's first counted staged event of ``kind`` in ``order`` (a read down the key)."""
    return (f"(SELECT {column} FROM mt_stage x WHERE x.activity_num = s.activity_num "
            f"AND x.contact_num = s.contact_num AND x.type = {kind} AND x.uncounted IS NULL ORDER BY {order} LIMIT 1)")


# The latest open wins (ties: the later arrival); the earliest bounce wins (ties: the earlier).
_LATER_OPEN = ("{new}.last_open_at IS NOT NULL AND "
               "({old}.last_open_at IS NULL OR {new}.last_open_at >= {old}.last_open_at)")
_EARLIER_BOUNCE = "{new}.bounced_at IS NOT NULL AND ({old}.bounced_at IS NULL OR {new}.bounced_at < {old}.bounced_at)"

STATE: tuple[StateColumn, ...] = (
    _first("sent_at", _SEND),
    _first("first_open_at", _OPEN),
    StateColumn("last_open_at", "BIGINT", f"MAX(CASE WHEN s.type = {_OPEN} THEN s.occurred_at END)",
                f"CASE WHEN {_LATER_OPEN} THEN {{new}}.last_open_at ELSE {{old}}.last_open_at END"),
    StateColumn("last_open_device", "TEXT",
                f"CASE WHEN COUNT(CASE WHEN s.type = {_OPEN} THEN 1 END) > 0 THEN "
                f"{_one(f'COALESCE(x.device_type, {_NONE})', _OPEN, 'x.occurred_at DESC, x.n DESC')} END",
                f"CASE WHEN {_LATER_OPEN} THEN {{new}}.last_open_device ELSE {{old}}.last_open_device END"),
    _count("opens", _OPEN),
    _count("clicks", _CLICK),
    _count("forwards", _FORWARD),
    _first("optout_at", _OPTOUT),
    _first("abuse_at", _ABUSE),
    StateColumn("bounced_at", "BIGINT", f"MIN(CASE WHEN s.type = {_BOUNCE} THEN s.occurred_at END)",
                f"CASE WHEN {_EARLIER_BOUNCE} THEN {{new}}.bounced_at ELSE {{old}}.bounced_at END"),
    StateColumn("bounce_code", "TEXT",
                f"CASE WHEN COUNT(CASE WHEN s.type = {_BOUNCE} THEN 1 END) > 0 THEN "
                f"{_one(f'COALESCE(x.bounce_code, {_q(BounceCode.OTHER)})', _BOUNCE, 'x.occurred_at, x.n')} END",
                f"CASE WHEN {_EARLIER_BOUNCE} THEN {{new}}.bounce_code ELSE {{old}}.bounce_code END"),
)
# Only these kinds touch a recipient's state (log-only kinds leave no recipients row).
STATE_TYPES = (_SEND, _OPEN, _CLICK, _FORWARD, _OPTOUT, _ABUSE, _BOUNCE)

_NAMES = ", ".join(c.name for c in STATE)
_AGG_SQL = (
    f"INSERT INTO mt_agg (activity_num, contact_num, {_NAMES}) "
    f"SELECT s.activity_num, s.contact_num, {', '.join(c.batch for c in STATE)} FROM mt_stage s "
    f"WHERE s.type IN ({', '.join(STATE_TYPES)}) AND {COUNTED} GROUP BY s.activity_num, s.contact_num"
)
_INSERT_SQL = (
    f"INSERT INTO recipients (account_id, activity_num, contact_num, {_NAMES}) "
    f"SELECT {{p}}, g.activity_num, g.contact_num, {', '.join('g.' + c.name for c in STATE)} FROM mt_agg g WHERE true"
)
# When none of the touched recipients has a row yet (a batch of sends, most often), the plain
# INSERT above: on PostgreSQL the speculative insertion of ON CONFLICT doubles its cost, as for
# the log (``_APPEND_SQL``). The account's write lock keeps other writers from adding rows meanwhile.
_UPSERT_SQL = (
    _INSERT_SQL + " ON CONFLICT (account_id, activity_num, contact_num) DO UPDATE SET "
    + ", ".join(f"{c.name} = " + c.merge.format(old="recipients", new="excluded") for c in STATE)
)
_STATE_NAMES = tuple(STATE_COUNTERS)


def _state_delta(condition: str) -> str:
    """How many touched recipients meet ``condition`` after the batch, less how many did before.

    ``r`` is the stored row (NULL for a new recipient), the batch's fold is ``g``; the state
    after is each ``STATE`` column's merge of the two, as the upsert will store it.
    """
    merged = {c.name: "(" + c.merge.format(old="r", new="g") + ")" for c in STATE}
    after = re.sub(r"\br\.(\w+)", lambda m: merged[m[1]], condition)
    return f"SUM(CASE WHEN {after} THEN 1 ELSE 0 END) - SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# Read before the upsert, each touched recipient looked up by key once; last, how many have a row.
_STATE_DELTAS_SQL = (
    "SELECT g.activity_num, " + ", ".join(_state_delta(STATE_COUNTERS[k]) for k in _STATE_NAMES)
    + ", COUNT(r.contact_num) FROM mt_agg g " + staging.left_join_one(
        "recipients", "r", "r.account_id = {p} AND r.activity_num = g.activity_num AND r.contact_num = g.contact_num")
    + " GROUP BY g.activity_num"
)
_LOG_COLUMNS = ("account_id", "activity_num", "type", "occurred_at", "idem", "id", "contact_num", "device_type",
                "url_id", "reason", "bounce_code", "hard", "dsn_status", "reply_code", "diagnostic", "remote_mta",
                "optout_source", "optout_reason", "user_agent", "ip", "since_send_s", "verdict", "verdict_why",
                "uncounted")
# Plain INSERT, not ON CONFLICT DO NOTHING: on PostgreSQL the speculative insertion that
# DO NOTHING needs doubles the cost of the append (30 against 16 us an event, measured), and
# an event already in the log is the exception. So the append runs in a savepoint; when one
# event is already there, the known ones are dropped from the stage and it runs again (the
# account's write lock keeps anyone else from adding them meanwhile).
_APPEND_SQL = (
    f"INSERT INTO events ({', '.join(_LOG_COLUMNS)}) "
    "SELECT {p}, s.activity_num, s.type, s.occurred_at, s.idem, {p} + s.n, "
    + ", ".join("s." + c for c in _LOG_COLUMNS[6:])
    + " FROM mt_stage s"
)
_DROP_KNOWN_SQL = (
    "DELETE FROM mt_stage WHERE EXISTS (SELECT 1 FROM events e WHERE e.account_id = {p} "
    "AND e.activity_num = mt_stage.activity_num AND e.type = mt_stage.type "
    "AND e.occurred_at = mt_stage.occurred_at AND e.idem = mt_stage.idem)"
)
_CLICKERS_SQL = (
    "INSERT INTO link_clickers (account_id, activity_id, url_id, contact_id) "
    "SELECT DISTINCT {p}, a.id, s.url_id, c.id FROM mt_stage s "
    + staging.left_join_one("activities", "a", "a.account_id = {p} AND a.num_id = s.activity_num") + " "
    + staging.left_join_one("contacts", "c", "c.account_id = {p} AND c.num_id = s.contact_num")
    + f" WHERE s.type = {_CLICK} AND s.url_id IS NOT NULL AND {COUNTED} "
    "ON CONFLICT DO NOTHING RETURNING activity_id, url_id"
)
_COUNTERS_SQL = (
    f"INSERT INTO activity_counters (account_id, activity_id, {', '.join(COUNTER_COLUMNS)}, last_event_at, updated_at) "
    f"VALUES ({', '.join(['{p}'] * (len(COUNTER_COLUMNS) + 4))}) "
    "ON CONFLICT (account_id, activity_id) DO UPDATE SET "
    + ", ".join(f"{k} = activity_counters.{k} + excluded.{k}" for k in COUNTER_COLUMNS)
    + ", last_event_at = CASE WHEN activity_counters.last_event_at IS NULL "
    "OR activity_counters.last_event_at < excluded.last_event_at THEN excluded.last_event_at "
    "ELSE activity_counters.last_event_at END, updated_at = excluded.updated_at"
)
_LINK_COUNTERS_SQL = (
    "INSERT INTO link_counters (account_id, activity_id, url_id, clicks_all, unique_clicks) "
    "VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (account_id, activity_id, url_id) DO UPDATE SET "
    "clicks_all = link_counters.clicks_all + excluded.clicks_all, "
    "unique_clicks = link_counters.unique_clicks + excluded.unique_clicks"
)
_AGG_COLUMNS = tuple((c.name, c.kind) for c in STATE)


# -- the batch ---------------------------------------------------------------------------------

# Enum members as plain str: the drivers bind an exact str several times faster than a subclass.
_TEXT: dict[Any, str] = {m: m.value for vocab in (EventType, DeviceType, Reason, BounceCode, Verdict, VerdictWhy)
                         for m in vocab}
_SHORT_KINDS = frozenset((EventType.SEND, EventType.OPEN, EventType.CLICK, EventType.FORWARD))


def write_events(conn: Connection, account: int, batch: Sequence[Event], *, react: bool = True) -> WriteResult:
    """Record ``batch`` for ``account``; call inside a write transaction (``store.db.writing(engine)``).

    ``react=False`` leaves out ``store.reactions`` (suppressions, alerts, webhooks): for benchmarks only.
    """
    result = WriteResult(received=len(batch), _batch=batch)
    if not batch:
        return result
    # The one time range (timefmt) holds here too, whatever the source: a time outside it
    # would break every report that shows it.
    out_of_range = [ItemError(i, "occurred_at", f"{ev.occurred_at} is out of range: times must be {RANGE_TEXT}")
                    for i, ev in enumerate(batch) if not MIN_MS <= ev.occurred_at < MAX_MS]
    if out_of_range:
        raise BatchRejected(out_of_range)
    if conn.dialect.name == "sqlite":  # one table there: retention's boundary is checked per batch
        boundary = partitions.kept_from(conn)
        if boundary is not None:
            _refuse_retired(conn, boundary, [i for i, ev in enumerate(batch) if ev.occurred_at < boundary])
    first_id = allocate(conn, account, "seq_event", len(batch))  # also the account's write lock
    result._first_id = first_id

    seen: dict[int, int] = {}  # idem -> index of its first occurrence
    for i, ev in enumerate(batch):
        seen.setdefault(ev.idem(), i)
    keyed = [k for k, i in seen.items() if batch[i].idempotency_key]
    if keyed:
        for k in _existing_keys(conn, account, keyed):
            del seen[k]
    wanted = {batch[i].activity_id for i in seen.values()}
    activity_nums = _nums(conn, "activities", account, wanted)
    # A batch naming an unknown activity is rejected: it creates no contacts either.
    create = len(activity_nums) == len(wanted)
    by_email, result.contacts_created = _contacts_by_email(conn, account, batch, seen.values(), create)
    result._by_email = by_email
    statistics.analyse_stale(conn)  # the probes below are planned on them

    errors: list[ItemError] = []
    groups, tally = _rows(batch, seen, activity_nums, by_email, errors)
    staging.prepare(conn, _AGG_COLUMNS)
    staging.load(conn, account, *groups)
    staged = sum(map(len, groups))
    errors += [ItemError(n, "contact_id", f"no contact {batch[n].contact_id}")
               for n in _scalars(conn, "SELECT n FROM mt_stage WHERE contact_num < 0", ()) if batch[n].contact_id]
    if errors:
        raise BatchRejected(sorted(errors, key=lambda e: e.index))

    appended = _append(conn, account, first_id)
    if appended == staged:
        result._indices = sorted(seen.values())
    else:  # some were in the log already: the tally is of those that were not
        result._indices = _scalars(conn, "SELECT n FROM mt_stage ORDER BY n", ())
        accepted = set(result._indices)
        tally = _rows(batch, {k: i for k, i in seen.items() if i in accepted}, activity_nums, by_email, [])[1]
    result.accepted = appended
    result.duplicates = len(batch) - appended
    if not appended:
        return result
    if keyed:
        keys = set(keyed)
        rawsql.insert_many(conn, "event_keys", ("account_id", "key_hash"),
                           [(account, k) for k in (batch[i].idem() for i in result._indices) if k in keys])
    for (num, kind, *_), (n, _at) in tally.items():
        if kind == _SEND_T:
            result._sends[num] = result._sends.get(num, 0) + n
    _roll_up(conn, account, {num: aid for aid, num in activity_nums.items()}, tally)
    if react:
        reactions.react(conn, account, result)
    return result


_NO_PARTITION = "23514"  # PostgreSQL's check_violation: "no partition of relation ... found for row"


def _append(conn: Connection, account: int, first_id: int) -> int:
    """Append the staged events to the log, dropping from the stage those it holds already, and
    making the log's months that have no partition yet (``store.partitions``)."""
    integrity_error = conn.dialect.loaded_dbapi.IntegrityError
    cur = conn.connection.cursor()
    try:
        cur.execute("SAVEPOINT mt_append")
        dropped = months_made = False
        while True:
            try:
                cur.execute(_sql(conn, _APPEND_SQL), (account, first_id))
                break
            except integrity_error as e:
                cur.execute("ROLLBACK TO SAVEPOINT mt_append")
                if getattr(e, "sqlstate", None) == _NO_PARTITION and not months_made:
                    _make_months(conn)
                    months_made = True
                elif not dropped:
                    cur.execute(_sql(conn, _DROP_KNOWN_SQL), (account,))
                    dropped = True
                else:
                    raise
        appended = int(cur.rowcount)
        cur.execute("RELEASE SAVEPOINT mt_append")
        return appended
    finally:
        cur.close()


def _make_months(conn: Connection) -> None:
    """Partitions for the staged events' months; events before what retention keeps are refused."""
    boundary = partitions.kept_from(conn)
    if boundary is not None:
        _refuse_retired(conn, boundary, _scalars(conn, "SELECT n FROM mt_stage WHERE occurred_at < {p} ORDER BY n",
                                                 (boundary,)))
    partitions.ensure_months(conn, partitions.months_in(conn, "mt_stage"))


def _refuse_retired(conn: Connection, boundary: int, indices: Sequence[int]) -> None:
    if indices:
        since = timefmt.iso_ms(boundary)
        raise BatchRejected([ItemError(n, "occurred_at", f"the log keeps events from {since} on (retention): "
                                       "this one's month was removed") for n in indices])


# The batch's events counted by (activity number, kind, device, url_id, verdict, counted, hour):
# each is [how many, the latest occurred_at]. The event counters, link hits, hourly chart and
# last-event times follow.
Tally = dict[tuple[int, str | None, str | None, str | None, str | None, bool, int], list[int]]


def _rows(
    batch: Sequence[Event], seen: dict[int, int], activity_nums: dict[str, int], by_email: dict[str, str],
    errors: list[ItemError],
) -> tuple[tuple[list[tuple[Any, ...]], ...], Tally]:
    """One tuple per new event: ``staging.STAGE_COLUMNS``, with the contact's UUID; and their tally.

    Sends, opens, clicks and forwards are most of the log and set few columns: binding the
    rest as NULL costs more than the database's work on the row, so they stop at url_id;
    other kinds stop at optout_reason; tracked hits carry everything.
    """
    text = _TEXT.get
    nums = activity_nums.get
    short: list[tuple[Any, ...]] = []
    full: list[tuple[Any, ...]] = []
    tracked: list[tuple[Any, ...]] = []
    tally: Tally = {}
    found = tally.get
    for k, n in seen.items():
        ev = batch[n]
        num = nums(ev.activity_id)
        if num is None:
            errors.append(ItemError(n, "activity_id", f"no campaign activity {ev.activity_id}"))
            num = -1
        cid = ev.contact_id or by_email.get((ev.email or "").lower(), "")
        kind, at = text(ev.type), ev.occurred_at
        if ev.verdict is not None:
            device, url, verdict, counted = text(ev.device_type), ev.url_id, text(ev.verdict), ev.counted
            tracked.append((n, kind, num, cid, at, k, device, url, text(ev.reason), text(ev.bounce_code), ev.hard,
                            ev.dsn_status, ev.reply_code, ev.diagnostic, ev.remote_mta, ev.optout_source,
                            ev.optout_reason, ev.user_agent, ev.ip, ev.since_send_s, verdict, text(ev.verdict_why),
                            None if counted else True))
            key = (num, kind, device, url, verdict, counted, at // HOUR)
        elif ev.type in _SHORT_KINDS:
            device, url = text(ev.device_type), ev.url_id
            short.append((n, kind, num, cid, at, k, device, url))
            key = (num, kind, device, url, None, True, at // HOUR)
        else:
            full.append((n, kind, num, cid, at, k, text(ev.device_type), ev.url_id, text(ev.reason),
                         text(ev.bounce_code), ev.hard, ev.dsn_status, ev.reply_code, ev.diagnostic, ev.remote_mta,
                         ev.optout_source, ev.optout_reason))
            key = (num, kind, None, None, None, True, at // HOUR)
        c = found(key)
        if c is None:
            tally[key] = [1, at]
        else:
            c[0] += 1
            if at > c[1]:
                c[1] = at
    return (short, full, tracked), tally


def _roll_up(conn: Connection, account: int, activity_ids: dict[int, str], tally: Tally) -> None:
    """Recipients' state, counters, links, hours and sent marks from the staged (accepted) events
    and their tally."""
    _run(conn, _AGG_SQL, ())
    before = _fetch(conn, _STATE_DELTAS_SQL, (account,))
    state = {r[0]: r[1:-1] for r in before}
    _run(conn, _UPSERT_SQL if any(r[-1] for r in before) else _INSERT_SQL, (account,))
    counts: dict[int, dict[str, int]] = {}
    last_at: dict[int, int] = {}
    last_sent: dict[int, int] = {}
    hits: dict[tuple[str, str], int] = {}
    hours: dict[tuple[int, int], list[int]] = {}
    for (num, kind, device, url, verdict, counted, hour), (n, at) in tally.items():
        mine = counts.setdefault(num, dict.fromkeys(COUNTER_COLUMNS, 0))
        for name in event_counters(kind, device, verdict, counted):
            mine[name] += n
        last_at[num] = max(at, last_at.get(num, at))
        if kind == _SEND_T:
            last_sent[num] = max(at, last_sent.get(num, at))
        if counted and kind in (_OPEN_T, _CLICK_T):  # the hourly chart counts what opens_all and clicks_all do
            hours.setdefault((num, hour * HOUR), [0, 0])[kind == _CLICK_T] += n
            if kind == _CLICK_T and url is not None:
                link = (activity_ids[num], url)
                hits[link] = hits.get(link, 0) + n
    t = now_ms()
    rows = []
    for num, mine in counts.items():
        mine.update(zip(_STATE_NAMES, state.get(num, ()), strict=False))
        rows.append((account, activity_ids[num], *(int(mine[k]) for k in COUNTER_COLUMNS), last_at[num], t))
    _run_many(conn, _COUNTERS_SQL, rows)
    for num, at in last_sent.items():
        _mark_sent(conn, account, activity_ids[num], at)
    if hits:
        _save_links(conn, account, hits)
    hourly.add(conn, account, hours)


def _save_links(conn: Connection, account: int, hits: dict[tuple[str, str], int]) -> None:
    """Each link's clicks (``hits``, by activity id and url_id) and how many of its clickers are new."""
    new: dict[tuple[str, str], int] = dict.fromkeys(hits, 0)
    for activity_id, url_id in _fetch(conn, _CLICKERS_SQL, (account, account, account)):
        new[(activity_id, url_id)] += 1
    _run_many(conn, _LINK_COUNTERS_SQL, [(account, a, u, c, new[(a, u)]) for (a, u), c in hits.items()])


def _mark_sent(conn: Connection, account: int, activity_id: str, at: int) -> None:
    """A send makes the activity Done and moves its campaign's last-sent time forward.

    Spelled out for the driver, as the rest of the batch's statements: built and compiled by
    SQLAlchemy, these three cost a millisecond a batch.
    """
    _run(conn, _MARK_DONE_SQL, (account, activity_id))
    _run(conn, _LAST_SENT_SQL, (at, account, account, activity_id, at))


_MARK_DONE_SQL = "UPDATE activities SET status = 'Done' WHERE account_id = {p} AND id = {p}"
_LAST_SENT_SQL = (
    "UPDATE campaigns SET last_sent_at = {p}, status = 'Done' WHERE account_id = {p} AND id = "
    "(SELECT a.campaign_id FROM activities a WHERE a.account_id = {p} AND a.id = {p}) "
    "AND (last_sent_at IS NULL OR last_sent_at < {p})"
)


# -- lookups -----------------------------------------------------------------------------------

def _existing_keys(conn: Connection, account: int, keys: list[int]) -> list[int]:
    sql = "SELECT key_hash FROM event_keys WHERE account_id = {p} AND key_hash IN ({in})"
    return [int(r[0]) for r in rawsql.select_in(conn, sql, (account,), keys)]


def _nums(conn: Connection, table: str, account: int, ids: set[str]) -> dict[str, int]:
    sql = f"SELECT id, num_id FROM {table} WHERE account_id = {{p}} AND id IN ({{in}})"
    return {r[0]: int(r[1]) for r in rawsql.select_in(conn, sql, (account,), sorted(ids))}


def _contacts_by_email(
    conn: Connection, account: int, batch: Sequence[Event], indices: Iterable[int], create: bool
) -> tuple[dict[str, str], int]:
    """The contact id of each address that events name instead of a contact id, creating the
    contacts that do not exist yet (when ``create``); and how many were created."""
    emails = {(batch[i].email or "").lower() for i in indices if batch[i].contact_id is None}
    if not emails:
        return {}, 0
    if conn.dialect.name == "postgresql":
        # A probe of (account_id, email) per address, whatever the statistics say: a table that grew
        # since its last ANALYZE got a plan filtering every contact of the account by the IN list.
        found = _fetch(conn, "SELECT w.email, c.id FROM unnest(CAST({p} AS text[])) w(email) JOIN LATERAL "
                       "(SELECT id FROM contacts c WHERE c.account_id = {p} AND c.email = w.email) c ON true",
                       (sorted(emails), account))
    else:
        found = list(rawsql.select_in(conn, "SELECT email, id FROM contacts WHERE account_id = {p} AND email IN ({in})",
                                      (account,), sorted(emails)))
    existing = {str(e): str(i) for e, i in found}
    if not create:
        return existing, 0
    # The account's lock (taken first, by ``allocate``) keeps any other writer from creating these meanwhile.
    made = catalog.create_contacts(conn, account, sorted(emails - existing.keys()))
    existing.update((e, ref[0]) for e, ref in made.items())
    return existing, len(made)


# -- the driver, directly ----------------------------------------------------------------------

_EXPANDED: dict[tuple[str, str], str] = {}


def _sql(conn: Connection, sql: str) -> str:
    key = (sql, conn.dialect.name)
    found = _EXPANDED.get(key)
    if found is None:
        found = _EXPANDED[key] = staging.expand(sql, conn.dialect.name)
    return found


def _run(conn: Connection, sql: str, params: Sequence[Any]) -> int:
    cur = conn.connection.cursor()
    try:
        cur.execute(_sql(conn, sql), params)
        return int(cur.rowcount)
    finally:
        cur.close()


def _run_many(conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    if rows:
        cur = conn.connection.cursor()
        try:
            cur.executemany(_sql(conn, sql), rows)
        finally:
            cur.close()


def _fetch(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    cur = conn.connection.cursor()
    try:
        cur.execute(_sql(conn, sql), params)
        return list(cur.fetchall())
    finally:
        cur.close()


def _scalars(conn: Connection, sql: str, params: Sequence[Any]) -> list[int]:
    return [int(r[0]) for r in _fetch(conn, sql, params)]
