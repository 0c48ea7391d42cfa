"""Queries only the dashboard asks: campaigns with their figures, an activity's timeline and
bounce reasons, the contacts behind each number, and account-wide bounce lists.

Lists are newest first and keyset-paginated (``after`` is the last row's key), so a page
costs the same at any depth; each list's rows are the contacts its figure counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Float, Row, and_, cast, exists, func, literal_column, or_, select, true

from ..vocab import EventType
from .db import now_ms
from .reports import COUNTED, newest_first
from .schema import (
    COUNTER_COLUMNS,
    activities,
    activity_counters,
    activity_hourly,
    api_tokens,
    campaigns,
    contacts,
    events,
    link_clickers,
    recipients,
    suppressions,
    unmatched_bounces,
)

HOUR = 3_600_000
DAY = 24 * HOUR
HOURLY_FOR = 7 * DAY
Key = tuple[int, int]

# -- campaigns ------------------------------------------------------------------------------

CAMPAIGN_FIGURES = ("sends", "bounces", "opens", "clicks", "optouts", "abuse")
_sums = {name: func.coalesce(func.sum(activity_counters.c[name]), 0).label(name) for name in CAMPAIGN_FIGURES}


def _rate(part: str, whole: Any) -> Any:
    return cast(_sums[part], Float) / func.nullif(whole, 0)


_delivered = _sums["sends"] - _sums["bounces"]
CAMPAIGN_SORTS: dict[str, Any] = {
    "name": func.lower(campaigns.c.name),
    "sent": campaigns.c.last_sent_at,
    "created": campaigns.c.created_at,
    "sends": _sums["sends"],
    "bounce_rate": _rate("bounces", _sums["sends"]),
    "open_rate": _rate("opens", _delivered),
    "click_rate": _rate("clicks", _sums["opens"]),
}


def _campaign_query(account: int, search: str | None) -> Any:
    q = (
        select(campaigns.c.id, campaigns.c.num_id, campaigns.c.name, campaigns.c.status, campaigns.c.created_at,
               campaigns.c.last_sent_at, func.count(activities.c.id).label("activities"), *_sums.values())
        .select_from(
            campaigns.outerjoin(activities, and_(activities.c.account_id == campaigns.c.account_id,
                                                 activities.c.campaign_id == campaigns.c.id))
            .outerjoin(activity_counters, and_(activity_counters.c.account_id == activities.c.account_id,
                                               activity_counters.c.activity_id == activities.c.id))
        )
        .where(campaigns.c.account_id == account)
        .group_by(campaigns.c.id, campaigns.c.num_id, campaigns.c.name, campaigns.c.status, campaigns.c.created_at,
                  campaigns.c.last_sent_at)
    )
    if search:
        q = q.where(func.lower(campaigns.c.name).contains(search.lower(), autoescape=True))
    return q


def campaign_rows(
    conn: Connection, account: int, *, search: str | None = None, sort: str = "sent", descending: bool = True,
    offset: int = 0, limit: int | None = 50,
) -> list[Row[Any]]:
    """Campaigns with their activities' figures summed; ``sort`` is a key of CAMPAIGN_SORTS."""
    key = CAMPAIGN_SORTS[sort]
    order = key.desc() if descending else key.asc()
    nulls = (key.is_(None)).asc()  # campaigns without the figure last, whichever the direction
    q = _campaign_query(account, search).order_by(nulls, order, campaigns.c.num_id.desc()).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(conn.execute(q))


def count_campaigns(conn: Connection, account: int, search: str | None = None) -> int:
    q = select(func.count()).select_from(campaigns).where(campaigns.c.account_id == account)
    if search:
        q = q.where(func.lower(campaigns.c.name).contains(search.lower(), autoescape=True))
    return int(conn.execute(q).scalar_one())


# -- one activity ---------------------------------------------------------------------------


def activity_counters_row(conn: Connection, account: int, activity_id: str) -> dict[str, int]:
    row = conn.execute(select(activity_counters).where(activity_counters.c.account_id == account,
                                                       activity_counters.c.activity_id == activity_id)).first()
    m = row._mapping if row is not None else {}
    return {name: int(m.get(name) or 0) for name in COUNTER_COLUMNS}


