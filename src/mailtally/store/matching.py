"""Finding the send a bounce belongs to, and keeping the bounces that match none."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, insert, literal_column, select

from . import rawsql
from .accounts import allocate
from .reports import with_activity, with_contact
from .schema import activities, contacts, events, unmatched_bounces

Send = tuple[str, str]  # (activity_id, contact_id)
IN_CHUNK = 500  # values per IN (...) list: well under SQLite's and PostgreSQL's limits on parameters


def chunks(values: Iterable[Any], size: int = IN_CHUNK) -> Iterator[list[Any]]:
    items = list(values)
    for i in range(0, len(items), size):
        yield items[i:i + size]


def send_by_numbers(conn: Connection, account: int, activity_num: int, contact_num: int) -> Send | None:
    """The activity and contact a VERP token or header names, when both exist."""
    activity = conn.execute(
        select(activities.c.id).where(activities.c.account_id == account, activities.c.num_id == activity_num)
    ).scalar()
    contact = conn.execute(
        select(contacts.c.id).where(contacts.c.account_id == account, contacts.c.num_id == contact_num)
    ).scalar()
    return (activity, contact) if activity and contact else None


def sends_by_numbers(conn: Connection, account: int,
                     pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, str, str]]:
    """`send_by_numbers` for many at once: (activity num, contact num) -> (activity id, contact id, email)."""
    wanted = set(pairs)
    act = {int(n): str(i) for n, i in rawsql.select_in(
        conn, "SELECT num_id, id FROM activities WHERE account_id = {p} AND num_id IN ({in})", (account,),
        sorted({a for a, _ in wanted}))}
    con = {int(n): (str(i), str(e)) for n, i, e in rawsql.select_in(
        conn, "SELECT num_id, id, email FROM contacts WHERE account_id = {p} AND num_id IN ({in})", (account,),
        sorted({c for _, c in wanted}))}
    return {(a, c): (act[a], *con[c]) for a, c in wanted if a in act and c in con}


def latest_sends_to(conn: Connection, account: int, emails: Iterable[str]) -> dict[str, Send]:
    """`latest_send_to` for many addresses at once (`latest_sends`)."""
    return {email: (x.activity_id, x.contact_id) for email, x in latest_sends(conn, account, emails).items()}


class SendRow(NamedTuple):
    """A send, with the numbers of its activity and contact and the contact's stored address."""

    activity_id: str
    contact_id: str
    activity_num: int
    contact_num: int
    email: str


def latest_sends(conn: Connection, account: int, emails: Iterable[str]) -> dict[str, SendRow]:
    """Each address's most recent send (by lower-cased address): three statements per 900
    addresses, straight to the driver (SQLAlchemy's handling of 500 bound values a statement
    cost more than the lookups)."""
    people = {int(num): (email.lower(), contact_id) for num, contact_id, email in rawsql.select_in(
        conn, "SELECT num_id, id, email FROM contacts WHERE account_id = {p} AND email IN ({in})", (account,),
        sorted({e.lower() for e in emails}))}
    latest = {int(c): int(a) for c, a in rawsql.select_in(conn, _LATEST_SENDS, (account,), sorted(people))}
    ids = {int(num): activity_id for num, activity_id in rawsql.select_in(
        conn, "SELECT num_id, id FROM activities WHERE account_id = {p} AND num_id IN ({in})", (account,),
        sorted(set(latest.values())))}
    out: dict[str, SendRow] = {}
    for contact_num, activity_num in latest.items():
        if activity_num in ids:
            email, contact_id = people[contact_num]
            out[email] = SendRow(ids[activity_num], contact_id, activity_num, contact_num, email)
    return out
    return out


# Each contact's most recent send, as latest_send_to orders them (read off ix_events_contact).
_LATEST_SENDS = (
    "SELECT contact_num, activity_num FROM (SELECT contact_num, activity_num, ROW_NUMBER() OVER "
    "(PARTITION BY contact_num ORDER BY occurred_at DESC, idem DESC) AS n FROM events "
    "WHERE account_id = {p} AND type = 'send' AND contact_num IN ({in})) ranked WHERE n = 1"
)


def numbers_of(conn: Connection, account: int, activity_id: str, contact_id: str) -> tuple[int, int] | None:
    activity = conn.execute(
        select(activities.c.num_id).where(activities.c.account_id == account, activities.c.id == activity_id)
    ).scalar()
    contact = conn.execute(
        select(contacts.c.num_id).where(contacts.c.account_id == account, contacts.c.id == contact_id)
    ).scalar()
    return (int(activity), int(contact)) if activity and contact else None


def latest_send_to(conn: Connection, account: int, email: str) -> Send | None:
    """The most recent send to this address, if it was ever sent anything."""
    row = conn.execute(
        select(activities.c.id.label("activity_id"), contacts.c.id.label("contact_id"))
        .select_from(with_activity(events, with_contact(events)))
        .where(contacts.c.account_id == account, contacts.c.email == email.lower(),
               events.c.type == literal_column("'send'"))
        .order_by(events.c.occurred_at.desc(), events.c.idem.desc())
        .limit(1)
    ).first()
    return (row.activity_id, row.contact_id) if row else None


def keep_unmatched(conn: Connection, account: int, values: dict[str, Any]) -> bool:
    """Store an unmatched bounce once per (message, recipient); False when already kept."""
    return keep_unmatched_many(conn, account, [values])[0]


def keep_unmatched_many(conn: Connection, account: int, rows: Sequence[dict[str, Any]]) -> list[bool]:
    """`keep_unmatched` for many at once (one look-up, one insert); True for each one stored now."""
    if not rows:
        return []
    keys = [(r["message_key"], r["recipient"]) for r in rows]
    sql = "SELECT message_key, recipient FROM unmatched_bounces WHERE account_id = {p} AND message_key IN ({in})"
    known = {(str(k), str(r)) for k, r in rawsql.select_in(conn, sql, (account,), sorted({k for k, _ in keys}))}
    stored = []
    fresh = []
    for key, row in zip(keys, rows, strict=True):
        new = key not in known
        known.add(key)
        stored.append(new)
        if new:
            fresh.append(row)
    if fresh:
        first = allocate(conn, account, "seq_event", len(fresh))
        conn.execute(insert(unmatched_bounces), [{"account_id": account, "id": first + k, **row}
                                                 for k, row in enumerate(fresh)])
    return stored


def list_unmatched(conn: Connection, account: int, before_id: int | None, limit: int) -> list[Row[Any]]:
    q = select(unmatched_bounces).where(unmatched_bounces.c.account_id == account)
    if before_id is not None:
        q = q.where(unmatched_bounces.c.id < before_id)
    return list(conn.execute(q.order_by(unmatched_bounces.c.id.desc()).limit(limit)))
