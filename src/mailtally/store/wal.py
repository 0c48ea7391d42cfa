"""SQLite's WAL copied into the database off a latency-bound writer's path.

By default the connection whose commit takes the WAL past 1,000 pages copies it back into the
database (a checkpoint) inside that commit: two fsyncs, 10-40 ms on this kind of disk, which
every request waiting on that commit waits for too — the tracking hits' p99. A writer that
answers requests after its commit (the hit path's group commit) raises its own threshold to
``WRITER_PAGES`` and keeps a ``Checkpointer``: a thread that, shortly after commits, runs a
PASSIVE checkpoint on a connection of its own. PASSIVE never blocks a writer or a reader and
leaves what it cannot copy for the next time. While writers keep committing, a checkpoint
rarely finds the WAL complete, so SQLite cannot start it over from its beginning; the writer's
own threshold bounds it then (``WRITER_PAGES``: that checkpoint has little left to copy, and
restarts the WAL). Measured on groups of hits under load (32 connections): writes over 10 ms
were 11-36 in 1,000 with SQLite's own 1,000 pages, 2-23 with 8,000, 2-9 with 32,000.
Durability does not change: commits in WAL mode with ``synchronous=NORMAL``
are in the operating system's hands at once (a killed process loses nothing) and on the disk
at the next checkpoint.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger("mailtally.wal")

WRITER_PAGES = 32_000  # 128 MB of 4 kB pages: the writer's own checkpoint, when the thread cannot restart the WAL
# The WAL file is never cut back when it starts over (SQLite's default): the writer that restarted
# a WAL past 64 MB truncated it to 64 MB inside its commit, 21-24 ms (12-13 ms of CPU freeing
# the file's pages) for a group of 7-9 hits, five times in 8 s, on the event loop that writes
# the tracking hits; the hits' p99 was 13-18 ms with it, 5.1-7.4 ms without (quiet machine,
# 16 connections, bench/tracking.py). The file stays at most about WRITER_PAGES pages.
KEEP_BYTES = -1
EVERY = 0.05  # seconds between checkpoints while commits come


def on_file(engine: Engine) -> bool:
    """Whether ``engine`` is a SQLite database file (the WAL is only theirs)."""
    return engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:") \
        and not str(engine.url.database).startswith("file:")


def defer_checkpoints(dbapi_connection: Any) -> None:
    """Leave the checkpoints of this connection's commits to a ``Checkpointer`` (up to WRITER_PAGES)."""
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_PAGES}")
    dbapi_connection.execute(f"PRAGMA journal_size_limit={KEEP_BYTES}")


class Checkpointer:
    """A daemon thread checkpointing a SQLite database soon after ``poke`` (a commit)."""

    def __init__(self, engine: Engine, every: float = EVERY):
        self.engine = engine
        self.every = every
        self.runs = 0
        self._poked = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="mailtally-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._poked.set()

    def _run(self) -> None:
        conn = None
        while not self._stop:
            self._poked.wait()
            if self._stop:
                break
            self._poked.clear()
            try:
                if conn is None:
                    conn = self.engine.raw_connection()  # autocommit: no transaction around the checkpoint
                cur = conn.cursor()
                cur.execute("PRAGMA wal_checkpoint(PASSIVE)")
                cur.close()
                self.runs += 1
            except Exception:
                log.exception("WAL checkpoint failed")
                if conn is not None:
                    conn.invalidate()
                    conn = None
            time.sleep(self.every)  # at most one checkpoint per interval
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._stop = True
        self._poked.set()
        self._thread.join(5)
