"""Queries the tracking dialects need beyond ``reports``: campaign-wide event lists and
per-contact tallies (Constant Contact v2's contact and campaign tracking). They list and
count what the counters count: machine hits the account's policy leaves out are not there.

Same conventions as ``reports``: newest first, keyset ``after=(occurred_at, idem)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, and_, func, select

from .reports import CONTACT_COLS, COUNTED, EVENT_COLS, Key, contact_num, newest_first, with_activity, with_contact
from .schema import activities, campaigns, events


def campaign_events(
    conn: Connection,
    account: int,
    activity_ids: Sequence[str],
    types: Sequence[str],
    *,
    since: int | None = None,
    url_id: str | None = None,
    after: Key | None = None,
    limit: int = 500,
) -> list[Row[Any]]:
    """Events of all of a campaign's activities, newest first.

    Takes the activity ids (not the campaign's) so the query stays on ``ix_events_activity``.
    """
    if not activity_ids:
        return []
    nums = list(conn.execute(select(activities.c.num_id).where(
        activities.c.account_id == account, activities.c.id.in_(list(activity_ids)))).scalars())
    q = (
        select(*EVENT_COLS, *CONTACT_COLS)
        .select_from(with_activity(events, with_contact(events)))
        .where(events.c.account_id == account, events.c.activity_num.in_(nums), events.c.type.in_(list(types)),
               COUNTED)
    )
    if since is not None:
        q = q.where(events.c.occurred_at >= since)
    if url_id is not None:
        q = q.where(events.c.url_id == url_id)
    return list(conn.execute(newest_first(q, events.c.occurred_at, events.c.idem, after, limit)))


def contact_type_counts(conn: Connection, account: int, contact_id: str) -> dict[str, int]:
    """How many events of each type one contact has, over all campaigns."""
    rows = conn.execute(
        select(events.c.type, func.count())
        .where(events.c.account_id == account, events.c.contact_num == contact_num(account, contact_id), COUNTED)
        .group_by(events.c.type)
    )
    return {str(t): int(n) for t, n in rows}


@dataclass(slots=True)
class CampaignTally:
    """One campaign's events for one contact, by type, and when the latest happened."""

    campaign_num_id: int
    last_at: int
    counts: dict[str, int] = field(default_factory=dict)


def contact_campaign_counts(conn: Connection, account: int, contact_id: str) -> list[CampaignTally]:
    """Per campaign sent to one contact: event counts by type; most recent campaign first."""
    q = (
        select(campaigns.c.num_id, events.c.type, func.count(), func.max(events.c.occurred_at))
        .select_from(
            with_activity(events)
            .join(campaigns, and_(campaigns.c.account_id == activities.c.account_id,
                                  campaigns.c.id == activities.c.campaign_id))
        )
        .where(events.c.account_id == account, events.c.contact_num == contact_num(account, contact_id), COUNTED)
        .group_by(campaigns.c.num_id, events.c.type)
    )
    tallies: dict[int, CampaignTally] = {}
    for num_id, type_, n, last in conn.execute(q):
        t = tallies.setdefault(int(num_id), CampaignTally(int(num_id), int(last)))
        t.counts[str(type_)] = int(n)
        t.last_at = max(t.last_at, int(last))
    return sorted(tallies.values(), key=lambda t: (t.last_at, t.campaign_num_id), reverse=True)

