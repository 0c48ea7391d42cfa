"""The writer's staging tables: a batch goes in as rows, then set-based SQL takes over.

Both are temporary tables of the connection (SQLite ``temp``, PostgreSQL ``pg_temp``), so
concurrent writers never see each other's rows, and they are emptied for every batch.

- ``mt_stage``: the batch's new events, one row each, with the contact already resolved to
  its number (``-1`` when the contact does not exist). Keyed by recipient, type and time, so
  a recipient's events sit together in time order: grouping and "the latest open" are reads
  down the key, not sorts.
- ``mt_agg``: one row per recipient the batch touches, its events folded.

Rows reach ``mt_stage`` by the cheapest road each database has, multi-row ``INSERT ... VALUES``
on SQLite (``rawsql.insert_values``) and ``COPY`` on PostgreSQL, into the unkeyed
``mt_stage_in``; one joined ``INSERT ... SELECT`` then resolves the contacts.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from . import rawsql

# The staged event: its batch index ``n``, then the log's columns. The caller's tuples give
# ``contact_id`` (the UUID) where the table has ``contact_num``.
STAGE_COLUMNS = (
    "n", "type", "activity_num", "contact_num", "occurred_at", "idem", "device_type", "url_id",
    "reason", "bounce_code", "hard", "dsn_status", "reply_code", "diagnostic", "remote_mta",
    "optout_source", "optout_reason", "user_agent", "ip", "since_send_s", "verdict", "verdict_why",
    "uncounted",  # TRUE: a machine hit the account's policy keeps out of the vendor counters
)
_TYPES = {
    "n": "BIGINT", "activity_num": "BIGINT", "contact_num": "BIGINT", "occurred_at": "BIGINT", "idem": "BIGINT",
    "hard": "BOOLEAN", "since_send_s": "BIGINT", "uncounted": "BOOLEAN",
}
_KEY = "activity_num, contact_num, type, occurred_at, n"


def left_join_one(table: str, alias: str, on: str) -> str:
    """A LEFT JOIN of the one row of ``table`` found by key: a lookup per outer row.

    On PostgreSQL a LATERAL subquery, so the plan stays a probe of the key whatever the
    statistics say (a hash join would read all of an account's rows for each batch); SQLite's
    LEFT JOIN always keeps the left side outer.
    """
    return f"{{join {table} {alias} {on}}}"


def join_each(table: str, alias: str, on: str) -> str:
    """A JOIN of the rows of ``table`` found by key for each outer row, in that order: the
    probe of ``left_join_one`` for several rows. On PostgreSQL a LATERAL subquery kept from
    being pulled up (``OFFSET 0``): without statistics on a temporary table the planner put it
    outside, reading the other side whole for each of its rows; SQLite's CROSS JOIN keeps the order."""
    return f"{{each {table} {alias} {on}}}"


@functools.lru_cache(maxsize=512)
def expand(sql: str, dialect: str) -> str:
    """Dialect spellings in the writer's SQL: joins from ``left_join_one``, ``{p}`` marks (cached:
    the same few statements run for every batch)."""
    def join(m: re.Match[str]) -> str:
        table, alias, on = m[1], m[2], m[3]
        if dialect == "sqlite":
            return f"LEFT JOIN {table} {alias} ON {on}"
        return f"LEFT JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {on} LIMIT 1) {alias} ON true"

    def each(m: re.Match[str]) -> str:
        table, alias, on = m[1], m[2], m[3]
        if dialect == "sqlite":
            return f"CROSS JOIN {table} {alias} ON {on}"
        return f"JOIN LATERAL (SELECT * FROM {table} {alias} WHERE {on} OFFSET 0) {alias} ON true"

    sql = _EACH.sub(each, _JOIN.sub(join, sql))
    return sql.replace("{p}", "?" if dialect == "sqlite" else "%s")


_JOIN = re.compile(r"\{join (\w+) (\w+) ((?:[^{}]|\{p\})+)\}")
_EACH = re.compile(r"\{each (\w+) (\w+) ((?:[^{}]|\{p\})+)\}")


def _columns(names: Sequence[str], rename: dict[str, str] | None = None) -> str:
    rename = rename or {}
    return ", ".join(f"{rename.get(c, c)} {_TYPES.get(rename.get(c, c), 'TEXT')}" for c in names)


def prepare(conn: Connection, agg_columns: Sequence[tuple[str, str]]) -> None:
    """Create the staging tables for this connection if needed, and empty them."""
    agg = ", ".join(f"{name} {kind}" for name, kind in agg_columns)
    inn = _columns(STAGE_COLUMNS, {"contact_num": "contact_id"})
    stage = f"{_columns(STAGE_COLUMNS)}, PRIMARY KEY ({_KEY})"
    agg = f"activity_num BIGINT, contact_num BIGINT, {agg}, PRIMARY KEY (activity_num, contact_num)"
    cur = conn.connection.cursor()
    try:
        if conn.dialect.name == "sqlite":
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS mt_stage_in ({inn})")
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS mt_stage ({stage}) WITHOUT ROWID")
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS mt_agg ({agg}) WITHOUT ROWID")
            for table in ("mt_stage_in", "mt_stage", "mt_agg"):
                cur.execute(f"DELETE FROM temp.{table}")
        else:
            # One round trip. ON COMMIT DELETE ROWS empties them at every commit; the DELETEs
            # are for a second batch in one transaction.
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS mt_stage_in ({inn}) ON COMMIT DELETE ROWS; "
                f"CREATE TEMP TABLE IF NOT EXISTS mt_stage ({stage}) ON COMMIT DELETE ROWS; "
                f"CREATE TEMP TABLE IF NOT EXISTS mt_agg ({agg}) ON COMMIT DELETE ROWS; "
                "DELETE FROM mt_stage_in; DELETE FROM mt_stage; DELETE FROM mt_agg"
            )
    finally:
        cur.close()


def load(conn: Connection, account: int, *groups: list[tuple[Any, ...]]) -> None:
    """Put the rows in ``mt_stage``; each is the first columns of ``STAGE_COLUMNS`` (as many as
    the rows of its group have; the rest stay NULL), with the contact's UUID in place of its number.

    They go into the unkeyed ``mt_stage_in`` first, then across with the contacts joined: one
    join costs less than a lookup per row.
    """
    inn = ["contact_id" if c == "contact_num" else c for c in STAGE_COLUMNS]
    cur = conn.connection.cursor()
    try:
        for rows in groups:
            if not rows:
                continue
            width = len(rows[0])
            if conn.dialect.name == "sqlite":
                rawsql.insert_values(cur, "?", f"INSERT INTO temp.mt_stage_in ({', '.join(inn[:width])}) VALUES ", rows)
            else:
                with cur.copy(f"COPY mt_stage_in ({', '.join(inn[:width])}) FROM STDIN") as copy:
                    write = copy.write_row
                    for row in rows:
                        write(row)
        picked = ", ".join("COALESCE(c.num_id, -1)" if c == "contact_num" else f"i.{c}" for c in STAGE_COLUMNS)
        found = left_join_one("contacts", "c", f"c.account_id = {int(account)} AND c.id = i.contact_id")
        cur.execute(expand(f"INSERT INTO mt_stage ({', '.join(STAGE_COLUMNS)}) SELECT {picked} "
                           f"FROM mt_stage_in i {found}", conn.dialect.name))
    finally:
        cur.close()
