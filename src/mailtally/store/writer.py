"""The event writer: append to the log and roll up, in one transaction.

Per batch it reserves event ids (which also takes the account's write lock), resolves
activities and contacts to their numeric ids, appends the events the log does not hold yet
(the log's primary key ends in the idempotency hash), then replays them in time order over
the touched recipients' state rows to get exact counter deltas.

(A worker thread inserting the log while the replay ran was tried and dropped: the driver
lets go of the GIL for each row, but takes it back only at the interpreter's switch interval,
so the two threads ran one after the other.)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import Connection, case, insert, select, update

from ..events import Event
from ..timefmt import MAX_MS, MIN_MS, RANGE_TEXT
from ..vocab import BounceCode, DeviceType, EventType, Reason, Verdict, VerdictWhy
from . import catalog, rawsql
from .accounts import allocate
from .db import now_ms
from .schema import (
    COUNTER_COLUMNS,
    activities,
    activity_counters,
    campaigns,
    link_counters,
)

STATE_FIELDS = (
    "sent_at", "first_open_at", "last_open_at", "last_open_device", "opens", "clicks", "forwards",
    "optout_at", "abuse_at", "bounced_at", "bounce_code",
)


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


@dataclass(slots=True)
class WriteResult:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    contacts_created: int = 0


def _empty_state() -> dict[str, Any]:
    state: dict[str, Any] = dict.fromkeys(STATE_FIELDS)  # key order is the column order
    state.update(opens=0, clicks=0, forwards=0)
    return state


_DEFAULTS = _empty_state()


def _not_opened(s: dict[str, Any]) -> int:
    return int(s["sent_at"] is not None and s["first_open_at"] is None and s["bounced_at"] is None)


# Sends, opens, clicks and forwards are most of the log and set few columns: binding the
# rest as NULL costs more than SQLite's work on the row, so they take the short statement.
KEY_COLUMNS = ("account_id", "activity_num", "type", "occurred_at", "idem", "id", "contact_num")
SHORT_COLUMNS = (*KEY_COLUMNS, "device_type", "url_id")
TRACKED_COLUMNS = (*SHORT_COLUMNS, "user_agent", "ip", "since_send_s", "verdict", "verdict_why")
FULL_COLUMNS = (
    *SHORT_COLUMNS, "reason", "bounce_code", "hard", "dsn_status", "reply_code", "diagnostic", "remote_mta",
    "optout_source", "optout_reason",
)


@dataclass(slots=True)
class _Fresh:
    """A new event with its references resolved."""

    index: int
    event: Event
    idem: int
    activity_num: int
    contact_id: str
    contact_num: int
    occurred_at: int


_BY_TIME = attrgetter("occurred_at")


def write_events(conn: Connection, account: int, batch: Sequence[Event]) -> WriteResult:
    """Record ``batch`` for ``account``; call inside a write transaction (``store.db.writing(engine)``)."""
    result = WriteResult(received=len(batch))
    if not batch:
        return result
    # The one time range (timefmt) holds here too, whatever the source: a time outside it
    # would break every report that shows it.
    out_of_range = [ItemError(i, "occurred_at", f"{ev.occurred_at} is out of range: times must be {RANGE_TEXT}")
                    for i, ev in enumerate(batch) if not MIN_MS <= ev.occurred_at < MAX_MS]
    if out_of_range:
        raise BatchRejected(out_of_range)
    first_id = allocate(conn, account, "seq_event", len(batch))  # also the write lock

    unique: dict[int, tuple[int, Event]] = {}
    for i, ev in enumerate(batch):
        unique.setdefault(ev.idem(), (i, ev))
    caller_keys = [k for k, (_, ev) in unique.items() if ev.idempotency_key]
    if caller_keys:
        for k in _existing_keys(conn, account, caller_keys):
            del unique[k]
    activity_nums, contact_refs, created = _resolve(conn, account, unique.values())
    result.contacts_created = created

    fresh = []
    for k, (i, ev) in unique.items():
        cid, cnum = contact_refs[ev.contact_id] if ev.contact_id else contact_refs["@" + (ev.email or "").lower()]
        fresh.append(_Fresh(i, ev, k, activity_nums[ev.activity_id], cid, cnum, ev.occurred_at))
    fresh.sort(key=_BY_TIME)  # stable: ties keep batch order
    fresh, rollup = _append(conn, account, first_id, fresh)
    result.duplicates = len(batch) - len(fresh)
    result.accepted = len(fresh)
    if not fresh:
        return result
    if caller_keys:
        rawsql.insert_many(conn, "event_keys", ("account_id", "key_hash"),
                           [(account, f.idem) for f in fresh if f.event.idempotency_key])
    _save(conn, account, rollup)
    return result


def _append(conn: Connection, account: int, first_id: int, fresh: list[_Fresh]) -> tuple[list[_Fresh], _RollUp]:
    """Append ``fresh`` to the log, leaving out events it already holds, and replay those added.

    Inserting first and asking later is the fast path: a batch of new events, the usual
    case, costs one pass. When some events already existed, the inserts are undone, the
    existing ones looked up by primary key, and the rest inserted.
    """
    savepoint = conn.begin_nested()
    if _insert_rows(conn, account, first_id, fresh) == len(fresh):
        savepoint.commit()
    else:
        savepoint.rollback()
        known = _existing_events(conn, account, fresh)
        fresh = [f for f in fresh if (f.activity_num, f.event.type.value, f.occurred_at, f.idem) not in known]
        _insert_rows(conn, account, first_id, fresh)
    states = _load_states(conn, account, fresh)
    return fresh, _replay(account, fresh, {k: v.copy() for k, v in states.items()}, states)


# Enum members as plain str: the driver binds an exact str several times faster than a subclass.
_TEXT: dict[Any, str] = {m: m.value for vocab in (EventType, DeviceType, Reason, BounceCode, Verdict, VerdictWhy)
                         for m in vocab}


def _insert_rows(conn: Connection, account: int, first_id: int, fresh: list[_Fresh]) -> int:
    text = _TEXT.get
    short, full, tracked = [], [], []
    for n, f in enumerate(fresh):
        ev = f.event
        kind = ev.type
        if ev.verdict is not None:
            tracked.append((account, f.activity_num, text(kind), ev.occurred_at, f.idem, first_id + n, f.contact_num,
                            text(ev.device_type), ev.url_id, ev.user_agent, ev.ip, ev.since_send_s, text(ev.verdict),
                            text(ev.verdict_why)))
        elif kind is _SEND or kind is _OPEN or kind is _CLICK or kind is _FORWARD:
            short.append((account, f.activity_num, text(kind), ev.occurred_at, f.idem, first_id + n, f.contact_num,
                          text(ev.device_type), ev.url_id))
        else:
            full.append((
                account, f.activity_num, text(kind), ev.occurred_at, f.idem, first_id + n, f.contact_num,
                text(ev.device_type), ev.url_id, text(ev.reason), text(ev.bounce_code), ev.hard, ev.dsn_status,
                ev.reply_code, ev.diagnostic, ev.remote_mta, ev.optout_source, ev.optout_reason,
            ))
    return (rawsql.insert_new(conn, "events", SHORT_COLUMNS, short)
            + rawsql.insert_new(conn, "events", FULL_COLUMNS, full)
            + rawsql.insert_new(conn, "events", TRACKED_COLUMNS, tracked))


def _existing_events(conn: Connection, account: int, fresh: list[_Fresh]) -> set[tuple[int, str, int, int]]:
    keys = [(f.activity_num, f.event.type.value, f.occurred_at, f.idem) for f in fresh]
    sql = ("SELECT e.activity_num, e.type, e.occurred_at, e.idem FROM {values} AS v JOIN events AS e "
           "ON e.account_id = {p} AND e.activity_num = v.column1 AND e.type = v.column2 "
           "AND e.occurred_at = v.column3 AND e.idem = v.column4")
    return {(int(a), str(t), int(o), int(i)) for a, t, o, i in rawsql.select_rows_in(conn, sql, keys, (account,))}


def _existing_keys(conn: Connection, account: int, keys: list[int]) -> list[int]:
    sql = "SELECT key_hash FROM event_keys WHERE account_id = {p} AND key_hash IN ({in})"
    return [int(r[0]) for r in rawsql.select_in(conn, sql, (account,), keys)]


def _resolve(
    conn: Connection, account: int, items: Iterable[tuple[int, Event]]
) -> tuple[dict[str, int], dict[str, tuple[str, int]], int]:
    """Numeric ids of the activities and contacts the events name; unknown ones reject the batch.

    Events naming a contact by address find it, or create it: keyed ``"@" + address``.
    Returns the activity numbers, the contact references and how many contacts were created.
    """
    items = list(items)
    act_nums = _nums(conn, "activities", account, {ev.activity_id for _, ev in items})
    contact_refs = {cid: (cid, num) for cid, num in
                    _nums(conn, "contacts", account, {ev.contact_id for _, ev in items if ev.contact_id}).items()}
    errors = []
    for i, ev in items:
        if ev.activity_id not in act_nums:
            errors.append(ItemError(i, "activity_id", f"no campaign activity {ev.activity_id}"))
        if ev.contact_id and ev.contact_id not in contact_refs:
            errors.append(ItemError(i, "contact_id", f"no contact {ev.contact_id}"))
    if errors:
        raise BatchRejected(sorted(errors, key=lambda e: e.index))
    emails = {ev.email.lower() for _, ev in items if ev.contact_id is None and ev.email}
    created = 0
    if emails:
        before = _count_existing_emails(conn, account, emails)
        for email, ref in catalog.contact_refs_for_emails(conn, account, emails).items():
            contact_refs["@" + email] = ref
        created = len(emails) - before
    return act_nums, contact_refs, created


def _nums(conn: Connection, table: str, account: int, ids: set[str]) -> dict[str, int]:
    sql = f"SELECT id, num_id FROM {table} WHERE account_id = {{p}} AND id IN ({{in}})"
    return {r[0]: int(r[1]) for r in rawsql.select_in(conn, sql, (account,), sorted(ids))}


StateRows = dict[tuple[str, ...], list[tuple[Any, ...]]]  # recipients rows by the columns they set


@dataclass(slots=True)
class _RollUp:
    """What a batch changes besides the log: recipients' state, counters, links."""

    state_rows: tuple[StateRows, StateRows]
    deltas: dict[str, dict[str, int]]
    last_at: dict[str, int]
    last_sent: dict[str, int]
    link_hits: dict[tuple[str, str], list[str]]


