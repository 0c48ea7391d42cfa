"""The tracking hit path's own writer: a group of judged opens and clicks in a few statements.

The general writer (``store.writer``) takes any batch from any source through a staging table
and some twenty set-based statements; for a group of a dozen hits that fixed cost was nearly
all of the work. A hit is simpler than any event: it is new by construction (its ``idem`` is a
random 63-bit id), names an activity and a contact by number, and touches only the log, the
recipient's open and click state, the activity's open and click counters, the link's counters
and clickers, and the hourly chart. So the roll-ups are folded in Python from the recipients'
state read under the account's write lock (``hits.recipient_states``), and each table gets one
statement per group:

1. the log: one ``executemany`` of the rows;
2. ``recipients``: one upsert per touched recipient (``executemany``), merged as the writer merges;
3. ``activity_counters``: one ``UPDATE`` per activity of the columns that changed (an
   ``INSERT`` of the whole row the first time);
4. for counted clicks, ``link_clickers`` (one multi-row insert, its new pairs returned) and
   ``link_counters``; 5. ``activity_hourly``.

What is left out is what never applies to a hit: idempotency keys (none), contacts by address,
the send's marks, retention's refusal (a hit is now), and ``store.reactions`` (suppressions,
alerts and the outbox act on sends, bounces, complaints, opt-outs and forwards only; checked
below). The counters equal a recount of the log exactly as the writer's do; a test writes the
same groups both ways and compares every table. Anything unusual (a month of the PostgreSQL log
without its partition, an ``idem`` already there) raises, and the caller writes that group
again through the general writer.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..vocab import DeviceType, EventType, Verdict
from . import outbox, reactions
from .db import now_ms
from .hits import LoggedClick, Prior
from .hourly import HOUR
from .hourly import UPSERT as HOURLY_UPSERT
from .rawsql import Tx
from .schema import COUNTER_COLUMNS

assert not {EventType.OPEN, EventType.CLICK} & (reactions._ACTING | set(outbox.EVENT_NAMES)), \
    "opens and clicks react to nothing: the hit path leaves store.reactions out"

_OPEN, _CLICK = EventType.OPEN.value, EventType.CLICK.value
_NONE = DeviceType.NONE.value
_LOG = ("account_id", "activity_num", "type", "occurred_at", "idem", "id", "contact_num", "device_type", "url_id",
        "user_agent", "ip", "since_send_s", "verdict", "verdict_why", "uncounted")
_LATER = "excluded.last_open_at IS NOT NULL AND (recipients.last_open_at IS NULL " \
         "OR excluded.last_open_at >= recipients.last_open_at)"
_RECIPIENT = (
    "INSERT INTO recipients (account_id, activity_num, contact_num, first_open_at, last_open_at, last_open_device, "
    "opens, clicks) VALUES ({m}) ON CONFLICT (account_id, activity_num, contact_num) DO UPDATE SET "
    "first_open_at = COALESCE(recipients.first_open_at, excluded.first_open_at), "
    f"last_open_at = CASE WHEN {_LATER} THEN excluded.last_open_at ELSE recipients.last_open_at END, "
    f"last_open_device = CASE WHEN {_LATER} THEN excluded.last_open_device ELSE recipients.last_open_device END, "
    "opens = recipients.opens + excluded.opens, clicks = recipients.clicks + excluded.clicks"
)
_LINKS = (
    "INSERT INTO link_counters (account_id, activity_id, url_id, clicks_all, unique_clicks) VALUES ({m}) "
    "ON CONFLICT (account_id, activity_id, url_id) DO UPDATE SET "
    "clicks_all = link_counters.clicks_all + excluded.clicks_all, "
    "unique_clicks = link_counters.unique_clicks + excluded.unique_clicks"
)
_INSERT_LOG = f"INSERT INTO events ({', '.join(_LOG)}) VALUES ({{m}})"
_CLICKERS_PER_STATEMENT = 200
# Counter columns by hit kind: verdict, device or "all" -> "opens_human", "clicks_mobile", ...
_COUNTED_BY = (*(v.value for v in Verdict), *(d.value for d in DeviceType), "all")
_OPENS = {k: f"opens_{k}" for k in _COUNTED_BY}
_CLICKS = {k: f"clicks_{k}" for k in _COUNTED_BY}


class _Sql(NamedTuple):
    log: str
    recipients: str
    hourly: str
    links: str


@functools.cache
def _sql(m: str) -> _Sql:
    """The statements with this driver's parameter marks (made once, not once a group)."""
    return _Sql(_INSERT_LOG.format(m=", ".join([m] * len(_LOG))), _RECIPIENT.format(m=", ".join([m] * 8)),
                HOURLY_UPSERT.format(m=m), _LINKS.format(m=", ".join([m] * 5)))


