"""Finding the send a bounce belongs to, and keeping the bounces that match none."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, insert, literal_column, select

from .accounts import allocate
from .reports import with_activity, with_contact
from .schema import activities, contacts, events, unmatched_bounces

Send = tuple[str, str]  # (activity_id, contact_id)


def send_by_numbers(conn: Connection, account: int, activity_num: int, contact_num: int) -> Send | None:
    """The activity and contact a VERP token or header names, when both exist."""
    activity = conn.execute(
        select(activities.c.id).where(activities.c.account_id == account, activities.c.num_id == activity_num)
    ).scalar()
    contact = conn.execute(
        select(contacts.c.id).where(contacts.c.account_id == account, contacts.c.num_id == contact_num)
    ).scalar()
    return (activity, contact) if activity and contact else None


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
    exists = conn.execute(
        select(unmatched_bounces.c.id).where(
            unmatched_bounces.c.account_id == account,
            unmatched_bounces.c.message_key == values["message_key"],
            unmatched_bounces.c.recipient == values["recipient"],
        )
    ).first()
    if exists:
        return False
    conn.execute(insert(unmatched_bounces).values(account_id=account, id=allocate(conn, account, "seq_event"),
                                                  **values))
    return True


def list_unmatched(conn: Connection, account: int, before_id: int | None, limit: int) -> list[Row[Any]]:
    q = select(unmatched_bounces).where(unmatched_bounces.c.account_id == account)
    if before_id is not None:
        q = q.where(unmatched_bounces.c.id < before_id)
    return list(conn.execute(q.order_by(unmatched_bounces.c.id.desc()).limit(limit)))
