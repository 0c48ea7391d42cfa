"""Planner statistics for the tables the writer probes by key (PostgreSQL; nothing on SQLite).

The writer looks rows up one key at a time (``staging.left_join_one``). Without statistics, or
with statistics taken while a table was nearly empty, PostgreSQL's estimates for any two
equality conditions round down to one row, so a secondary index sharing the key's leading
columns (``ix_recipients_sent``, ``ix_suppressions_cause``) costs the same as the primary key,
and the planner may take it: each probe then walks all of an account's rows for an activity
(measured: 0.4 ms a probe instead of 3 us, 40% of a batch's time). That is the state of a fresh
database loaded in bulk, until autovacuum comes round (a minute at least, and then only once
10% of a table has changed).

So before a batch the writer asks, in one cheap query, whether any of those tables has never
been analysed or has changed more than twice over since it last was, and if so analyses it
(``ANALYZE (SKIP_LOCKED)``: a writer that finds another one analysing goes on). Inside the
batch's transaction: the new statistics count the rows this transaction added and plan its
own statements; others see them at commit. As a table doubles at most, this runs a handful of
times over its life, each costing a sample of 30,000 rows at most.
"""

from __future__ import annotations

from sqlalchemy import Connection

# The tables the writer and its reactions read by key, in every batch.
PROBED = ("contacts", "recipients", "suppressions", "link_clickers", "activities", "event_keys")
_MIN_CHANGES = 1_000  # below this many changed rows, the default estimates do no harm

_STALE_SQL = (
    "SELECT c.relname FROM pg_class c WHERE c.oid = ANY(CAST(%s AS regclass[])) "
    "AND (c.reltuples < 0 AND pg_relation_size(c.oid) > 0 "
    "OR pg_stat_get_mod_since_analyze(c.oid) > GREATEST(%s, 2 * c.reltuples))"
)


def analyse_stale(conn: Connection, tables: tuple[str, ...] = PROBED) -> list[str]:
    """Analyse those of ``tables`` whose statistics are missing or far behind; returns them."""
    if conn.dialect.name != "postgresql":
        return []
    cur = conn.connection.cursor()
    try:
        cur.execute(_STALE_SQL, (list(tables), _MIN_CHANGES))
        stale = [str(r[0]) for r in cur.fetchall()]
        if stale:
            cur.execute("ANALYZE (SKIP_LOCKED) " + ", ".join(stale))
        return stale
    finally:
        cur.close()
