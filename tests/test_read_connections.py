"""Report reads on kept connections (store.db.ReadConnections): on a SQLite file a connection is
reused across requests, yet no request sees an older state than the last commit, none holds a
snapshot once it is done (the WAL could not be checkpointed), and two reads at once never
share one. On PostgreSQL each read comes from the pool."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mailtally.store.db import ReadConnections, open_engine


def _table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS tally (n INTEGER)"))
        conn.execute(text("DELETE FROM tally"))


def _count(readers: ReadConnections) -> int:
    with readers.connect() as conn:
        conn.execute(text("SELECT 1"))  # a statement of SQLAlchemy's: the transaction begins
        return int(conn.execute(text("SELECT COUNT(*) FROM tally")).scalar_one())


@pytest.fixture
def sqlite_readers(tmp_path: Path) -> Iterator[ReadConnections]:
    engine = open_engine(f"sqlite:///{tmp_path / 'r.db'}")
    _table(engine)
    readers = ReadConnections(engine)
    yield readers
    readers.close()
    engine.dispose()


def test_a_kept_connection_sees_every_commit_and_holds_no_snapshot(sqlite_readers: ReadConnections) -> None:
    readers, engine = sqlite_readers, sqlite_readers.engine
    with readers.connect() as first:
        kept = first.connection.dbapi_connection
    assert _count(readers) == 0
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO tally VALUES (1), (2)"))
    assert _count(readers) == 2  # not the snapshot of the read before
    with readers.connect() as again:
        assert again.connection.dbapi_connection is kept
        assert not again.in_transaction()
    # No reader holds the WAL: a full checkpoint completes (busy = 0).
    with engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    assert busy == 0


def test_two_reads_at_once_get_two_connections(sqlite_readers: ReadConnections) -> None:
    with sqlite_readers.connect() as a, sqlite_readers.connect() as b:
        assert a is not b
        assert a.connection.dbapi_connection is not b.connection.dbapi_connection


def test_a_failed_read_leaves_no_transaction_behind(sqlite_readers: ReadConnections) -> None:
    with pytest.raises(Exception, match="no_such_table"), sqlite_readers.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    with sqlite_readers.connect() as conn:
        assert not conn.in_transaction()
    assert _count(sqlite_readers) == 0


def test_postgres_reads_come_from_the_pool(postgres_database: str) -> None:
    engine = open_engine(postgres_database)
    readers = ReadConnections(engine)
    try:
        with readers.connect() as first:
            first.execute(text("SELECT 1"))
        assert engine.pool.checkedout() == 0  # given back: the pool (with its ping) hands out the next
    finally:
        readers.close()
        engine.dispose()
