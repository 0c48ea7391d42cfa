"""What the tracking endpoints and the sender's toolkit read and write besides the event log:
links registered by URL, send times and recent clicks for the verdicts, a second verdict on
logged clicks (the first of a burst), forwarded-to addresses, and each account's counting policy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Connection, Row, insert, select, tuple_, update

from ..vocab import DEFAULT_CLICK_COUNTING, DEFAULT_OPEN_COUNTING, DeviceType, MachineCounting, Verdict
from . import rawsql
from .db import now_ms
from .hourly import HOUR
from .reports import with_contact
from .schema import accounts, activities, contacts, forward_addresses, links

if TYPE_CHECKING:
    from .hit_writer import Click


def register_urls(conn: Connection, account: int, activity_id: str, urls: Sequence[str],
                  fixed: dict[str, str] | None = None) -> dict[str, str]:
    """The ``url_id`` of each URL: the one it already has in the activity's links, else a new
    one (the next number). ``fixed`` gives ids chosen by the caller (url_id -> url)."""
    have: dict[str, str] = {}
    taken: set[str] = set()
    top = 0
    for url_id, url in conn.execute(select(links.c.url_id, links.c.url).where(
            links.c.account_id == account, links.c.activity_id == activity_id)):
        have.setdefault(url, url_id)
        taken.add(url_id)
        if url_id.isdigit():
            top = max(top, int(url_id))
    out: dict[str, str] = {}
    rows = []
    for url_id, url in (fixed or {}).items():
        if url_id not in taken:
            rows.append({"account_id": account, "activity_id": activity_id, "url_id": url_id, "url": url})
            taken.add(url_id)
        out[url] = url_id
    for url in urls:
        if url in out:
            continue
        if url in have:
            out[url] = have[url]
            continue
        top += 1
        out[url] = str(top)
        rows.append({"account_id": account, "activity_id": activity_id, "url_id": str(top), "url": url})
    if rows:
        conn.execute(insert(links), rows)
    return out


def link_url(conn: Connection, account: int, activity_num: int, url_id: str) -> str | None:
    """The URL a click token's link leads to; None when the activity has no such link."""
    return conn.execute(
        select(links.c.url).select_from(links.join(
            activities, (activities.c.account_id == links.c.account_id) & (activities.c.id == links.c.activity_id)))
        .where(links.c.account_id == account, activities.c.num_id == activity_num, links.c.url_id == url_id)
    ).scalar()


def activity_ids(conn: rawsql.Conn, account: int, nums: Iterable[int]) -> dict[int, str]:
    """The UUID of each activity number that exists, in one query."""
    sql = "SELECT num_id, id FROM activities WHERE account_id = {p} AND num_id IN ({in})"
    return {int(n): str(i) for n, i in rawsql.select_in(conn, sql, (account,), sorted(set(nums)))}


def contact_ids(conn: rawsql.Conn, account: int, nums: Iterable[int]) -> dict[int, str]:
    """The UUID of each contact number that exists, in one query."""
    sql = "SELECT num_id, id FROM contacts WHERE account_id = {p} AND num_id IN ({in})"
    return {int(n): str(i) for n, i in rawsql.select_in(conn, sql, (account,), sorted(set(nums)))}


@dataclass(frozen=True, slots=True)
class Ids:
    activity_id: str
    contact_id: str


def ids_for(conn: Connection, account: int, activity_num: int, contact_num: int) -> Ids | None:
    activity = conn.execute(select(activities.c.id).where(
        activities.c.account_id == account, activities.c.num_id == activity_num)).scalar()
    contact = conn.execute(select(contacts.c.id).where(
        contacts.c.account_id == account, contacts.c.num_id == contact_num)).scalar()
    return Ids(activity, contact) if activity and contact else None


# The looked-for rows first, a seek each: SQLite keeps a CROSS JOIN's order. Left to choose, for
# some counts of rows (100 of them, not 64 or 128) it read the account's whole index instead,
# with an automatic index on the values: 876 against 43 us a click hit.
_VALUES_FIRST = "CROSS JOIN"


class Prior(NamedTuple):
    """What a recipient's row says before a group of hits: all the hit path needs of it."""

    sent_at: int | None
    first_open_at: int | None
    clicks: int
    bounced_at: int | None


