"""Opening a database: SQLite (WAL) by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import os
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from .rawsql import Tx
from .write_gate import StoreBusy, WriteGate

__all__ = ["ReadConnections", "StoreBusy", "driver_writing", "open_engine", "writing"]


def normalise_url(url: str) -> str:
    """Accept the usual spellings: ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def open_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        memory = parsed.database in (None, "", ":memory:")
        if not memory and parsed.database and not parsed.database.startswith("file:"):
            private_files(parsed.database)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=NullPool if memory else None,
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun by the listener below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-262144")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front: a deferred one that read first
            # fails at once ("database is locked") when another writer committed meanwhile.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.pop(_WRITE, False) else "BEGIN")

        if not memory and parsed.database and not parsed.database.startswith("file:"):
            _GATES[engine] = WriteGate(parsed.database)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, **kwargs)


_WRITE = "mailtally_write"


def private_files(path: str) -> None:
    """Create the database file 0600 (SQLite gives its -wal and -shm files the same mode) and
    take group and other access from existing ones: the signing secret may live inside."""
    # Only a missing file is opened here. Closing any descriptor of a file drops every POSIX lock
    # this process holds on it, SQLite's among them: another process could then take the database
    # for unused, checkpoint and delete its WAL under our open connections (a corrupt database).
    if not os.path.exists(path):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            pass  # created meanwhile by another process: its mode is handled below
        except OSError:
            return  # a directory we cannot write to: SQLite's own error is the clearer one
    for name in (path, path + "-wal", path + "-shm"):
        try:
            st = os.stat(name)
            if st.st_mode & 0o077 and st.st_uid == os.getuid():
                os.chmod(name, st.st_mode & 0o700)
        except OSError:
            pass


_GATES: weakref.WeakKeyDictionary[Engine, WriteGate] = weakref.WeakKeyDictionary()


def set_write_wait(engine: Engine, seconds: float) -> None:
    """How long a write may wait for its turn before StoreBusy (SQLite files only)."""
    gate = _GATES.get(engine)
    if gate is not None:
        gate.wait_seconds = seconds


# With its turn held, a writer finds SQLite's lock taken only by a program outside mailtally's
# turns; the tracking hits' writes, which run on the event loop, wait for it this long at most.
HELD_TURN_BUSY_SECONDS = 1.0


def gate_of(engine: Engine) -> WriteGate | None:
    """The turns of writers of this SQLite file (None for other databases)."""
    return _GATES.get(engine)


@contextmanager
def writing(engine: Engine, *, bulk: bool = False, held: Connection | None = None,
            has_turn: bool = False) -> Iterator[Connection]:
    """A transaction that writes: ``engine.begin()``, taking SQLite's write lock at its start.

    On a SQLite file, writers of every process take turns (``write_gate``), small ones first
    (``bulk``: a big batch, which lets them pass); a write that cannot get the database in
    time raises ``StoreBusy`` and writes nothing. ``held``: a connection the caller keeps
    between transactions (a writer thread's own), instead of one from the pool each time.
    ``has_turn``: the caller already holds its turn (``WriteGate.take``).
    """
    gate = _GATES.get(engine)
    if gate is None:
        with nullcontext(held) if held is not None else engine.connect() as conn:
            if is_sqlite(engine):
                conn.info[_WRITE] = True
            with conn.begin():
                yield conn
        return
    with _turn(gate, bulk, has_turn) as left, nullcontext(held) if held is not None else engine.connect() as conn:
        conn.info[_WRITE] = True
        # Another program may hold the lock: SQLite's own wait ends with ours. (On the driver's
        # connection: a statement through SQLAlchemy would begin the transaction early.)
        conn.connection.dbapi_connection.execute(f"PRAGMA busy_timeout={int(left * 1000)}")  # type: ignore[union-attr]
        try:
            with conn.begin():
                yield conn
        except OperationalError as e:
            busy = _busy(e)
            if busy is None:
                raise
            raise busy from e


def _turn(gate: WriteGate | None, bulk: bool, has_turn: bool) -> Any:
    """The writer's turn: a context giving the seconds SQLite may wait for its lock (no turns to
    take without a gate, or when the caller holds one)."""
    return gate.turn(bulk) if gate is not None and not has_turn else nullcontext(HELD_TURN_BUSY_SECONDS)


def _busy(e: Exception) -> StoreBusy | None:
    """SQLite's "database is locked" as ``StoreBusy`` (None for any other error)."""
    if "locked" in str(e) or "busy" in str(e):
        return StoreBusy("the database is locked by another writer")
    return None


@contextmanager
def driver_writing(engine: Engine, held: Connection, *, has_turn: bool = False) -> Iterator[Tx]:
    """``writing`` on the driver's own connection under ``held``, SQLAlchemy left out: for the
    tracking hits' groups, a few small statements each, where SQLAlchemy's begin, statements
    and commit cost several times SQLite's own work (a group of one hit: 630 against ~250 us).
    Commits on leaving, rolls back on any error; the same turns and busy errors as ``writing``.
    ``held`` must not be in a SQLAlchemy transaction."""
    dbapi = held.connection.dbapi_connection
    postgres = not is_sqlite(engine)
    gate = _GATES.get(engine)
    with _turn(gate, False, has_turn) as left:
        cur = dbapi.cursor()  # type: ignore[union-attr]
        try:
            if not postgres:  # psycopg begins by itself; sqlite3 runs in autocommit (open_engine)
                cur.execute(f"PRAGMA busy_timeout={int(left * 1000)}")
                cur.execute("BEGIN IMMEDIATE")
            yield Tx(dbapi, postgres)
            dbapi.commit()  # type: ignore[union-attr]
        except BaseException as e:
            dbapi.rollback()  # type: ignore[union-attr]
            busy = _busy(e) if isinstance(e, sqlite3.OperationalError) else None
            if busy is None:
                raise
            raise busy from e
        finally:
            cur.close()


class ReadConnections:
    """Connections for the API's report reads, kept open between requests on a SQLite file.

    Taking a connection from SQLAlchemy's pool and giving it back costs ~22 us of CPU here,
    a fifth of a whole stats request, for a query that takes a few. So on a SQLite file the
    connections a request has finished with are kept (as many as requests read at once: one
    for the routes run on the event loop) and each is handed to one request at a time, its
    transaction ended when that request is done (a kept snapshot would hold back the WAL's
    checkpoints). On PostgreSQL every read takes one from the pool, pinged first, so a server
    restart costs no request.
    """

    KEEP = 8

    def __init__(self, engine: Engine, before: Callable[[], None] | None = None):
        self.engine = engine
        self._kept = is_sqlite(engine) and not isinstance(engine.pool, NullPool)
        self._idle: list[Connection] = []
        self._before = before  # called before each connection is handed out

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if not self._kept:
            with self.engine.connect() as pooled:
                if self._before is not None:
                    self._before()
                yield pooled
            return
        try:
            conn = self._idle.pop()  # list.pop and append are atomic: threadpool routes may read at once
        except IndexError:
            conn = self.engine.connect()
        try:
            if self._before is not None:
                self._before()
            yield conn
        finally:
            self._done(conn)

    def _done(self, conn: Connection) -> None:
        if conn.closed or conn.invalidated or len(self._idle) >= self.KEEP:
            conn.close()
            return
        try:
            conn.rollback()
        except Exception:
            conn.close()
            raise
        self._idle.append(conn)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def now_ms() -> int:
    return int(time.time() * 1000)