def first_send_at(conn: Connection, account: int, activity_num: int) -> int | None:
    value = conn.execute(
        select(recipients.c.sent_at).where(recipients.c.account_id == account,
                                           recipients.c.activity_num == activity_num,
                                           recipients.c.sent_at.is_not(None))
        .order_by(recipients.c.sent_at).limit(1)
    ).scalar()
    return int(value) if value is not None else None


@dataclass(slots=True)
class Timeline:
    """Opens and clicks per bucket: hourly for the first week from ``start``, daily after."""

    start: int
    buckets: list[int]  # bucket start times (ms)
    opens: list[int]
    clicks: list[int]

    def rows(self) -> Iterator[tuple[int, int, int, bool]]:
        """(bucket start, opens, clicks, hourly?) for each bucket."""
        for t, o, c in zip(self.buckets, self.opens, self.clicks, strict=True):
            yield t, o, c, t < self.start + HOURLY_FOR

    def periods(self) -> Iterator[tuple[int, int, int, bool, int | None, int | None]]:
        """Each bucket's row with the times its events fall in, [since, until) (None: open-ended):
        the first bucket also holds anything before the first send, the last everything after."""
        n = len(self.buckets)
        for i, (t, o, c, hourly) in enumerate(self.rows()):
            yield t, o, c, hourly, (t if i else None), (self.buckets[i + 1] if i + 1 < n else None)


def bucket_start(start: int, t: int) -> int:
    if t < start + HOURLY_FOR:
        return start + max(0, (t - start)) // HOUR * HOUR
    return start + HOURLY_FOR + (t - start - HOURLY_FOR) // DAY * DAY


def timeline(conn: Connection, account: int, activity_num: int, start: int | None) -> Timeline:
    """From the hourly roll-up: the first week's hours as they are, later hours summed by day."""
    if start is None:
        return Timeline(0, [], [], [])
    start = start - start % HOUR
    opens: dict[int, int] = {}
    clicks: dict[int, int] = {}
    rows = conn.execute(select(activity_hourly.c.hour, activity_hourly.c.opens, activity_hourly.c.clicks)
                        .where(activity_hourly.c.account_id == account, activity_hourly.c.activity_num == activity_num))
    for hour, o, c in rows:
        b = bucket_start(start, max(int(hour), start))  # anything before the first send counts in its hour
        opens[b] = opens.get(b, 0) + int(o)
        clicks[b] = clicks.get(b, 0) + int(c)
    if not opens:
        return Timeline(start, [], [], [])
    last = max(opens)
    buckets: list[int] = []
    b = start
    while b <= last:
        buckets.append(b)
        b += HOUR if b < start + HOURLY_FOR else DAY
    return Timeline(start, buckets, [opens.get(b, 0) for b in buckets], [clicks.get(b, 0) for b in buckets])


def hourly_totals(conn: Connection, account: int, activity_num: int, since: int | None,
                  until: int | None) -> tuple[int, int]:
    """The roll-up's (opens, clicks) of the hours in [since, until): a bucket of the chart."""
    h = activity_hourly.c
    q = select(func.coalesce(func.sum(h.opens), 0), func.coalesce(func.sum(h.clicks), 0)).where(
        h.account_id == account, h.activity_num == activity_num)
    if since is not None:
        q = q.where(h.hour >= since)
    if until is not None:
        q = q.where(h.hour < until)
    opens, clicks = conn.execute(q).one()
    return int(opens), int(clicks)


def bounce_reasons(conn: Connection, account: int, activity_num: int) -> list[tuple[str, str | None, int]]:
    """Bounce events (each bounce message, as the bounce reports list them) by reason: (reason, code, n).

    Grouped straight off the log's (activity, type) key range: no join, so a re-classified
    event moves to its new reason at once."""
    q = (
        select(events.c.reason, events.c.bounce_code, func.count())
        .where(events.c.account_id == account, events.c.activity_num == activity_num,
               events.c.type == literal_column("'bounce'"))
        .group_by(events.c.reason, events.c.bounce_code)
        .order_by(func.count().desc(), events.c.reason)
    )
    return [(str(r or "undefined"), c, int(n)) for r, c, n in conn.execute(q)]