def _replay(
    account: int, fresh: list[_Fresh], states: dict[tuple[int, int], dict[str, Any]],
    original: dict[tuple[int, int], dict[str, Any]],
) -> _RollUp:
    """Apply the new events, in time order, to their recipients' ``states``: exact counter deltas."""
    deltas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    last_at: dict[str, int] = {}
    last_sent: dict[str, int] = {}
    link_hits: dict[tuple[str, str], list[str]] = defaultdict(list)
    for f in fresh:
        ev = f.event
        kind = ev.type
        pair = (f.activity_num, f.contact_num)
        st = states.get(pair)
        if st is None:
            st = states[pair] = _DEFAULTS.copy()
        d = deltas[ev.activity_id]
        if ev.verdict is not None:  # a tracked hit: tallied by verdict; the vendor counters only if counted
            d[f"{kind}s_{ev.verdict}"] += 1
            if not ev.counted:
                last_at[ev.activity_id] = max(last_at.get(ev.activity_id, 0), f.occurred_at)
                continue
        if kind is _SEND or kind is _OPEN or kind is _BOUNCE:  # the only kinds that move "not opened"
            was_not_opened = _not_opened(st)
            _apply(ev, st, d)
            d["not_opened"] += _not_opened(st) - was_not_opened
        else:
            _apply(ev, st, d)
            if kind is _CLICK and ev.url_id is not None:
                link_hits[(ev.activity_id, ev.url_id)].append(f.contact_id)
        t = f.occurred_at
        if t > last_at.get(ev.activity_id, 0):
            last_at[ev.activity_id] = t
        if kind is _SEND and t > last_sent.get(ev.activity_id, 0):
            last_sent[ev.activity_id] = t
    return _RollUp(_state_rows(account, states, original), deltas, last_at, last_sent, link_hits)


