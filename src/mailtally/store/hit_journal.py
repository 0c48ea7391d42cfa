"""Tracking hits answered and not yet in the log, in a file of each process beside a SQLite file.

A hit written into the log in a transaction of a few costs several times what it costs in a
group of a few hundred: each transaction pays for its turn, its begin and its commit, and a
group's recipients and index pages are written to the WAL once however many of its hits touch
them (3.5 pages of WAL a hit in groups of 40, 2 in groups of 200, measured); on a file two
processes write, a transaction after the other's also starts with SQLite's page cache emptied.
So a request's hit is appended here, one ``write`` to a file of this process's own (in the
operating system's hands at once: a killed process loses nothing, as with the database's own
WAL at ``synchronous=NORMAL``), and answered. One process at a time, the roller, writes every
process's hits into the log in big groups (``ingest.tracking.RollUp``).

How far into each file the log holds its hits is a row of ``hit_journal_applied``, moved on in
the transaction that writes them: whoever applies a file (the roller, a report catching up, a
process stopping) starts where the last one stopped, and each hit is written once. Each hit also
carries its log id (``idem``), so one applied again all the same is in the log once.

Files live in ``<database>-hits/``, named by their process's pid, held under an exclusive
``flock`` while that process writes to them. A process starts a new file every ``MAX_BYTES``
(letting go of the old one); a file nobody holds will not grow, and once all its hits are
applied, whoever applied them deletes it.

While the roller fails (the disk full, another writer holding the file for longer than a write
waits), it keeps ``<database>-hits.failing`` saying since when and why; ``backlog`` reads that
and how long the oldest hit has waited, for ``/healthz`` and ``mailtally tracking status``.
"""

from __future__ import annotations

import bisect
import fcntl
import itertools
import logging
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import orjson

from ..vocab import Health
from . import rawsql
from .schema import hit_journal_applied

log = logging.getLogger("mailtally.tracking")
SUFFIX = ".hits"
MAX_BYTES = 1 << 20  # a file this big: the next hits go into a new one


class QueuedHit(NamedTuple):
    """A hit as it was answered: who, what, when, what judging it needs, and its log id."""

    account_id: int
    activity_num: int
    contact_num: int
    click: bool
    url_id: str | None
    at: int  # ms
    user_agent: str
    ip: str | None  # as the log keeps it: the full IP is never at rest
    scanner: bool  # the full IP was in a scanner network
    head: bool  # a HEAD request
    idem: int | None  # the hit's id in the log (None: one drawn when it is judged, for a hit not journaled)


def folder(db_path: str) -> Path:
    return Path(db_path + "-hits")


def roller_lock(db_path: str) -> Path:
    """The file whose ``flock`` makes its holder the roller."""
    return Path(db_path + "-hits.roller")


def _failing_path(db_path: str) -> Path:
    return Path(db_path + "-hits.failing")


class Failing(NamedTuple):
    """The roll-up has failed since ``since`` (ms), last with ``error``."""

    since: int
    error: str