def _first_of(kind: EventType, at: Any, account: int, activity_num: int) -> Any:
    """Events of ``kind`` that are their recipient's one, as the recipient row's ``at`` keeps it
    (the earliest bounce, the opt-out, the complaint): the log's rows the counters count."""
    return events.join(recipients, and_(
        recipients.c.account_id == events.c.account_id, recipients.c.activity_num == events.c.activity_num,
        recipients.c.contact_num == events.c.contact_num, at == events.c.occurred_at,
        events.c.account_id == account, events.c.activity_num == activity_num,
        events.c.type == literal_column(f"'{kind.value}'")))


# -- the contacts behind a number --------------------------------------------------------------

# What each figure of an activity counts, and so which contacts its link lists.
CONTACT_LISTS = ("sends", "delivered", "opens", "opens_all", "opens_device", "opens_verdict", "did_not_open", "clicks",
                 "clicks_all", "link", "clicks_device", "clicks_verdict", "forwards", "optouts", "abuse", "bounces")
_CONTACT = (contacts.c.id.label("contact_id"), contacts.c.email, contacts.c.first_name, contacts.c.last_name)


@dataclass(frozen=True, slots=True)
class ListFilter:
    kind: str
    code: str | None = None
    reason: str | None = None
    device: str | None = None
    url_ids: tuple[str, ...] = ()
    verdict: str | None = None
    since: int | None = None  # opens_all, clicks_all: those of a period (a bucket of the chart), [since, until)
    until: int | None = None


def _event_list(account: int, num: int, kind: EventType, *extra: Any, source: Any = None) -> tuple[Any, Any, Any]:
    q = (
        select(*_CONTACT, events.c.occurred_at.label("at"), events.c.idem.label("tie"), events.c.device_type,
               events.c.url_id, events.c.reason, events.c.bounce_code, events.c.diagnostic, events.c.verdict,
               events.c.verdict_why)
        .select_from((events if source is None else source).join(
            contacts, and_(contacts.c.account_id == events.c.account_id, contacts.c.num_id == events.c.contact_num)))
        .where(events.c.account_id == account, events.c.activity_num == num,
               events.c.type == literal_column(f"'{kind.value}'"), *extra)
    )
    return q, events.c.occurred_at, events.c.idem


def _recipient_list(account: int, num: int, time_col: Any, *extra: Any) -> tuple[Any, Any, Any]:
    q = (
        select(*_CONTACT, time_col.label("at"), recipients.c.contact_num.label("tie"), recipients.c.bounce_code,
               recipients.c.last_open_device.label("device_type"))
        .select_from(recipients.join(contacts, and_(contacts.c.account_id == recipients.c.account_id,
                                                    contacts.c.num_id == recipients.c.contact_num)))
        .where(recipients.c.account_id == account, recipients.c.activity_num == num, time_col.is_not(None), *extra)
    )
    return q, time_col, recipients.c.contact_num


def _first_of_kind(kind: EventType) -> Any:
    """The event is its contact's first of ``kind`` in the activity (the one unique counts count)."""
    earlier = events.alias("earlier")
    return ~exists(select(earlier.c.idem).where(
        earlier.c.account_id == events.c.account_id, earlier.c.contact_num == events.c.contact_num,
        func.coalesce(earlier.c.activity_num, 0) == events.c.activity_num,
        func.coalesce(earlier.c.type, "") == kind.value, earlier.c.uncounted.is_(None),
        earlier.c.occurred_at <= events.c.occurred_at,
        or_(earlier.c.occurred_at < events.c.occurred_at, earlier.c.idem < events.c.idem)))


