"""Tracking hits answered and not yet rolled up, in a file of each process beside a SQLite file.

A hit written into the log in a transaction of a few costs several times what it costs in a
group of a hundred: each transaction pays for its turn, its begin and its commit, and on a file
two processes write, a transaction after the other's starts with SQLite's page cache emptied
(SQLite drops it when the file changed) and reads the indexes' pages again. So a request's hit
is appended here, one ``write`` to a file of this process's own (in the operating system's hands
at once: a killed process loses nothing, as with the database's own WAL at ``synchronous=NORMAL``),
and answered; the process rolls its hits up into the log in bigger groups soon after
(``ingest.tracking.RollUp``) and empties its file once all are. Each hit carries its log id
(``idem``): a hit applied twice (a process killed between the roll-up's commit and emptying its
file, or another process applying a file whose owner is still at it) is in the log once.

Files live in ``<database>-hits/``, named by their process's pid and held under an exclusive
``flock`` while it lives: a file nobody holds is an orphan (its process died), and whoever
takes its lock applies it and deletes it. A process starts a new file every ``MAX_BYTES`` and
deletes an old one once all its hits are in the log.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import orjson

log = logging.getLogger("mailtally.tracking")
SUFFIX = ".hits"


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
    idem: int  # the hit's id in the log


def folder(db_path: str) -> Path:
    return Path(db_path + "-hits")


MAX_BYTES = 1 << 20  # a file this big: the next hits go into a new one


class Journal:
    """This process's files of answered hits: appended to the newest; an older one deleted once
    every hit in it is in the log (under steady load some hits are always pending, so one file
    would never be emptied)."""

    def __init__(self, db_path: str):
        self.folder = folder(db_path)
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._files: list[tuple[int, Path, int]] = []  # (number, path, descriptor), oldest first
        self._size = 0
        self._open(0)

    def _open(self, number: int) -> None:
        path = self.folder / f"{self._name}-{number}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # alive: nobody takes this file for an orphan
        self._files.append((number, path, fd))
        self._size = 0

    @property
    def path(self) -> Path:
        """The file hits are appended to now."""
        return self._files[-1][1]

    def paths(self) -> list[Path]:
        return [path for _, path, _ in self._files]

    def append(self, hits: list[QueuedHit]) -> int:
        """Durable once this returns (in the operating system's hands); the number of the file
        they went into."""
        if self._size >= MAX_BYTES:
            self._open(self._files[-1][0] + 1)
        data = memoryview(b"".join(orjson.dumps(tuple(h)) + b"\n" for h in hits))
        self._size += len(data)
        while data:
            data = data[os.write(self._files[-1][2], data):]
        return self._files[-1][0]

    def applied_before(self, number: int | None) -> None:
        """Every hit in the files before ``number`` is in the log (None: every hit): those are
        deleted, and the newest emptied."""
        kept = []
        for file in self._files:
            n, path, fd = file
            if number is not None and n >= number:
                kept.append(file)
            elif file is self._files[-1]:
                os.ftruncate(fd, 0)
                self._size = 0
                kept.append(file)
            else:
                path.unlink(missing_ok=True)
                os.close(fd)
        self._files = kept

    def close(self, applied: bool) -> None:
        """The files removed if every hit in them is in the log (``applied``), else left for the
        next start to apply."""
        for _, path, fd in self._files:
            if applied:
                path.unlink(missing_ok=True)
            os.close(fd)
        self._files = []

    def others(self) -> list[Path]:
        """Other processes' files with hits in them (live or orphaned)."""
        own = {str(p) for p in self.paths()}
        found = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(SUFFIX) and entry.path not in own and entry.stat().st_size:
                found.append(Path(entry.path))
        return found


def read(path: Path) -> list[QueuedHit]:
    """The hits in a file; a last line cut short (its writer killed mid-write: never answered) is left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    hits = []
    for line in lines[:-1]:  # after the last newline: nothing, or a line cut short
        try:
            hits.append(QueuedHit(*orjson.loads(line)))
        except (orjson.JSONDecodeError, TypeError):
            log.error("a line of %s is not a hit; left out", path)
    return hits


@contextmanager
def orphan(path: Path) -> Iterator[bool]:
    """Whether ``path`` is an orphan, holding its lock meanwhile; the caller applies it, then
    ``remove``s it. (Deleted by then: an orphan someone else has just applied.)"""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False  # its process is alive
            return
        yield path.exists()
    finally:
        os.close(fd)


def files(db_path: str) -> list[Path]:
    """Every journal file in the folder, live or orphaned (``orphan`` tells)."""
    where = folder(db_path)
    if not where.is_dir():
        return []
    return sorted(p for p in where.iterdir() if p.name.endswith(SUFFIX))


def waiting(db_path: str) -> int:
    """Bytes of hits in the folder's files (0: none waits)."""
    where = folder(db_path)
    if not where.is_dir():
        return 0
    return sum(p.stat().st_size for p in where.iterdir() if p.name.endswith(SUFFIX))
