"""Hand-written SQL for the writer's hot path.

SQLAlchemy's per-row parameter processing costs more than SQLite's own work at 100k
rows/s, so the writer hands tuples straight to the driver's ``executemany``. The helpers
take a SQLAlchemy ``Connection`` or a ``Tx`` (a transaction the tracking hits' writer opens
on the driver's connection itself, ``store.db.driver_writing``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection

CHUNK = 900  # below SQLite's older 999-variable limit


class Tx:
    """A write transaction on the driver's own connection: no SQLAlchemy between the caller
    and the database, whose statements here cost several times SQLite's own work for them
    (an UPDATE with RETURNING in its transaction: 95 against 21 us, measured)."""

    def __init__(self, dbapi: Any, postgres: bool):
        self.dbapi = dbapi
        self.postgres = postgres
        self.mark = "%s" if postgres else "?"

    def cursor(self) -> Any:
        return self.dbapi.cursor()


Conn = Connection | Tx


def mark(conn: Conn) -> str:
    if isinstance(conn, Tx):
        return conn.mark
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def cursor(conn: Conn) -> Any:
    """A cursor of the driver's connection under ``conn`` (close it when done)."""
    return conn.cursor() if isinstance(conn, Tx) else conn.connection.cursor()


def is_postgres(conn: Conn) -> bool:
    return conn.postgres if isinstance(conn, Tx) else conn.dialect.name == "postgresql"


def _run_many(conn: Conn, query: str, rows: list[tuple[Any, ...]]) -> int:
    cur = cursor(conn)
    try:
        cur.executemany(query, rows)
        return int(cur.rowcount)
    finally:
        cur.close()


def fetch(conn: Conn, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Plain tuples from the driver's own cursor: building result rows costs more than these lookups."""
    cur = cursor(conn)
    try:
        cur.execute(query, params)
        return list(cur.fetchall())
    finally:
        cur.close()


def select_in(
    conn: Conn, sql: str, params: Sequence[Any], values: Sequence[Any], chunk: int = CHUNK
) -> Iterator[tuple[Any, ...]]:
    """Run ``sql`` (ending in ``IN ({in})``) for each chunk of ``values``; yields rows."""
    m = mark(conn)
    for i in range(0, len(values), chunk):
        part = values[i : i + chunk]
        query = sql.replace("{p}", m).replace("{in}", ",".join([m] * len(part)))
        yield from fetch(conn, query, (*params, *part))


def select_rows_in(
    conn: Conn, sql: str, rows: Sequence[tuple[Any, ...]], params: Sequence[Any], chunk: int = CHUNK
) -> Iterator[tuple[Any, ...]]:
    """Run ``sql`` for chunks of row values: ``{values}`` becomes ``(VALUES (?, ?), ...)``, whose
    columns are ``column1``, ``column2``... on both databases; ``params`` bind after them."""
    if not rows:
        return
    m = mark(conn)
    width = len(rows[0])
    per = max(1, chunk // width)
    one = "(" + ",".join([m] * width) + ")"
    for i in range(0, len(rows), per):
        part = rows[i : i + per]
        query = sql.replace("{p}", m).replace("{values}", "(VALUES " + ",".join([one] * len(part)) + ")")
        yield from fetch(conn, query, (*(v for row in part for v in row), *params))


def insert_new(conn: Conn, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> int:
    """Insert ``rows``, skipping any whose key is already there; returns how many went in."""
    if not rows:
        return 0
    m = mark(conn)
    return _run_many(conn, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([m] * len(columns))}) "
                           "ON CONFLICT DO NOTHING", rows)


# Values bound in one statement of ``insert_values`` (SQLite takes 32,766 since 3.32): a few hundred rows.
VALUES_PER_STATEMENT = 2000


def insert_values(cur: Any, mark: str, head: str, rows: Sequence[tuple[Any, ...]], tail: str = "") -> list[Any]:
    """``head`` + ``(?, ...), (?, ...)`` + ``tail`` for chunks of ``rows``; the rows any RETURNING gives.

    Many rows a statement: a third cheaper than ``executemany`` on SQLite, which steps and
    resets the statement for every row (0.8 against 1.2 us a row of eight values, measured).
    """
    if not rows:
        return []
    width = len(rows[0])
    per = max(1, VALUES_PER_STATEMENT // width)
    one = "(" + ", ".join([mark] * width) + ")"
    full = head + ", ".join([one] * per) + tail
    out: list[Any] = []
    for i in range(0, len(rows), per):
        part = rows[i : i + per]
        cur.execute(full if len(part) == per else head + ", ".join([one] * len(part)) + tail,
                    list(itertools.chain.from_iterable(part)))
        if cur.description is not None:
            out += cur.fetchall()
    return out


def insert_many(conn: Conn, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    if rows:
        m = mark(conn)
        _run_many(conn, f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([m] * len(columns))})", rows)


def update_many(
    conn: Conn, table: str, columns: Sequence[str], keys: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Each row is the new values of ``columns`` followed by the values of ``keys``."""
    if rows:
        m = mark(conn)
        sets = ", ".join(f"{c} = {m}" for c in columns)
        where = " AND ".join(f"{k} = {m}" for k in keys)
        _run_many(conn, f"UPDATE {table} SET {sets} WHERE {where}", rows)
