"""The report queries every dialect shares. Newest first, keyset-paginated.

Rows carry the event's fields plus the contact's, so a serializer needs nothing else.
A page's key is ``(time, idem)``; callers pass the last row's key back as ``after``.

The log refers to activities and contacts by their numeric ids; rows come back with the
UUIDs (``activity_id``, ``contact_id``) joined in, so serializers never see the numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, literal_column, or_, select

from .schema import activities, campaigns, contacts, events, links, recipients

CONTACT_COLS = [
    contacts.c.email, contacts.c.first_name, contacts.c.last_name, contacts.c.company_name,
    contacts.c.job_title, contacts.c.phone, contacts.c.street, contacts.c.city, contacts.c.state,
    contacts.c.postal_code, contacts.c.country, contacts.c.custom_fields, contacts.c.num_id.label("contact_num_id"),
    contacts.c.created_at.label("contact_created_at"), contacts.c.updated_at.label("contact_updated_at"),
    contacts.c.deleted_at,
]
EVENT_COLS = [
    *(c for c in events.c if c.name not in ("account_id", "activity_num", "contact_num")),
    contacts.c.id.label("contact_id"),
    activities.c.id.label("activity_id"),
]
Key = tuple[int, Any]
# What the vendor surfaces list: every event but the machine hits the account's counting
# policy keeps out of their counters (so a list never shows what its count leaves out).
COUNTED = events.c.uncounted.is_(None)


def with_contact(table: Any) -> Any:
    """``table`` (the log or recipients) joined to its contacts."""
    return table.join(
        contacts, and_(contacts.c.account_id == table.c.account_id, contacts.c.num_id == table.c.contact_num)
    )


def with_activity(table: Any, joined: Any = None) -> Any:
    """``joined`` (default ``table``) joined to the activities ``table`` refers to."""
    return (joined if joined is not None else table).join(
        activities, and_(activities.c.account_id == table.c.account_id, activities.c.num_id == table.c.activity_num)
    )


def activity_num(account: int, activity_id: str) -> Any:
    """The numeric id of an activity, as a scalar subquery the planner evaluates once."""
    return (
        select(activities.c.num_id)
        .where(activities.c.account_id == account, activities.c.id == activity_id)
        .scalar_subquery()
    )


def contact_num(account: int, contact_id: str) -> Any:
    return (
        select(contacts.c.num_id)
        .where(contacts.c.account_id == account, contacts.c.id == contact_id)
        .scalar_subquery()
    )


def older_than(time_col: Any, id_col: Any, after: Key | None) -> Any:
    """Rows strictly after ``after`` in (time desc, tie-breaker desc) order."""
    if after is None:
        return None
    t, i = after
    # The leading ``time <= t`` lets the index seek to the cursor; with the OR alone, SQLite
    # scans the index from the newest row, so a page cost O(depth).
    return and_(time_col <= t, or_(time_col < t, and_(time_col == t, id_col < i)))


def newest_first(q: Any, time_col: Any, tie_col: Any, after: Key | None, limit: int) -> Any:
    """A keyset page of ``q``: newest first by ``(time_col, tie_col)``, after the key ``after``."""
    cond = older_than(time_col, tie_col, after)
    if cond is not None:
        q = q.where(cond)
    return q.order_by(time_col.desc(), tie_col.desc()).limit(limit)


def contact_events(
    conn: Connection,
    account: int,
    contact_id: str,
    types: Sequence[str] | None = None,
    *,
    since: int | None = None,
    until: int | None = None,
    url_id: str | None = None,
    after: Key | None = None,
    limit: int = 500,
    counted_only: bool = False,
) -> list[Row[Any]]:
    """Everything that happened to one contact, newest first, with the activity's campaign;
    ``counted_only``: as the vendor surfaces list it (``COUNTED``)."""
    q = (
        select(*EVENT_COLS, *CONTACT_COLS, activities.c.campaign_id, activities.c.num_id.label("activity_num_id"),
               campaigns.c.num_id.label("campaign_num_id"), campaigns.c.name.label("campaign_name"))
        .select_from(
            with_activity(events, with_contact(events))
            .join(campaigns, and_(campaigns.c.account_id == activities.c.account_id,
                                  campaigns.c.id == activities.c.campaign_id))
        )
        .where(events.c.account_id == account, events.c.contact_num == contact_num(account, contact_id))
    )
    if types:
        q = q.where(events.c.type.in_(list(types)))
    if since is not None:
        q = q.where(events.c.occurred_at >= since)
    if until is not None:
        q = q.where(events.c.occurred_at < until)
    if url_id is not None:
        q = q.where(events.c.url_id == url_id)
    if counted_only:
        q = q.where(COUNTED)
    return list(conn.execute(newest_first(q, events.c.occurred_at, events.c.idem, after, limit)))


def did_not_open(
    conn: Connection, account: int, activity_id: str, *, after: Key | None = None, limit: int = 500
) -> list[Row[Any]]:
    """Contacts sent to, not bounced, never opened; key ``(sent_at, contact_num)``."""
    q = (
        select(recipients, contacts.c.id.label("contact_id"), *CONTACT_COLS)
        .select_from(with_contact(recipients))
        .where(recipients.c.account_id == account, recipients.c.activity_num == activity_num(account, activity_id),
               recipients.c.sent_at.is_not(None), recipients.c.first_open_at.is_(None),
               recipients.c.bounced_at.is_(None))
    )
    return list(conn.execute(newest_first(q, recipients.c.sent_at, recipients.c.contact_num, after, limit)))


def account_bounces(
    conn: Connection,
    account: int,
    *,
    since: int | None = None,
    until: int | None = None,
    codes: Iterable[str] | None = None,
    email: str | None = None,
    offset: int = 0,
    limit: int = 500,
) -> list[Row[Any]]:
    """Bounces across all campaigns of an account, newest first, with send time and campaign.

    Offset-paginated because the dialects that ask for it (Zoho's start/end index,
    WhatCounts' ``skip``) define their pages by position; their date ranges bound it.
    """
    q = (
        select(*EVENT_COLS, *CONTACT_COLS, activities.c.campaign_id, campaigns.c.num_id.label("campaign_num_id"),
               campaigns.c.name.label("campaign_name"), recipients.c.sent_at)
        .select_from(
            with_activity(events, with_contact(events))
            .join(campaigns, and_(campaigns.c.account_id == activities.c.account_id,
                                  campaigns.c.id == activities.c.campaign_id))
            .outerjoin(recipients, and_(recipients.c.account_id == events.c.account_id,
                                        recipients.c.activity_num == events.c.activity_num,
                                        recipients.c.contact_num == events.c.contact_num))
        )
        .where(events.c.account_id == account, events.c.type == literal_column("'bounce'"))
    )
    if since is not None:
        q = q.where(events.c.occurred_at >= since)
    if until is not None:
        q = q.where(events.c.occurred_at < until)
    if codes is not None:
        q = q.where(events.c.bounce_code.in_(list(codes)))
    if email is not None:
        q = q.where(contacts.c.email == email.lower())
    q = q.order_by(events.c.occurred_at.desc(), events.c.idem.desc()).offset(offset).limit(limit)
    return list(conn.execute(q))


def link_urls(conn: Connection, account: int, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """The URL of each (activity_id, url_id) that has one."""
    wanted = set(pairs)
    if not wanted:
        return {}
    rows = conn.execute(
        select(links.c.activity_id, links.c.url_id, links.c.url).where(
            links.c.account_id == account,
            links.c.activity_id.in_(sorted({a for a, _ in wanted})),
            links.c.url_id.in_(sorted({u for _, u in wanted})),
        )
    )
    return {(r.activity_id, r.url_id): r.url for r in rows if (r.activity_id, r.url_id) in wanted}


def activity_names(conn: Connection, account: int, activity_ids: Iterable[str]) -> dict[str, str]:
    """The name of each activity: its campaign's name (an activity has none of its own)."""
    ids = sorted(set(activity_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(activities.c.id, campaigns.c.name)
        .join(campaigns, and_(campaigns.c.account_id == activities.c.account_id,
                              campaigns.c.id == activities.c.campaign_id))
        .where(activities.c.account_id == account, activities.c.id.in_(ids))
    )
    return {r.id: r.name for r in rows}