def _save(conn: Connection, account: int, r: _RollUp) -> None:
    _save_states(conn, *r.state_rows)
    _save_counters(conn, account, r.deltas, r.last_at)
    for activity_id, at in r.last_sent.items():
        _mark_sent(conn, account, activity_id, at)
    _save_links(conn, account, r.link_hits)


# Enum members as module constants: looking them up on the class costs more than the test.
_SEND, _OPEN, _CLICK, _FORWARD = EventType.SEND, EventType.OPEN, EventType.CLICK, EventType.FORWARD
_OPTOUT, _ABUSE, _BOUNCE = EventType.OPTOUT, EventType.ABUSE, EventType.BOUNCE


def _apply(ev: Event, st: dict[str, Any], d: dict[str, int]) -> None:
    t, kind = ev.occurred_at, ev.type
    if kind is _SEND:
        if st["sent_at"] is None:
            st["sent_at"] = t
            d["sends"] += 1
    elif kind is _OPEN:
        device = str(ev.device_type) if ev.device_type else "none"
        d["opens_all"] += 1
        d["opens_" + device] += 1
        if st["first_open_at"] is None:
            st["first_open_at"] = t
            d["opens"] += 1
        if st["last_open_at"] is None or t >= st["last_open_at"]:
            st["last_open_at"] = t
            st["last_open_device"] = device
        st["opens"] += 1
    elif kind is _CLICK:
        device = str(ev.device_type) if ev.device_type else "none"
        d["clicks_all"] += 1
        d["clicks_" + device] += 1
        if st["clicks"] == 0:
            d["clicks"] += 1
        st["clicks"] += 1
    elif kind is _FORWARD:
        d["forwards"] += 1
        st["forwards"] += 1
    elif kind is _OPTOUT:
        if st["optout_at"] is None:
            st["optout_at"] = t
            d["optouts"] += 1
    elif kind is _ABUSE:
        if st["abuse_at"] is None:
            st["abuse_at"] = t
            d["abuse"] += 1
    elif kind is _BOUNCE:
        # A recipient's bounce is its earliest one, whatever order they arrive in.
        code = str(ev.bounce_code) if ev.bounce_code else "X"
        if st["bounced_at"] is None:
            d["bounces"] += 1
        elif t < st["bounced_at"]:
            d["bounces_" + st["bounce_code"].lower()] -= 1
        else:
            return
        st["bounced_at"] = t
        st["bounce_code"] = code
        d["bounces_" + code.lower()] += 1