def _list_query(account: int, num: int, f: ListFilter) -> tuple[Any, Any, Any]:
    # Lists of opens, clicks and forwards hold what their figures count: the machine hits the
    # account's policy leaves out of the counters (``COUNTED``) are only in the verdict lists.
    r = recipients.c
    if f.kind == "sends":
        return _recipient_list(account, num, r.sent_at)
    if f.kind == "delivered":
        return _recipient_list(account, num, r.sent_at, r.bounced_at.is_(None))
    if f.kind == "did_not_open":
        return _recipient_list(account, num, r.sent_at, r.bounced_at.is_(None), r.first_open_at.is_(None))
    if f.kind == "opens":
        return _recipient_list(account, num, r.last_open_at)
    if f.kind == "optouts":
        return _event_list(account, num, EventType.OPTOUT,
                           source=_first_of(EventType.OPTOUT, r.optout_at, account, num))
    if f.kind == "abuse":
        return _event_list(account, num, EventType.ABUSE, source=_first_of(EventType.ABUSE, r.abuse_at, account, num))
    if f.kind in ("opens_all", "clicks_all"):
        window = ([events.c.occurred_at >= f.since] if f.since is not None else []) + (
            [events.c.occurred_at < f.until] if f.until is not None else [])
        return _event_list(account, num, EventType.OPEN if f.kind == "opens_all" else EventType.CLICK, COUNTED,
                           *window)
    if f.kind == "opens_device":
        return _event_list(account, num, EventType.OPEN, _device(f.device), COUNTED)
    if f.kind == "clicks_device":
        return _event_list(account, num, EventType.CLICK, _device(f.device), COUNTED)
    if f.kind == "opens_verdict":
        return _event_list(account, num, EventType.OPEN, events.c.verdict == f.verdict)
    if f.kind == "clicks_verdict":
        return _event_list(account, num, EventType.CLICK, events.c.verdict == f.verdict)
    if f.kind == "forwards":
        return _event_list(account, num, EventType.FORWARD, COUNTED)
    if f.kind == "clicks":
        return _event_list(account, num, EventType.CLICK, COUNTED, _first_of_kind(EventType.CLICK))
    if f.kind == "link":
        clicked_here = exists(select(link_clickers.c.url_id).where(
            link_clickers.c.account_id == account, link_clickers.c.contact_id == contacts.c.id,
            link_clickers.c.activity_id == select(activities.c.id).where(
                activities.c.account_id == account, activities.c.num_id == num).scalar_subquery(),
            link_clickers.c.url_id.in_(list(f.url_ids))))
        # Each clicker once: their latest click on any of the link's url ids.
        later = events.alias("later")
        newer = exists(select(later.c.idem).where(
            later.c.account_id == events.c.account_id, later.c.contact_num == events.c.contact_num,
            func.coalesce(later.c.activity_num, 0) == events.c.activity_num,
            func.coalesce(later.c.type, "") == EventType.CLICK.value, later.c.url_id.in_(list(f.url_ids)),
            later.c.uncounted.is_(None), later.c.occurred_at >= events.c.occurred_at,
            or_(later.c.occurred_at > events.c.occurred_at, later.c.idem > events.c.idem)))
        return _event_list(account, num, EventType.CLICK, events.c.url_id.in_(list(f.url_ids)), COUNTED, clicked_here,
                           ~newer)
    if f.kind == "bounces" and f.reason:
        # As the reasons table counts: every bounce event with that reason (and code).
        extra = [events.c.reason == f.reason] + ([events.c.bounce_code == f.code] if f.code else [])
        return _event_list(account, num, EventType.BOUNCE, *extra)
    if f.kind == "bounces":
        # As the counters count: each recipient's bounce, by the code it has.
        # (a bounce event without a code counts as X, as the writer counts it)
        extra = [func.coalesce(events.c.bounce_code, "X") == f.code] if f.code else []
        return _event_list(account, num, EventType.BOUNCE, *extra,
                           source=_first_of(EventType.BOUNCE, r.bounced_at, account, num))
    raise ValueError(f"unknown list {f.kind!r}")


