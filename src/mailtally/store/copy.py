"""Copying a whole mailtally database to another one (SQLite to PostgreSQL, typically).

Rows keep their ids, so every reference between tables, every token and every signed
cursor or VERP address (given the same MAILTALLY_SECRET) stays valid after the move.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func, insert, select, text

from . import hit_journal, migrate, partitions
from .db import writing
from .schema import accounts, metadata

CHUNK = 5_000


class TargetNotEmpty(RuntimeError):
    pass


class HitsJournaled(RuntimeError):
    """The source holds tracking hits not yet rolled up (``store.hit_journal``): only a server,
    with its tracking settings, judges them."""


def _journaled(source: Engine) -> bool:
    """Whether the SQLite source has answered tracking hits that are not in its log yet."""
    db = str(source.url.database)
    if not hit_journal.files(db):
        return False
    with source.connect() as conn:
        return hit_journal.waiting(conn, db) > 0


def copy_database(source: Engine, target: Engine, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Copy every table of ``source`` into the (migrated, empty) ``target``; returns rows per table."""
    if source.dialect.name == "sqlite" and source.url.database and _journaled(source):
        raise HitsJournaled("tracking hits in the source are answered but not yet rolled up: start `mailtally serve` "
                         "on it and stop it (that applies them), then copy again")
    migrate.upgrade(target)
    with target.connect() as conn:
        if conn.execute(select(func.count()).select_from(accounts)).scalar_one():
            raise TargetNotEmpty("the target database already has accounts; copy into an empty database")
    counts: dict[str, int] = {}
    with source.connect() as src, writing(target) as dst:
        for table in metadata.sorted_tables:
            n = 0
            result = src.execution_options(stream_results=True, yield_per=CHUNK).execute(select(table))
            by_month = table.name == "events" and partitions.is_partitioned(dst)
            for part in result.partitions(CHUNK):
                if by_month:  # the log's months, made as the rows come (store/partitions.py)
                    partitions.ensure_months(dst, {partitions.Month.of(r.occurred_at) for r in part})
                dst.execute(insert(table), [dict(r._mapping) for r in part])
                n += len(part)
                if progress:
                    progress(table.name, n)
            counts[table.name] = n
        if target.dialect.name == "postgresql":
            # Rows came with their ids: move the accounts sequence past them.
            dst.execute(text("SELECT setval(pg_get_serial_sequence('accounts', 'id'), "
                             "GREATEST((SELECT max(id) FROM accounts), 1))"))
    return counts