def _count_existing_emails(conn: Connection, account: int, emails: set[str]) -> int:
    sql = "SELECT id FROM contacts WHERE account_id = {p} AND email IN ({in})"
    return sum(1 for _ in rawsql.select_in(conn, sql, (account,), sorted(emails)))


def _load_states(conn: Connection, account: int, fresh: list[_Fresh]) -> dict[tuple[int, int], dict[str, Any]]:
    by_activity: dict[int, set[int]] = defaultdict(set)
    for f in fresh:
        by_activity[f.activity_num].add(f.contact_num)
    states: dict[tuple[int, int], dict[str, Any]] = {}
    sql = (
        f"SELECT contact_num, {', '.join(STATE_FIELDS)} FROM recipients "
        "WHERE account_id = {p} AND activity_num = {p} AND contact_num IN ({in})"
    )
    for activity_num, nums in by_activity.items():
        for r in rawsql.select_in(conn, sql, (account, activity_num), sorted(nums)):
            states[(activity_num, r[0])] = dict(zip(STATE_FIELDS, r[1:], strict=True))
    return states


def _state_rows(
    account: int, states: dict[tuple[int, int], dict[str, Any]], original: dict[tuple[int, int], dict[str, Any]]
) -> tuple[StateRows, StateRows]:
    """New state rows and changed ones, binding only the columns that differ from the default
    (or from before), grouped by those columns so that each group is one ``executemany``."""
    inserts: StateRows = defaultdict(list)
    updates: StateRows = defaultdict(list)
    for (activity_num, contact_num), st in states.items():
        before = original.get((activity_num, contact_num))
        if before is None:
            cols = tuple([k for k, v in st.items() if v != _DEFAULTS[k]])
            inserts[cols].append((account, activity_num, contact_num, *[st[k] for k in cols]))
        elif before != st:
            cols = tuple([k for k, v in st.items() if v != before[k]])
            updates[cols].append((*[st[k] for k in cols], account, activity_num, contact_num))
    return inserts, updates