def _device(device: str | None) -> Any:
    if device in (None, "none"):
        return events.c.device_type.is_(None) | (events.c.device_type == "none")
    return events.c.device_type == device


def activity_contacts(
    conn: Connection, account: int, activity_num: int, f: ListFilter, *, after: Key | None = None,
    limit: int | None = 50,
) -> list[Row[Any]]:
    """The contacts a figure of the activity counts, newest first; key ``(at, tie)``."""
    q, time_col, tie_col = _list_query(account, activity_num, f)
    if limit is None:
        cond = None if after is None else or_(time_col < after[0], and_(time_col == after[0], tie_col < after[1]))
        q = q.where(cond if cond is not None else true()).order_by(time_col.desc(), tie_col.desc())
        return list(conn.execute(q))
    return list(conn.execute(newest_first(q, time_col, tie_col, after, limit)))


def iter_all(fetch: Any, key: Any, page: int = 2000) -> Iterator[Row[Any]]:
    """Every row of a keyset list, a page at a time: ``fetch(after, limit)``; ``key(row)``."""
    after = None
    while True:
        rows = fetch(after, page)
        yield from rows
        if len(rows) < page:
            return
        after = key(rows[-1])


# -- account-wide bounces ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BounceFilter:
    reason: str | None = None
    code: str | None = None
    domain: str | None = None
    since: int | None = None
    until: int | None = None


@dataclass(slots=True)
class BouncePage:
    rows: list[Row[Any]]
    next: Key | None  # where the next page starts (after this key); None at the end
    scanned_to: int | None = None  # a windowed page (domain filter): how far back it looked


# A domain filter cannot be read off an index (it is the contact's address): a page reads at
# most this many bounces, newest first, and the next page carries on from where it stopped.
DOMAIN_WINDOW = 2000


def _bounce_rows() -> Any:
    """Bounce events with their contact, activity and campaign: the rows of every bounce list."""
    return (
        select(*_CONTACT, events.c.occurred_at.label("at"), events.c.idem.label("tie"), events.c.reason,
               events.c.bounce_code, events.c.dsn_status, events.c.reply_code, events.c.diagnostic,
               events.c.remote_mta, activities.c.id.label("activity_id"), campaigns.c.id.label("campaign_id"),
               campaigns.c.name.label("campaign_name"))
        .select_from(
            events.join(contacts, and_(contacts.c.account_id == events.c.account_id,
                                       contacts.c.num_id == events.c.contact_num))
            .join(activities, and_(activities.c.account_id == events.c.account_id,
                                   activities.c.num_id == events.c.activity_num))
            .join(campaigns, and_(campaigns.c.account_id == activities.c.account_id,
                                  campaigns.c.id == activities.c.campaign_id))
        )
    )


def bounce_detail(conn: Connection, account: int, activity_num: int, occurred_at: int, idem: int) -> Row[Any] | None:
    """One bounce by its key, as the bounce list shows it."""
    row: Row[Any] | None = conn.execute(_bounce_rows().where(
        events.c.account_id == account, events.c.activity_num == activity_num,
        events.c.type == literal_column("'bounce'"), events.c.occurred_at == occurred_at,
        events.c.idem == idem)).first()
    return row


def bounces(
    conn: Connection, account: int, f: BounceFilter, *, after: Key | None = None, limit: int = 50,
) -> BouncePage:
    """Bounce events across the account (every one, as the bounce reports list them), newest first.

    Reason, code and date filters seek their indexes; a domain filter looks through a window
    of ``DOMAIN_WINDOW`` bounces per page, so a page costs the same however rare the domain."""
    conds = [events.c.account_id == account, events.c.type == literal_column("'bounce'")]
    if f.reason:
        conds.append(events.c.reason == f.reason)
    if f.code:
        conds.append(events.c.bounce_code == f.code)
    if f.since is not None:
        conds.append(events.c.occurred_at >= f.since)
    if f.until is not None:
        conds.append(events.c.occurred_at < f.until)
    floor: Key | None = None
    if f.domain:
        window = newest_first(select(events.c.occurred_at, events.c.idem).where(*conds),
                              events.c.occurred_at, events.c.idem, after, 1).offset(DOMAIN_WINDOW - 1)
        found = conn.execute(window).first()
        if found is not None:
            floor = (int(found[0]), int(found[1]))
            conds.append(or_(events.c.occurred_at > floor[0],
                             and_(events.c.occurred_at == floor[0], events.c.idem >= floor[1])))
        conds.append(contacts.c.email.endswith("@" + f.domain.lower(), autoescape=True))
    q = _bounce_rows().where(*conds)
    rows = list(conn.execute(newest_first(q, events.c.occurred_at, events.c.idem, after, limit + 1)))
    if len(rows) > limit:
        rows = rows[:limit]
        return BouncePage(rows, (rows[-1].at, rows[-1].tie), floor[0] if floor else None)
    # A window that was full may have more beyond it: carry on from its oldest bounce.
    return BouncePage(rows, floor, floor[0] if floor else None)