def mark_failing(db_path: str, error: str) -> None:
    """A roll-up failed: said in the marker file, keeping the time of the first failure."""
    was = failing(db_path)
    since = was.since if was is not None else int(time.time() * 1000)
    path = _failing_path(db_path)
    making = path.with_name(f"{path.name}.{os.getpid()}")
    fd = os.open(making, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # as the journals: the owner's only
    try:
        os.write(fd, orjson.dumps({"since": since, "error": error}))
    finally:
        os.close(fd)
    os.replace(making, path)  # whole or not there: a reader never sees half of it


def mark_working(db_path: str) -> None:
    """A roll-up went through: the marker, if any, gone."""
    _failing_path(db_path).unlink(missing_ok=True)


def failing(db_path: str) -> Failing | None:
    try:
        data = orjson.loads(_failing_path(db_path).read_bytes())
        return Failing(int(data["since"]), str(data["error"]))
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class Journal:
    """This process's file of answered hits, appended to; a new one every ``MAX_BYTES``."""

    def __init__(self, db_path: str):
        self.folder = folder(db_path)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._number = -1
        self._fd = -1
        self._size = 0
        self._open()

    def _open(self) -> None:
        self._number += 1
        path = self.folder / f"{self._name}-{self._number}{SUFFIX}"
        # Locked before it has its name: an empty file nobody held would be deleted as done with.
        making = path.with_suffix(".new")
        fd = os.open(making, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # written to: nobody deletes it
        os.rename(making, path)
        if self._fd >= 0:
            os.close(self._fd)  # the old file will not grow: once applied, it is deleted
        self._fd, self.path, self._size = fd, path, 0

    @property
    def writing(self) -> Path | None:
        """The file this process appends to (None once closed)."""
        return self.path if self._fd >= 0 else None

    def append(self, hits: list[QueuedHit]) -> None:
        """Durable once this returns (in the operating system's hands)."""
        if self._size >= MAX_BYTES:
            self._open()
        data = memoryview(b"".join(orjson.dumps(tuple(h)) + b"\n" for h in hits))
        self._size += len(data)
        while data:
            data = data[os.write(self._fd, data):]

    def close(self) -> None:
        """No more hits from this process: its file is left to whoever applies it next."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Tail(NamedTuple):
    """New hits of one file: those after ``start`` up to ``end`` (bytes), and where each one's
    line ends."""

    path: Path
    start: int
    end: int
    hits: list[QueuedHit]
    ends: list[int]

    def first(self, n: int) -> Tail:
        """Only its first ``n`` hits."""
        if n >= len(self.hits):
            return self
        return Tail(self.path, self.start, self.ends[n - 1] if n else self.start, self.hits[:n], self.ends[:n])

    def after(self, n: int) -> Tail:
        """All but its first ``n`` hits."""
        start = self.ends[n - 1] if n else self.start
        return Tail(self.path, start, self.end, self.hits[n:], self.ends[n:])


def read(path: Path, start: int = 0, most: int | None = None) -> Tail:
    """The hits of a file from byte ``start`` on (``most`` of them at most). A last line cut
    short (its writer is at it, or was killed mid-write: never answered) is left for later."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return Tail(path, start, start, [], [])
    hits: list[QueuedHit] = []
    ends: list[int] = []
    at = 0
    while most is None or len(hits) < most:
        end = data.find(b"\n", at)
        if end < 0:
            break
        try:
            hits.append(QueuedHit(*orjson.loads(data[at:end])))
            ends.append(start + end + 1)
        except (orjson.JSONDecodeError, TypeError):
            log.error("a line of %s is not a hit; left out", path)
        at = end + 1
    return Tail(path, start, start + at, hits, ends)


def oldest(tails: list[Tail], most: int) -> list[Tail]:
    """The ``most`` oldest hits of these files, as the first hits of each: a roller that has
    fallen behind writes every worker's hits in the order they came (the burst rule remembers
    each recipient's recent clicks from the time of the last group on, so a group of one
    worker's hits older than the last group's would send it back to the log). A file's hits
    are in the order they came."""
    if sum(len(t.hits) for t in tails) <= most:
        return tails
    times = [[h.at for h in t.hits] for t in tails]
    last = sorted(itertools.chain.from_iterable(times))[most - 1]  # the newest hit taken
    taken = [bisect.bisect_left(ts, last) for ts in times]  # those before it
    for i, ts in enumerate(times):  # then those at its millisecond, file by file, up to ``most``
        taken[i] = min(bisect.bisect_right(ts, last), taken[i] + most - sum(taken))
    return [t.first(n) for t, n in zip(tails, taken, strict=True)]


def files(db_path: str) -> list[Path]:
    """Every journal file in the folder, oldest first within each process."""
    where = folder(db_path)
    if not where.is_dir():
        return []
    return sorted((p for p in where.iterdir() if p.name.endswith(SUFFIX)), key=_order)


def sweep(db_path: str, older_than: float = 60.0) -> None:
    """Delete files a process died making (locked, not yet named: never written to)."""
    where = folder(db_path)
    if not where.is_dir():
        return
    for path in where.glob("*.new"):
        try:
            if time.time() - path.stat().st_mtime < older_than:
                continue  # perhaps being made right now
        except FileNotFoundError:
            continue
        with unheld(path) as done:
            if done:
                path.unlink(missing_ok=True)


def _order(path: Path) -> tuple[str, int]:
    owner, _, number = path.name.removesuffix(SUFFIX).rpartition("-")
    return owner, int(number) if number.isdigit() else 0


def applied(conn: rawsql.Conn) -> dict[str, int]:
    """How far into each file the log holds its hits (bytes), by file name."""
    t = hit_journal_applied
    return {str(name): int(n) for name, n in rawsql.fetch(conn, f"SELECT {t.c.file.name}, {t.c.applied.name} "
                                                                f"FROM {t.name}", ())}


def mark_applied(conn: rawsql.Conn, before: dict[str, int], now: dict[str, int], gone: list[str]) -> None:
    """In the transaction that wrote the hits: each file's new applied offset, and the rows of
    files no longer there removed."""
    m = rawsql.mark(conn)
    cur = rawsql.cursor(conn)
    try:
        new = [(name, n) for name, n in now.items() if name not in before]
        moved = [(n, name) for name, n in now.items() if name in before and before[name] != n]
        if new:
            cur.executemany(f"INSERT INTO hit_journal_applied (file, applied) VALUES ({m}, {m})", new)
        if moved:
            cur.executemany(f"UPDATE hit_journal_applied SET applied = {m} WHERE file = {m}", moved)
        if gone:
            cur.executemany(f"DELETE FROM hit_journal_applied WHERE file = {m}", [(name,) for name in gone])
    finally:
        cur.close()


@contextmanager
def unheld(path: Path) -> Iterator[bool]:
    """Whether no process writes to ``path`` (it will not grow), holding its lock meanwhile so
    that the caller may delete it. False when it is gone."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # its process writes to it
            return
        yield path.exists()
    finally:
        os.close(fd)


class Backlog(NamedTuple):
    """Answered hits not yet in the log: their bytes, when the oldest was answered (ms; None
    when none waits), and the roll-up's failure, if it is failing."""

    waiting_bytes: int
    oldest_at: int | None
    failing: Failing | None

    def waited(self, now: int) -> float | None:
        """Seconds the oldest waiting hit has waited (None: none waits)."""
        return None if self.oldest_at is None else max(now - self.oldest_at, 0) / 1000

    def health(self, now: int, max_behind: float) -> Health:
        """Behind once a hit answered over ``max_behind`` seconds ago is still not in the log."""
        waited = self.waited(now)
        return Health.BEHIND if waited is not None and waited > max_behind else Health.OK


def backlog(conn: rawsql.Conn, db_path: str) -> Backlog:
    """What waits for the roller, read from each file's first hit past what the log holds
    (one line a file, however far behind)."""
    done = applied(conn)
    left = 0
    oldest: int | None = None
    for path in files(db_path):
        start = done.get(path.name, 0)
        try:
            with path.open("rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size <= start:
                    continue
                f.seek(start)
                line = f.readline()
        except FileNotFoundError:
            continue
        left += size - start
        try:
            at = QueuedHit(*orjson.loads(line)).at
        except (orjson.JSONDecodeError, TypeError):
            continue  # a line being written: its hit is not answered yet
        oldest = at if oldest is None else min(oldest, at)
    return Backlog(left, oldest, failing(db_path))


def waiting(conn: rawsql.Conn, db_path: str) -> int:
    """Bytes of answered hits not yet in the log (0: none waits)."""
    return backlog(conn, db_path).waiting_bytes
