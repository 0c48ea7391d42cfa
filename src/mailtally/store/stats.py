"""Per-activity and per-campaign statistics, read from the counters in O(1)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Connection, select

from .schema import COUNTER_COLUMNS, activities, activity_counters


def percent(part: int, whole: int) -> float:
    """One decimal, half up (66.65 -> 66.7), 0.0 when there is nothing to divide by."""
    if whole <= 0:
        return 0.0
    value = (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return float(value)


@dataclass(slots=True)
class Stats:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTER_COLUMNS, 0))
    last_event_at: int | None = None
    updated_at: int | None = None

    def __getitem__(self, name: str) -> int:
        return self.counts[name]

    def add(self, other: Stats) -> None:
        for k, v in other.counts.items():
            self.counts[k] += v
        for attr in ("last_event_at", "updated_at"):
            mine, theirs = getattr(self, attr), getattr(other, attr)
            if theirs is not None and (mine is None or theirs > mine):
                setattr(self, attr, theirs)

    @property
    def delivered(self) -> int:
        return self["sends"] - self["bounces"]

    def percents(self) -> dict[str, float]:
        """As BRIEF.md defines them: over delivered, clicks over opens, devices over their totals."""
        c = self.counts
        desktop_open = c["opens_computer"] + c["opens_other"]
        mobile_open = c["opens_mobile"] + c["opens_tablet"]
        desktop_click = c["clicks_computer"] + c["clicks_other"]
        mobile_click = c["clicks_mobile"] + c["clicks_tablet"]
        return {
            "bounce": percent(c["bounces"], c["sends"]),
            "click": percent(c["clicks"], c["opens"]),
            "desktop_click": percent(desktop_click, desktop_click + mobile_click),
            "desktop_open": percent(desktop_open, desktop_open + mobile_open),
            "did_not_open": percent(c["not_opened"], self.delivered),
            "mobile_click": percent(mobile_click, desktop_click + mobile_click),
            "mobile_open": percent(mobile_open, desktop_open + mobile_open),
            "open": percent(c["opens"], self.delivered),
            "unsubscribe": percent(c["optouts"], self.delivered),
        }


def activity_stats(conn: Connection, account: int, activity_ids: Iterable[str]) -> dict[str, Stats]:
    """Stats for each id that has any; ids without events are absent."""
    ids = list(activity_ids)
    out: dict[str, Stats] = {}
    for r in conn.execute(
        select(activity_counters).where(
            activity_counters.c.account_id == account, activity_counters.c.activity_id.in_(ids)
        )
    ):
        m = r._mapping
        out[r.activity_id] = Stats(
            {k: int(m[k]) for k in COUNTER_COLUMNS}, m["last_event_at"], m["updated_at"]
        )
    return out


def campaign_stats(conn: Connection, account: int, campaign_ids: Iterable[str]) -> dict[str, Stats]:
    """The sum over each campaign's activities; every asked id is present."""
    ids = list(campaign_ids)
    owners = {
        r.id: r.campaign_id
        for r in conn.execute(
            select(activities.c.id, activities.c.campaign_id).where(
                activities.c.account_id == account, activities.c.campaign_id.in_(ids)
            )
        )
    }
    out = {cid: Stats() for cid in ids}
    for activity_id, stats in activity_stats(conn, account, owners).items():
        out[owners[activity_id]].add(stats)
    return out