def iter_bounces(conn: Connection, account: int, f: BounceFilter, page: int = 2000) -> Iterator[Row[Any]]:
    """Every bounce the filter matches, a page at a time."""
    after: Key | None = None
    while True:
        found = bounces(conn, account, f, after=after, limit=page)
        yield from found.rows
        if found.next is None:
            return
        after = found.next


def unmatched(conn: Connection, account: int, *, after: Key | None = None, limit: int = 50) -> list[Row[Any]]:
    """Bounces that matched no send, newest first; key ``(received_at, id)``."""
    q = select(unmatched_bounces).where(unmatched_bounces.c.account_id == account)
    return list(conn.execute(newest_first(q, unmatched_bounces.c.received_at, unmatched_bounces.c.id, after, limit)))


# -- contacts -------------------------------------------------------------------------------


def find_contacts(conn: Connection, account: int, prefix: str, *, after: str | None = None,
                  limit: int = 50) -> list[Row[Any]]:
    """Contacts whose address starts with ``prefix``, in address order (the unique index's)."""
    prefix = prefix.strip().lower()
    q = select(contacts.c.id, contacts.c.email, contacts.c.first_name, contacts.c.last_name,
               contacts.c.created_at, contacts.c.deleted_at).where(contacts.c.account_id == account)
    if prefix:
        q = q.where(contacts.c.email >= prefix, contacts.c.email < prefix + "\U0010ffff")
    if after is not None:
        q = q.where(contacts.c.email > after)
    return list(conn.execute(q.order_by(contacts.c.email).limit(limit)))


def contact_ids_by_email(conn: Connection, account: int, emails: list[str]) -> dict[str, str]:
    """The contact id of each of these addresses that is a contact (a page's worth)."""
    if not emails:
        return {}
    rows = conn.execute(select(contacts.c.email, contacts.c.id).where(
        contacts.c.account_id == account, contacts.c.email.in_(sorted(set(emails)))))
    return {r.email: r.id for r in rows}


# -- suppressions ---------------------------------------------------------------------------


def suppression_counts(conn: Connection, account: int) -> dict[str, int]:
    """Live entries on the list by reason (what ``GET /v1/suppressions?reason=`` pages through)."""
    t = now_ms()
    rows = conn.execute(select(suppressions.c.reason, func.count()).where(
        suppressions.c.account_id == account,
        or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > t)).group_by(suppressions.c.reason))
    return {str(reason): int(n) for reason, n in rows}


# -- API tokens -----------------------------------------------------------------------------


def list_tokens(conn: Connection, account: int) -> list[Row[Any]]:
    return list(conn.execute(
        select(api_tokens.c.token_hash, api_tokens.c.name, api_tokens.c.scopes, api_tokens.c.created_at)
        .where(api_tokens.c.account_id == account).order_by(api_tokens.c.created_at.desc(), api_tokens.c.name)))


def revoke_token(conn: Connection, account: int, token_hash: str) -> bool:
    result = conn.execute(api_tokens.delete().where(api_tokens.c.account_id == account,
                                                    api_tokens.c.token_hash == token_hash))
    return bool(result.rowcount)
