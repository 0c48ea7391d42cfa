"""The tracking hits' queue on a SQLite file: answered hits, durable, not yet rolled up.

A group of a few hits written straight into the log costs several times what the same hits
cost in a group of a hundred: each transaction pays for its commit, and a transaction after
another process's starts with an empty page cache (SQLite drops its cache when the file
changed), so it reads the indexes' pages again. Here a request's hit is appended to this
queue in its group commit (one small insert, answered once durable), and queued hits are
taken off in order in bigger groups and written as any group is (``ingest.tracking``), their
rows deleted in the same transaction: a hit is applied exactly once, whoever applies it and
whenever the process dies.
"""

from __future__ import annotations

from typing import NamedTuple

from . import rawsql

_COLUMNS = ("account_id", "activity_num", "contact_num", "click", "url_id", "at", "user_agent", "ip", "scanner",
            "head")


class QueuedHit(NamedTuple):
    """A hit as it was answered: who, what, when, and what judging it will need."""

    account_id: int
    activity_num: int
    contact_num: int
    click: bool
    url_id: str | None
    at: int  # ms
    user_agent: str
    ip: str | None  # as the log keeps it
    scanner: bool
    head: bool


def append(conn: rawsql.Conn, hits: list[QueuedHit]) -> None:
    """Queue ``hits`` (in the caller's transaction)."""
    cur = rawsql.cursor(conn)
    m = rawsql.mark(conn)
    try:
        cur.executemany(f"INSERT INTO hit_queue ({', '.join(_COLUMNS)}) VALUES ({', '.join([m] * len(_COLUMNS))})",
                        hits)
    finally:
        cur.close()


def oldest(conn: rawsql.Conn, limit: int) -> tuple[list[QueuedHit], int | None]:
    """The first ``limit`` queued hits in the order they were answered, and the last one's id."""
    rows = rawsql.fetch(conn, f"SELECT id, {', '.join(_COLUMNS)} FROM hit_queue ORDER BY id LIMIT {rawsql.mark(conn)}",
                        (limit,))
    if not rows:
        return [], None
    return [QueuedHit(a, act, who, bool(c), u, at, ua, ip, bool(s), bool(h))
            for _, a, act, who, c, u, at, ua, ip, s, h in rows], int(rows[-1][0])


def drop(conn: rawsql.Conn, through: int) -> None:
    """Remove the queued hits up to id ``through`` (applied in the caller's transaction)."""
    cur = rawsql.cursor(conn)
    try:
        cur.execute(f"DELETE FROM hit_queue WHERE id <= {rawsql.mark(conn)}", (through,))
    finally:
        cur.close()


def waiting(conn: rawsql.Conn) -> bool:
    """Whether any hit is queued."""
    return bool(rawsql.fetch(conn, "SELECT 1 FROM hit_queue LIMIT 1", ()))
