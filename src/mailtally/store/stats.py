"""Per-activity and per-campaign statistics, read from the counters in O(1)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from . import rawsql
from .schema import COUNTER_COLUMNS, activities


def percent(part: int, whole: int) -> float:
    """One decimal, half up (66.65 -> 66.7), 0.0 when there is nothing to divide by.

    In integers: tenths of a percent, ``part * 1000 / whole`` rounded half away from zero (as
    ``Decimal``'s ROUND_HALF_UP), exact for any counts and several times cheaper. Counts may come
    as ``Decimal`` (PostgreSQL's SUM of a bigint): they are whole numbers, taken as ``int``.
    """
    part, whole = int(part), int(whole)
    if whole <= 0:
        return 0.0
    tenths = (abs(part) * 2000 + whole) // (2 * whole)
    return (tenths if part >= 0 else -tenths) / 10


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


_COUNTERS = ", ".join(f"c.{k}" for k in COUNTER_COLUMNS)
# One statement, straight to the driver: building and compiling a Core select for each report
# cost more than the lookup itself (the stats call is answered thousands of times a second).
_STATS_SQL = (f"SELECT c.activity_id, {_COUNTERS}, c.last_event_at, c.updated_at FROM activity_counters c "
              "WHERE c.account_id = {p} AND c.activity_id IN ({in})")
_OWNED_SQL = (f"SELECT a.id, a.campaign_id, c.activity_id, {_COUNTERS}, c.last_event_at, c.updated_at "
              "FROM activities a LEFT JOIN activity_counters c ON c.account_id = a.account_id AND c.activity_id = a.id "
              "WHERE a.account_id = {p} AND a.id IN ({in})")
_WIDTH = len(COUNTER_COLUMNS)


def _stats_of(row: Sequence[Any]) -> Stats:
    """A Stats from the counter columns, then last_event_at and updated_at."""
    return Stats(dict(zip(COUNTER_COLUMNS, map(int, row[:_WIDTH]), strict=True)), row[_WIDTH], row[_WIDTH + 1])


def activity_stats(conn: Connection, account: int, activity_ids: Iterable[str]) -> dict[str, Stats]:
    """Stats for each id that has any; ids without events are absent."""
    return {str(r[0]): _stats_of(r[1:]) for r in rawsql.select_in(conn, _STATS_SQL, (account,), list(activity_ids))}


def owned_activity_stats(conn: Connection, account: int, activity_ids: Iterable[str]) -> dict[str, tuple[str, Stats]]:
    """The account's activities among ``activity_ids``: each one's campaign id and stats (zeros
    for an activity nothing happened to yet); other ids are absent."""
    return {str(r[0]): (str(r[1]), _stats_of(r[3:]) if r[2] is not None else Stats())
            for r in rawsql.select_in(conn, _OWNED_SQL, (account,), list(activity_ids))}


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