def recipient_states(conn: rawsql.Conn, account: int, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], Prior]:
    """The stored state of each (activity_num, contact_num) that has a row, in one query. Read
    under the account's write lock, it is what the group's counter deltas start from."""
    wanted = sorted(set(pairs))
    sql = ("SELECT r.activity_num, r.contact_num, r.sent_at, r.first_open_at, COALESCE(r.clicks, 0), r.bounced_at "
           f"FROM {{values}} AS v {_VALUES_FIRST} recipients AS r "
           "WHERE r.account_id = {p} AND r.activity_num = v.column1 AND r.contact_num = v.column2")
    make = Prior._make  # a row of thousands a group: its tuple taken as it is, not through Prior(...)
    return {(row[0], row[1]): make(row[2:]) for row in rawsql.select_rows_in(conn, sql, wanted, (account,))}


@dataclass(slots=True)
class LoggedClick:
    """A click already in the log, as the burst rule needs it (named as ``HitRow`` names them:
    a click the hit writer has just written serves as well)."""

    activity_num: int
    contact_num: int
    at: int  # ms
    idem: int
    url_id: str | None
    verdict: str | None
    device: str | None


def recent_clicks(conn: rawsql.Conn, account: int, pairs: Iterable[tuple[int, int]], since: int
                  ) -> dict[tuple[int, int], list[LoggedClick]]:
    """The logged clicks since ``since`` (ms) of each (activity_num, contact_num), in one query
    down ``ix_events_contact``: a seek per recipient, however busy the activity is. (``+ 0``
    and ``COALESCE`` keep the planner off the primary key, which would read every click of
    the activity in the window for each recipient.)"""
    wanted = sorted(set(pairs))
    m = rawsql.mark(conn)
    sql = ("SELECT e.activity_num, e.contact_num, e.occurred_at, e.idem, e.url_id, e.verdict, e.device_type "
           f"FROM {{values}} AS v {_VALUES_FIRST} events AS e WHERE e.account_id = {{p}} AND e.contact_num = v.column2 "
           f"AND e.occurred_at >= {m} AND e.activity_num + 0 = v.column1 AND COALESCE(e.type, '') = 'click'")
    out: dict[tuple[int, int], list[LoggedClick]] = {}
    for a, c, t, i, u, v, d in rawsql.select_rows_in(conn, sql, wanted, (account, since)):
        out.setdefault((int(a), int(c)), []).append(LoggedClick(int(a), int(c), int(t), int(i), u, v, d))
    return out


def counting(conn: rawsql.Conn, account: int) -> tuple[MachineCounting, MachineCounting]:
    """Which machine (opens, clicks) the account's vendor surfaces count."""
    m = rawsql.mark(conn)
    rows = rawsql.fetch(conn, f"SELECT {accounts.c.count_machine_opens.name}, {accounts.c.count_machine_clicks.name} "
                              f"FROM {accounts.name} WHERE id = {m}", (account,))
    if not rows:
        return DEFAULT_OPEN_COUNTING, DEFAULT_CLICK_COUNTING
    return MachineCounting(rows[0][0]), MachineCounting(rows[0][1])


def set_counting(conn: Connection, account: int, opens: MachineCounting | None,
                 clicks: MachineCounting | None) -> None:
    values: dict[str, Any] = {}
    if opens is not None:
        values["count_machine_opens"] = opens.value
    if clicks is not None:
        values["count_machine_clicks"] = clicks.value
    if values:
        conn.execute(update(accounts).where(accounts.c.id == account).values(**values))


def keep_forward(conn: Connection, account: int, activity_num: int, contact_num: int, friend: str, at: int) -> bool:
    """Keep a friend's address once per forwarder; False when it was already kept."""
    return rawsql.insert_new(conn, "forward_addresses",
                             ("account_id", "activity_num", "contact_num", "friend_email", "forwarded_at"),
                             [(account, activity_num, contact_num, friend.lower(), at)]) > 0


def forwards_of(conn: Connection, account: int, activity_num: int, limit: int = 500,
                after: tuple[int, int, str] | None = None) -> list[Row[Any]]:
    """Friends' addresses given for one activity, oldest first, with the forwarder's contact."""
    f = forward_addresses
    q = (select(f.c.forwarded_at, f.c.friend_email, f.c.contact_num, contacts.c.id.label("contact_id"),
                contacts.c.email)
         .select_from(with_contact(f))
         .where(f.c.account_id == account, f.c.activity_num == activity_num))
    if after is not None:
        q = q.where(tuple_(f.c.forwarded_at, f.c.contact_num, f.c.friend_email) > tuple_(*after))
    return list(conn.execute(q.order_by(f.c.forwarded_at, f.c.contact_num, f.c.friend_email).limit(limit)))


