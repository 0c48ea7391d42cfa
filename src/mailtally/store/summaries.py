"""Report queries beyond the shared tracking lists: snapshot unique opens, sent campaigns,
per-link click counts and per-contact tallies. Newest first, keyset-paginated like reports.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, and_, exists, func, or_, select

from ..vocab import EventType
from .reports import COUNTED, Key, activity_num, contact_num, newest_first, with_activity
from .schema import accounts, activities, campaigns, contacts, events, link_clickers, link_counters, links

OPEN = EventType.OPEN.value
# What a tracking row shows: narrower than reports.py's rows (no address or custom fields,
# whose JSON decoding alone cost more than the query on a 500-row page).
TRACKING_COLS = [
    events.c.idem, contacts.c.id.label("contact_id"), events.c.type, events.c.occurred_at, events.c.device_type,
    events.c.url_id,
    events.c.bounce_code, events.c.optout_reason, contacts.c.email, contacts.c.first_name, contacts.c.last_name,
    contacts.c.deleted_at,
]
_WITH_CONTACT = events.join(
    contacts, and_(contacts.c.account_id == events.c.account_id, contacts.c.num_id == events.c.contact_num))


def tracking_events(
    conn: Connection,
    account: int,
    activity_id: str,
    event_type: str,
    *,
    bounce_codes: Iterable[str] | None = None,
    url_id: str | None = None,
    after: Key | None = None,
    limit: int = 500,
) -> list[Row[Any]]:
    """One type of event of an activity with the contact's name, newest first; key ``(occurred_at, idem)``.
    Machine hits the account's policy does not count are left out, as the counters leave them out."""
    q = (
        select(*TRACKING_COLS)
        .select_from(_WITH_CONTACT)
        .where(events.c.account_id == account, events.c.activity_num == activity_num(account, activity_id),
               events.c.type == event_type, COUNTED)
    )
    if bounce_codes:
        q = q.where(events.c.bounce_code.in_(list(bounce_codes)))
    if url_id is not None:
        q = q.where(events.c.url_id == url_id)
    return list(conn.execute(newest_first(q, events.c.occurred_at, events.c.idem, after, limit)).all())


def last_event_id(conn: Connection, account: int) -> int:
    """The last event id the account has handed out: the snapshot a paginated walk reads as of."""
    value = conn.execute(select(accounts.c.seq_event).where(accounts.c.id == account)).scalar()
    return int(value or 0)


def latest_opens(
    conn: Connection, account: int, activity_id: str, *, as_of: int, after: Key | None = None, limit: int = 500
) -> list[Row[Any]]:
    """Each contact's latest open of an activity among events up to ``as_of``, newest first.

    Read from the log rather than the recipients' state rows so that the list is a snapshot:
    a contact who opens again during a paginated walk does not jump ahead of the cursor and
    vanish from the walk. Key ``(occurred_at, id)``.
    """
    later = events.alias("later")
    num = conn.execute(select(activities.c.num_id).where(activities.c.account_id == account,
                                                          activities.c.id == activity_id)).scalar()
    if num is None:
        return []
    # Planner steering, portable to SQLite and PostgreSQL: ``id + 0`` and ``coalesce(col, 0)``
    # keep the id bound and the activity/type filters of the subquery off the indexes, so the
    # outer scan walks the primary key in page order and each probe seeks ix_events_contact
    # (the contact's few events). Left indexable, the planner scans the activity per row.
    newer_open = exists(
        select(later.c.idem).where(
            later.c.account_id == account,
            later.c.contact_num == events.c.contact_num,
            func.coalesce(later.c.activity_num, 0) == num,
            func.coalesce(later.c.type, "") == OPEN,
            later.c.id + 0 <= as_of,
            later.c.uncounted.is_(None),
            later.c.occurred_at >= events.c.occurred_at,
            or_(later.c.occurred_at > events.c.occurred_at, later.c.idem > events.c.idem),
        )
    )
    q = (
        select(*TRACKING_COLS)
        .select_from(_WITH_CONTACT)
        .where(events.c.account_id == account, events.c.activity_num == num, events.c.type == OPEN,
               events.c.id + 0 <= as_of, COUNTED, ~newer_open)
    )
    return list(conn.execute(newest_first(q, events.c.occurred_at, events.c.idem, after, limit)).all())


