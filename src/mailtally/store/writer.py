"""The event writer: append to the log and roll up, in one transaction.

Per batch it reserves event ids (which also takes the account's write lock), drops
events already recorded (by idempotency key), resolves contacts, then replays the
events over the touched recipients' state rows to get exact counter deltas.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, insert, select, update

from ..events import Event
from ..vocab import EventType
from . import catalog, rawsql
from .accounts import allocate
from .db import now_ms
from .schema import (
    COUNTER_COLUMNS,
    activities,
    activity_counters,
    campaigns,
    link_clickers,
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


def _not_opened(s: dict[str, Any]) -> int:
    return int(s["sent_at"] is not None and s["first_open_at"] is None and s["bounced_at"] is None)


EVENT_COLUMNS = (
    "account_id", "id", "activity_id", "contact_id", "type", "occurred_at", "device_type", "url_id", "reason",
    "bounce_code", "hard", "dsn_status", "reply_code", "diagnostic", "remote_mta", "optout_source",
    "optout_reason", "idem_key",
)


def write_events(conn: Connection, account: int, batch: Sequence[Event]) -> WriteResult:
    """Record ``batch`` for ``account``; call inside a write transaction (``store.db.writing(engine)``)."""
    result = WriteResult(received=len(batch))
    if not batch:
        return result
    first_id = allocate(conn, account, "seq_event", len(batch))  # also the write lock

    keyed: dict[str, tuple[int, Event]] = {}
    for i, ev in enumerate(batch):
        keyed.setdefault(ev.key(), (i, ev))
    known = {
        r[0]
        for r in rawsql.select_in(
            conn, "SELECT idem_key FROM events WHERE account_id = {p} AND idem_key IN ({in})", (account,), list(keyed)
        )
    }
    fresh = [(i, ev, k) for k, (i, ev) in keyed.items() if k not in known]
    result.duplicates = len(batch) - len(fresh)
    if not fresh:
        return result

    _check_references(conn, account, fresh)
    emails = {ev.email.lower() for _, ev, _ in fresh if ev.contact_id is None and ev.email}
    if emails:
        before = _count_existing_emails(conn, account, emails)
        by_email = catalog.contacts_for_emails(conn, account, emails)
        result.contacts_created = len(emails) - before
        for _, ev, _ in fresh:
            if ev.contact_id is None and ev.email:
                ev.contact_id = by_email[ev.email.lower()]

    fresh.sort(key=lambda p: (p[1].occurred_at, p[0]))
    states = _load_states(conn, account, fresh)
    original = {k: dict(v) for k, v in states.items()}
    deltas: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    last_at: dict[str, int] = {}
    last_sent: dict[str, int] = {}
    link_hits: dict[tuple[str, str], list[str]] = defaultdict(list)
    rows = []
    for n, (_, ev, key) in enumerate(fresh):
        assert ev.contact_id is not None
        st = states.get((ev.activity_id, ev.contact_id))
        if st is None:
            st = states[(ev.activity_id, ev.contact_id)] = _empty_state()
        d = deltas[ev.activity_id]
        was_not_opened = _not_opened(st)
        _apply(ev, st, d)
        d["not_opened"] += _not_opened(st) - was_not_opened
        if ev.type is _CLICK and ev.url_id is not None:
            link_hits[(ev.activity_id, ev.url_id)].append(ev.contact_id)
        if ev.occurred_at > last_at.get(ev.activity_id, 0):
            last_at[ev.activity_id] = ev.occurred_at
        if ev.type is _SEND and ev.occurred_at > last_sent.get(ev.activity_id, 0):
            last_sent[ev.activity_id] = ev.occurred_at
        event_id = first_id + n
        rows.append((
            account, event_id, ev.activity_id, ev.contact_id, str(ev.type), ev.occurred_at,
            str(ev.device_type) if ev.device_type else None, ev.url_id,
            str(ev.reason) if ev.reason else None, str(ev.bounce_code) if ev.bounce_code else None, ev.hard,
            ev.dsn_status, ev.reply_code, ev.diagnostic, ev.remote_mta, ev.optout_source, ev.optout_reason, key,
        ))
    rawsql.insert_many(conn, "events", EVENT_COLUMNS, rows)
    _save_states(conn, account, states, original)
    _save_counters(conn, account, deltas, last_at)
    for activity_id, at in last_sent.items():
        _mark_sent(conn, account, activity_id, at)
    _save_links(conn, account, link_hits)
    result.accepted = len(rows)
    return result


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


def _check_references(conn: Connection, account: int, fresh: list[tuple[int, Event, str]]) -> None:
    """Every event must name an activity and a contact of this account."""
    act_ids = _existing(conn, "activities", account, {ev.activity_id for _, ev, _ in fresh})
    contact_ids = _existing(conn, "contacts", account, {ev.contact_id for _, ev, _ in fresh if ev.contact_id})
    errors = []
    for i, ev, _ in fresh:
        if ev.activity_id not in act_ids:
            errors.append(ItemError(i, "activity_id", f"no campaign activity {ev.activity_id}"))
        if ev.contact_id and ev.contact_id not in contact_ids:
            errors.append(ItemError(i, "contact_id", f"no contact {ev.contact_id}"))
    if errors:
        raise BatchRejected(sorted(errors, key=lambda e: e.index))


def _existing(conn: Connection, table: str, account: int, ids: set[Any]) -> set[str]:
    sql = f"SELECT id FROM {table} WHERE account_id = {{p}} AND id IN ({{in}})"
    return {r[0] for r in rawsql.select_in(conn, sql, (account,), sorted(ids))}


def _count_existing_emails(conn: Connection, account: int, emails: set[str]) -> int:
    sql = "SELECT id FROM contacts WHERE account_id = {p} AND email IN ({in})"
    return sum(1 for _ in rawsql.select_in(conn, sql, (account,), sorted(emails)))


def _load_states(
    conn: Connection, account: int, fresh: list[tuple[int, Event, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    by_activity: dict[str, set[str]] = defaultdict(set)
    for _, ev, _ in fresh:
        assert ev.contact_id is not None
        by_activity[ev.activity_id].add(ev.contact_id)
    states: dict[tuple[str, str], dict[str, Any]] = {}
    sql = (
        f"SELECT contact_id, {', '.join(STATE_FIELDS)} FROM recipients "
        "WHERE account_id = {p} AND activity_id = {p} AND contact_id IN ({in})"
    )
    for activity_id, contact_set in by_activity.items():
        for r in rawsql.select_in(conn, sql, (account, activity_id), sorted(contact_set)):
            states[(activity_id, r[0])] = dict(zip(STATE_FIELDS, r[1:], strict=True))
    return states


def _save_states(
    conn: Connection,
    account: int,
    states: dict[tuple[str, str], dict[str, Any]],
    original: dict[tuple[str, str], dict[str, Any]],
) -> None:
    new_rows, changed = [], []
    for (activity_id, contact_id), st in states.items():
        before = original.get((activity_id, contact_id))
        if before is None:
            new_rows.append((account, activity_id, contact_id, *st.values()))
        elif before != st:
            changed.append((*st.values(), account, activity_id, contact_id))
    keys = ("account_id", "activity_id", "contact_id")
    rawsql.insert_many(conn, "recipients", (*keys, *STATE_FIELDS), new_rows)
    rawsql.update_many(conn, "recipients", STATE_FIELDS, keys, changed)


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
        unique = sorted(set(clickers))
        seen = set(
            conn.execute(
                select(link_clickers.c.contact_id).where(
                    link_clickers.c.account_id == account,
                    link_clickers.c.activity_id == activity_id,
                    link_clickers.c.url_id == url_id,
                    link_clickers.c.contact_id.in_(unique),
                )
            ).scalars()
        )
        new = [c for c in unique if c not in seen]
        if new:
            conn.execute(
                insert(link_clickers),
                [{"account_id": account, "activity_id": activity_id, "url_id": url_id, "contact_id": c}
                 for c in new],
            )
        key = (link_counters.c.account_id == account) & (link_counters.c.activity_id == activity_id) & (
            link_counters.c.url_id == url_id
        )
        if conn.execute(select(link_counters.c.url_id).where(key)).first() is None:
            conn.execute(insert(link_counters).values(
                account_id=account, activity_id=activity_id, url_id=url_id,
                clicks_all=len(clickers), unique_clicks=len(new)))
        else:
            conn.execute(update(link_counters).where(key).values(
                clicks_all=link_counters.c.clicks_all + len(clickers),
                unique_clicks=link_counters.c.unique_clicks + len(new)))