def judge_again(conn: rawsql.Conn, account: int, clicks: Sequence[Click], verdict: str, why: str,
                counted: bool, activity_ids: dict[int, str], contact_ids: dict[int, str]) -> int:
    """Logged human clicks that a later hit showed were a machine's (the first click of a
    burst): they get ``verdict`` and ``why``, and when the account's policy does not count that
    verdict, their counts come off everything the writer added them to — the activity's
    counters, the recipient's state, the link's counters and clickers, the hourly roll-up —
    so the counters still equal a recount of the log. Returns how many changed.
    """
    m = rawsql.mark(conn)
    cur = rawsql.cursor(conn)
    try:
        changed: list[Click] = []
        for c in clicks:  # only those still human: judged once, whoever sees the burst first
            cur.execute(f"UPDATE events SET verdict = {m}, verdict_why = {m}, uncounted = {m} WHERE account_id = {m} "
                        f"AND activity_num = {m} AND type = 'click' AND occurred_at = {m} AND idem = {m} "
                        "AND verdict = 'human'",
                        (verdict, why, None if counted else True, account, c.activity_num, c.at, c.idem))
            if cur.rowcount:
                changed.append(c)
        if not changed:
            return 0
        deltas: dict[int, dict[str, int]] = {}
        for c in changed:
            d = deltas.setdefault(c.activity_num, defaultdict(int))
            d[f"clicks_{Verdict.HUMAN.value}"] -= 1
            d[f"clicks_{verdict}"] += 1
            if not counted:
                d["clicks_all"] -= 1
                d[f"clicks_{c.device or DeviceType.NONE.value}"] -= 1
        if not counted:
            _uncount(conn, cur, m, account, changed, deltas, activity_ids, contact_ids)
        for num, d in deltas.items():
            sets = ", ".join(f"{k} = {k} + {m}" for k in d)
            cur.execute(f"UPDATE activity_counters SET {sets}, updated_at = {m} WHERE account_id = {m} "
                        f"AND activity_id = {m}", (*d.values(), now_ms(), account, activity_ids[num]))
        return len(changed)
    finally:
        cur.close()


def _uncount(conn: rawsql.Conn, cur: Any, m: str, account: int, changed: list[Click],
             deltas: dict[int, dict[str, int]], activity_ids: dict[int, str], contact_ids: dict[int, str]) -> None:
    """Take uncounted clicks off the recipients' state, the links' counters and the hours."""
    per_recipient: dict[tuple[int, int], int] = defaultdict(int)
    per_link: dict[tuple[int, str | None], int] = defaultdict(int)
    per_hour: dict[tuple[int, int], int] = defaultdict(int)
    for c in changed:
        per_recipient[(c.activity_num, c.contact_num)] += 1
        per_link[(c.activity_num, c.url_id)] += 1
        per_hour[(c.activity_num, c.at // HOUR * HOUR)] += 1
    for (a, who), n in per_recipient.items():
        key = f"account_id = {m} AND activity_num = {m} AND contact_num = {m}"
        cur.execute(f"UPDATE recipients SET clicks = clicks - {m} WHERE {key}", (n, account, a, who))
        cur.execute(f"SELECT clicks FROM recipients WHERE {key}", (account, a, who))
        row = cur.fetchone()
        if row is not None and int(row[0]) <= 0:
            deltas[a]["clicks"] -= 1  # no longer a contact who clicked
    for (a, u), n in per_link.items():
        cur.execute(f"UPDATE link_counters SET clicks_all = clicks_all - {m} WHERE account_id = {m} "
                    f"AND activity_id = {m} AND url_id = {m}", (n, account, activity_ids[a], u))
    for a, who, u in sorted({(c.activity_num, c.contact_num, c.url_id or "") for c in changed}):
        cur.execute(f"SELECT 1 FROM events WHERE account_id = {m} AND contact_num = {m} AND activity_num + 0 = {m} "
                    f"AND COALESCE(type, '') = 'click' AND url_id = {m} AND uncounted IS NULL LIMIT 1",
                    (account, who, a, u))
        if cur.fetchone() is not None:
            continue  # another counted click of that link: still one of its clickers
        cur.execute(f"DELETE FROM link_clickers WHERE account_id = {m} AND activity_id = {m} AND url_id = {m} "
                    f"AND contact_id = {m}", (account, activity_ids[a], u, contact_ids[who]))
        if cur.rowcount:
            cur.execute(f"UPDATE link_counters SET unique_clicks = unique_clicks - 1 WHERE account_id = {m} "
                        f"AND activity_id = {m} AND url_id = {m}", (account, activity_ids[a], u))
    for (a, hour), n in per_hour.items():
        cur.execute(f"UPDATE activity_hourly SET clicks = clicks - {m} WHERE account_id = {m} AND activity_num = {m} "
                    f"AND hour = {m}", (n, account, a, hour))