def sent_campaigns(
    conn: Connection, account: int, *, after: tuple[int, int] | None = None, limit: int = 50
) -> list[Row[Any]]:
    """Campaigns that have been sent, most recently sent first; key ``(last_sent_at, num_id)``."""
    q = select(campaigns).where(campaigns.c.account_id == account, campaigns.c.last_sent_at.is_not(None))
    q = newest_first(q, campaigns.c.last_sent_at, campaigns.c.num_id, after, limit)
    return list(conn.execute(q))


@dataclass(slots=True)
class LinkClicks:
    url_id: str
    url: str | None
    link_tag: str | None
    unique_clicks: int


def link_clicks(conn: Connection, account: int, activity_id: str) -> list[LinkClicks]:
    """Unique clickers per link URL, in url_id order; links sharing a URL are combined.

    Combined links count each contact once (from ``link_clickers``), as Constant Contact's
    links report does by default. A url_id clicked but never registered is listed alone.
    """
    registered = list(conn.execute(
        select(links.c.url_id, links.c.url, links.c.link_tag)
        .where(links.c.account_id == account, links.c.activity_id == activity_id)
    ))
    counted = {
        r.url_id: int(r.unique_clicks)
        for r in conn.execute(
            select(link_counters.c.url_id, link_counters.c.unique_clicks)
            .where(link_counters.c.account_id == account, link_counters.c.activity_id == activity_id)
        )
    }
    by_url: dict[str, list[Any]] = {}
    for r in registered:
        by_url.setdefault(r.url, []).append(r)
    out: list[LinkClicks] = []
    for url, group in by_url.items():
        ids = sorted(r.url_id for r in group)
        if len(ids) == 1:
            unique = counted.get(ids[0], 0)
        else:
            unique = int(conn.execute(
                select(func.count(func.distinct(link_clickers.c.contact_id))).where(
                    link_clickers.c.account_id == account, link_clickers.c.activity_id == activity_id,
                    link_clickers.c.url_id.in_(ids))
            ).scalar() or 0)
        tag = next((r.link_tag for r in group if r.url_id == ids[0]), None)
        out.append(LinkClicks(ids[0], url, tag, unique))
    known = {r.url_id for r in registered}
    out.extend(LinkClicks(u, None, None, n) for u, n in counted.items() if u not in known)
    out.sort(key=lambda lc: (len(lc.url_id), lc.url_id))
    return out


@dataclass(slots=True)
class ContactTally:
    """What one contact did with one activity: event counts by type, and when it was last sent."""

    activity_id: str
    last_sent_at: int
    counts: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, event_type: EventType) -> int:
        return self.counts.get(event_type.value, 0)


def contact_tallies(
    conn: Connection, account: int, contact_id: str, *, since: int, until: int, limit: int = 200
) -> list[ContactTally]:
    """Activities last sent to the contact within ``[since, until]``, most recent first.

    Counts cover the activity's whole history for the contact (an open the day after the
    range still belongs to an email sent within it). Grouped from the contact's events,
    which the ``ix_events_contact`` index keeps cheap.
    """
    rows = conn.execute(
        select(activities.c.id.label("activity_id"), events.c.type, func.count().label("n"),
               func.max(events.c.occurred_at).label("at"))
        .select_from(with_activity(events))
        .where(events.c.account_id == account, events.c.contact_num == contact_num(account, contact_id), COUNTED)
        .group_by(activities.c.id, events.c.type)
    )
    counts: dict[str, dict[str, int]] = {}
    sent: dict[str, int] = {}
    for r in rows:
        counts.setdefault(r.activity_id, {})[r.type] = int(r.n)
        if r.type == EventType.SEND.value:
            sent[r.activity_id] = int(r.at)
    tallies = [ContactTally(a, t, counts[a]) for a, t in sent.items() if since <= t <= until]
    tallies.sort(key=lambda x: (x.last_sent_at, x.activity_id), reverse=True)
    return tallies[:limit]
