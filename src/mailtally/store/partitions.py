"""The event log by month, and how long it is kept (docs/scaling.md, "When the log grows").

On PostgreSQL ``events`` is partitioned by range of ``occurred_at``, one partition a calendar
month (UTC), named ``events_YYYY_MM``. Partitions are made when an event first needs one: the
writer's insert fails for a month with no partition, and ``ensure_months`` makes it (in the
writer's transaction, so it exists exactly when the events that needed it do) and the insert
runs again. A new month costs that once; no other write or read waits for it (``ATTACH
PARTITION`` takes a lock that ordinary reads and writes do not conflict with).

Retention (``mailtally db retention``, ``MAILTALLY_EVENT_RETENTION_MONTHS``) keeps the current
month and the N before it. On PostgreSQL older months are dropped (or detached, kept as tables
of their own for archiving) whole, which costs no vacuum; on SQLite, which keeps one table,
their rows are deleted. The roll-ups (recipients, counters, hours) stay: statistics are
unchanged, the lists of old events are gone. The boundary is kept in ``instance``
(``events_kept_from``) and the writer refuses events before it, so a late replay of a removed
event is an error rather than a second count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, delete, insert, select, text

from ..timefmt import MAX_MS, MIN_MS
from .schema import instance

KEPT_FROM = "events_kept_from"  # instance key: the first millisecond the log still holds
_NAME = re.compile(r"^events_(\d{4})_(\d{2})$")
_LOCK = 0x6D74_6576_6D6F_6E74  # pg_advisory_xact_lock key: "mtevmont"


@dataclass(frozen=True, slots=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, ms: int) -> Month:
        t = datetime.fromtimestamp(ms / 1000, UTC)
        return cls(t.year, t.month)

    @property
    def name(self) -> str:
        return f"events_{self.year:04d}_{self.month:02d}"

    @property
    def start(self) -> int:
        return int(datetime(self.year, self.month, 1, tzinfo=UTC).timestamp() * 1000)

    @property
    def end(self) -> int:
        """The next month's first millisecond (excluded); year 10000 is past timefmt's range."""
        if self.year == 9999 and self.month == 12:
            return MAX_MS
        return self.next().start

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def minus(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 - months
        return Month(index // 12, index % 12 + 1)


def months_between(first_ms: int, last_ms: int) -> list[Month]:
    m, last, out = Month.of(first_ms), Month.of(last_ms), []
    while m <= last:
        out.append(m)
        m = m.next()
    return out


def is_partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.execute(text("SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('events')")).scalar()
    return bool(kind == "p")


def existing(conn: Connection) -> list[Month]:
    """The months that have a partition, oldest first."""
    rows = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('events')"
    )).scalars()
    found = [_NAME.match(name) for name in rows]
    return sorted(Month(int(m[1]), int(m[2])) for m in found if m)


def months_in(conn: Connection, table: str) -> list[Month]:
    """The months ``table``'s ``occurred_at`` values fall in (PostgreSQL), within timefmt's range."""
    utc = "(to_timestamp(occurred_at / 1000.0) AT TIME ZONE 'UTC')"
    rows = conn.execute(text(f"SELECT DISTINCT EXTRACT(YEAR FROM {utc})::int, EXTRACT(MONTH FROM {utc})::int "
                             f"FROM {table} WHERE occurred_at >= {MIN_MS} AND occurred_at < {MAX_MS}"))
    return sorted(Month(int(y), int(m)) for y, m in rows)


# Times outside timefmt's range, which the writer refuses, stored before it did (or by hand):
# two ranges of their own, so that no month's attachment ever has to look at them.
EDGES = {"events_before_range": f"FROM (MINVALUE) TO ({MIN_MS})",
         "events_after_range": f"FROM ({MAX_MS}) TO (MAXVALUE)"}


def ensure_edges(conn: Connection) -> None:
    for name, bounds in EDGES.items():
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
            conn.execute(text(f"CREATE TABLE {name} PARTITION OF events FOR VALUES {bounds}"))


def ensure_months(conn: Connection, months: Iterable[Month]) -> list[Month]:
    """Give each month a partition if it has none; returns those made. Processes making months
    take turns on one advisory lock, held to the end of the transaction (one lock, not one a
    month: two writers each holding a month and wanting the other's would deadlock)."""
    made = []
    wanted = sorted(set(months))
    if wanted:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    for m in wanted:
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": m.name}).scalar() is not None:
            continue
        # Made apart, then attached: ATTACH takes SHARE UPDATE EXCLUSIVE on ``events`` (reads
        # and writes go on), where CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE.
        conn.execute(text(f"CREATE TABLE {m.name} (LIKE events INCLUDING DEFAULTS)"))
        conn.execute(text(f"ALTER TABLE events ATTACH PARTITION {m.name} FOR VALUES FROM ({m.start}) TO ({m.end})"))
        made.append(m)
    return made


def kept_from(conn: Connection) -> int | None:
    """The first millisecond of the log retention keeps, or None when nothing was ever removed."""
    value = conn.execute(select(instance.c.value).where(instance.c.key == KEPT_FROM)).scalar()
    return int(value) if value is not None else None


@dataclass(frozen=True, slots=True)
class Retired:
    kept_from: int  # events before this millisecond are gone
    months: list[str]  # partitions dropped or detached (PostgreSQL)
    rows: int  # rows deleted (SQLite)


def retire(conn: Connection, keep_months: int, *, detach: bool = False, now_ms: int | None = None) -> Retired:
    """Remove the log's months before the current one and the ``keep_months`` before it.

    Call in a write transaction. ``detach`` (PostgreSQL) keeps each month as a table of its own,
    ``events_YYYY_MM_archive``, outside the log (to dump, then drop); otherwise it is dropped.
    """
    if keep_months < 1:
        raise ValueError("keep at least one month besides the current one")
    now = now_ms if now_ms is not None else int(datetime.now(UTC).timestamp() * 1000)
    boundary = Month.of(now).minus(keep_months).start
    before = kept_from(conn)
    if before is not None and before > boundary:
        boundary = before  # a longer setting later does not bring removed months back
    conn.execute(delete(instance).where(instance.c.key == KEPT_FROM))
    conn.execute(insert(instance).values(key=KEPT_FROM, value=str(boundary)))
    if conn.dialect.name != "postgresql":
        deleted = conn.execute(text("DELETE FROM events WHERE occurred_at < :b"), {"b": boundary}).rowcount
        return Retired(boundary, [], int(deleted))
    gone = [m for m in existing(conn) if m.end <= boundary]
    for m in gone:
        if detach:
            conn.execute(text(f"ALTER TABLE events DETACH PARTITION {m.name}"))
            conn.execute(text(f"ALTER TABLE {m.name} RENAME TO {m.name}_archive"))
        else:
            conn.execute(text(f"DROP TABLE {m.name}"))
    return Retired(boundary, [m.name for m in gone], 0)