@dataclass(slots=True)
class HitRow:
    """One judged open or click, as the log keeps it (``verdict``, ``why`` and ``counted`` may
    still change while its group is judged: the first click of a burst)."""

    activity_num: int
    contact_num: int
    click: bool
    at: int  # ms
    idem: int
    device: str
    url_id: str | None
    user_agent: str | None
    ip: str | None
    since_send_s: int | None
    verdict: str
    why: str
    counted: bool


# A click in the log as the burst rule needs it: read back, or just written by the hit writer.
Click = LoggedClick | HitRow


@dataclass(slots=True)
class _Fold:
    """One recipient's counted hits of the group."""

    first_open: int | None = None
    last_open: int | None = None
    last_device: str | None = None
    opens: int = 0
    clicks: int = 0


def write_hits(conn: Tx, account: int, first_id: int, hits: Sequence[HitRow],
               prior: dict[tuple[int, int], Prior], activity_ids: dict[int, str],
               contact_ids: dict[int, str]) -> None:
    """Record ``hits`` (in arrival order) with ids from ``first_id`` on; ``prior`` is the
    touched recipients' state read under the account's lock, which the caller holds."""
    if not hits:
        return
    m = conn.mark
    sql = _sql(m)
    counters: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    last_at: dict[int, int] = {}
    folds: dict[tuple[int, int], _Fold] = {}
    hours: dict[tuple[int, int], list[int]] = {}
    link_hits: dict[tuple[int, str], int] = defaultdict(int)
    clickers: set[tuple[int, str, int]] = set()
    for h in hits:
        a = h.activity_num
        kind = _CLICKS if h.click else _OPENS
        c = counters[a]
        c[kind[h.verdict]] += 1
        last_at[a] = max(last_at.get(a, h.at), h.at)
        if not h.counted:
            continue  # logged and tallied by verdict; nothing else
        c[kind["all"]] += 1
        c[kind[h.device or _NONE]] += 1
        f = folds.get((a, h.contact_num))
        if f is None:
            f = folds[(a, h.contact_num)] = _Fold()
        hour = hours.setdefault((a, h.at // HOUR * HOUR), [0, 0])
        if h.click:
            f.clicks += 1
            hour[1] += 1
            if h.url_id is not None:
                link_hits[(a, h.url_id)] += 1
                clickers.add((a, h.url_id, h.contact_num))
        else:
            f.opens += 1
            hour[0] += 1
            if f.first_open is None or h.at < f.first_open:
                f.first_open = h.at
            if f.last_open is None or h.at >= f.last_open:  # ties: the later arrival
                f.last_open, f.last_device = h.at, h.device or _NONE
    # Counters of recipients: who opened or clicked for the first time, and who is no longer
    # a did-not-open (sent, not bounced, and now opened).
    for (a, who), f in folds.items():
        p = prior.get((a, who))
        if f.opens and (p is None or p.first_open_at is None):
            counters[a]["opens"] += 1
            if p is not None and p.sent_at is not None and p.bounced_at is None:
                counters[a]["not_opened"] -= 1
        if f.clicks and (p is None or p.clicks <= 0):
            counters[a]["clicks"] += 1
    t = now_ms()
    # On PostgreSQL every statement below goes in one round trip (a pipeline; the clickers'
    # RETURNING, for clicks, is one more); SQLite has no round trips to save.
    pipeline: Any = conn.dbapi.pipeline() if conn.postgres else nullcontext()
    cursors = [conn.cursor() for _ in range(1 + len(counters))]
    cur, updates = cursors[0], cursors[1:]
    try:
        with pipeline:
            cur.executemany(
                sql.log,
                [(account, h.activity_num, _CLICK if h.click else _OPEN, h.at, h.idem, first_id + i, h.contact_num,
                  h.device, h.url_id, h.user_agent, h.ip, h.since_send_s, h.verdict, h.why,
                  None if h.counted else True) for i, h in enumerate(hits)])
            if folds:
                cur.executemany(sql.recipients,
                                [(account, a, who, f.first_open, f.last_open, f.last_device, f.opens, f.clicks)
                                 for (a, who), f in folds.items()])
            if hours:
                cur.executemany(sql.hourly,
                                [(account, a, hour, o, k) for (a, hour), (o, k) in hours.items()])
            if link_hits:
                unique = _new_clickers(cur, m, account, sorted(clickers), activity_ids, contact_ids)
                cur.executemany(sql.links,
                                [(account, activity_ids[a], u, n, unique.get((a, u), 0))
                                 for (a, u), n in link_hits.items()])
            changed = [(a, {k: v for k, v in d.items() if v}) for a, d in counters.items()]
            for u, (a, deltas) in zip(updates, changed, strict=True):
                sets = "".join(f"{k} = {k} + {m}, " for k in deltas)
                u.execute(f"UPDATE activity_counters SET {sets}last_event_at = CASE WHEN last_event_at IS NULL "
                          f"OR last_event_at < {m} THEN {m} ELSE last_event_at END, updated_at = {m} "
                          f"WHERE account_id = {m} AND activity_id = {m}",
                          (*deltas.values(), last_at[a], last_at[a], t, account, activity_ids[a]))
        for u, (a, deltas) in zip(updates, changed, strict=True):
            if u.rowcount == 0:  # the activity's first counts; under the account's lock, nobody else makes it
                columns = ("account_id", "activity_id", *COUNTER_COLUMNS, "last_event_at", "updated_at")
                cur.execute(f"INSERT INTO activity_counters ({', '.join(columns)}) "
                            f"VALUES ({', '.join([m] * len(columns))})",
                            (account, activity_ids[a], *(deltas.get(k, 0) for k in COUNTER_COLUMNS), last_at[a], t))
    finally:
        for each in cursors:
            each.close()


def _new_clickers(cur: Any, m: str, account: int, clickers: list[tuple[int, str, int]],
                  activity_ids: dict[int, str], contact_ids: dict[int, str]) -> dict[tuple[int, str], int]:
    """Insert the (link, contact) pairs not there yet; how many were new per link."""
    nums = {aid: a for a, aid in activity_ids.items()}
    out: dict[tuple[int, str], int] = defaultdict(int)
    for i in range(0, len(clickers), _CLICKERS_PER_STATEMENT):
        part = clickers[i:i + _CLICKERS_PER_STATEMENT]
        cur.execute("INSERT INTO link_clickers (account_id, activity_id, url_id, contact_id) VALUES "
                    + ", ".join([f"({m}, {m}, {m}, {m})"] * len(part))
                    + " ON CONFLICT DO NOTHING RETURNING activity_id, url_id",
                    [v for a, u, who in part for v in (account, activity_ids[a], u, contact_ids[who])])
        for activity_id, url_id in cur.fetchall():
            out[(nums[activity_id], url_id)] += 1
    return out


# The counters the loop above names (opens_human, clicks_mobile, opens_none, ...) are columns.
assert {*_OPENS.values(), *_CLICKS.values()} <= set(COUNTER_COLUMNS)