def _save_states(conn: Connection, inserts: StateRows, updates: StateRows) -> None:
    keys = ("account_id", "activity_num", "contact_num")
    for cols, rows in inserts.items():
        rawsql.insert_many(conn, "recipients", (*keys, *cols), rows)
    for cols, rows in updates.items():
        rawsql.update_many(conn, "recipients", cols, keys, rows)


def _save_counters(
    conn: Connection, account: int, deltas: dict[str, dict[str, int]], last_at: dict[str, int]
) -> None:
    t = now_ms()
    have = set(
        conn.execute(
            select(activity_counters.c.activity_id).where(
                activity_counters.c.account_id == account,
                activity_counters.c.activity_id.in_(list(deltas)),
            )
        ).scalars()
    )
    missing = [a for a in deltas if a not in have]
    if missing:
        conn.execute(
            insert(activity_counters),
            [{"account_id": account, "activity_id": a, "updated_at": t,
              **dict.fromkeys(COUNTER_COLUMNS, 0)} for a in missing],
        )
    for activity_id, d in deltas.items():
        values: dict[Any, Any] = {activity_counters.c[k]: activity_counters.c[k] + v for k, v in d.items() if v}
        values[activity_counters.c.updated_at] = t
        last = activity_counters.c.last_event_at
        at = last_at[activity_id]
        values[last] = case(((last.is_(None)) | (last < at), at), else_=last)
        conn.execute(
            update(activity_counters)
            .where(activity_counters.c.account_id == account, activity_counters.c.activity_id == activity_id)
            .values(values)
        )


def _mark_sent(conn: Connection, account: int, activity_id: str, at: int) -> None:
    """A send makes the activity Done and moves its campaign's last-sent time forward."""
    conn.execute(
        update(activities)
        .where(activities.c.account_id == account, activities.c.id == activity_id)
        .values(status="Done")
    )
    campaign_id = conn.execute(
        select(activities.c.campaign_id).where(activities.c.account_id == account, activities.c.id == activity_id)
    ).scalar_one()
    conn.execute(
        update(campaigns)
        .where(
            campaigns.c.account_id == account,
            campaigns.c.id == campaign_id,
            (campaigns.c.last_sent_at.is_(None)) | (campaigns.c.last_sent_at < at),
        )
        .values(last_sent_at=at, status="Done")
    )


def _save_links(conn: Connection, account: int, hits: dict[tuple[str, str], list[str]]) -> None:
    for (activity_id, url_id), clickers in hits.items():
        # The key skips clickers already counted: what goes in is the new unique clicks.
        new = rawsql.insert_new(conn, "link_clickers", ("account_id", "activity_id", "url_id", "contact_id"),
                                [(account, activity_id, url_id, c) for c in sorted(set(clickers))])
        key = (link_counters.c.account_id == account) & (link_counters.c.activity_id == activity_id) & (
            link_counters.c.url_id == url_id
        )
        if conn.execute(select(link_counters.c.url_id).where(key)).first() is None:
            conn.execute(insert(link_counters).values(
                account_id=account, activity_id=activity_id, url_id=url_id,
                clicks_all=len(clickers), unique_clicks=new))
        else:
            conn.execute(update(link_counters).where(key).values(
                clicks_all=link_counters.c.clicks_all + len(clickers),
                unique_clicks=link_counters.c.unique_clicks + new))
