"""Turns for SQLite writers across processes, small writes first.

SQLite has one write lock. Left to its busy handler, a waiting writer sleeps and retries, so
with several processes (``serve --workers N``) a stream of big event batches kept the lock
nearly all the time and a bounce message waited seconds for a gap, or past the busy timeout
(``database is locked``, a 500). Here every writer of a database file takes its turn through
a lock file beside it, polled briefly, and a bulk writer (an event batch) first lets every
waiting small writer go, for up to ``BULK_YIELD_SECONDS``, so small writes pass between big
ones. A writer still without a turn after the configured wait gets ``StoreBusy`` (a 503 with
Retry-After), never a half-written batch.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

BULK_YIELD_SECONDS = 1.0
_POLL = 0.001
_FAST_POLL, _FAST_TRIES = 0.0001, 30


class StoreBusy(Exception):
    """The database could not be written within the wait allowed; nothing was written."""


def _try(fd: int, how: int) -> bool:
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Turn:
    """A small writer's turn, held until ``release`` (closing the lock files lets go)."""

    def __init__(self, small: int, gate: int):
        self._fds: tuple[int, ...] = (gate, small)

    def release(self) -> None:
        fds, self._fds = self._fds, ()
        for fd in fds:
            os.close(fd)


class WriteGate:
    def __init__(self, db_path: str, wait_seconds: float = 30.0):
        self.turn_path = db_path + "-writelock"
        self.small_path = db_path + "-smallwrites"
        self.wait_seconds = wait_seconds

    def _open(self, path: str) -> int:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def _small_waiting(self, small: int) -> bool:
        if _try(small, fcntl.LOCK_EX):
            fcntl.flock(small, fcntl.LOCK_UN)
            return False
        return True

    @contextmanager
    def turn(self, bulk: bool = False) -> Iterator[float]:
        """Hold the turn to write; yields the seconds of the wait left (for SQLite's own timeout)."""
        deadline = time.monotonic() + self.wait_seconds
        small, gate = self._open(self.small_path), self._open(self.turn_path)
        try:
            if not bulk:
                while not _try(small, fcntl.LOCK_SH):  # a bulk writer is only glancing: a moment
                    self._pause(deadline)
            yield_until = time.monotonic() + BULK_YIELD_SECONDS
            tries = 0
            while True:
                if bulk and time.monotonic() < yield_until and self._small_waiting(small):
                    self._pause(deadline)
                    continue
                if _try(gate, fcntl.LOCK_EX):
                    if bulk and time.monotonic() < yield_until and self._small_waiting(small):
                        fcntl.flock(gate, fcntl.LOCK_UN)  # a small writer came meanwhile: it goes first
                        continue
                    break
                tries += 1
                # A small writer waits for one that writes a few milliseconds: look often at first
                # (a tracking hit's group waits for the other process's), then every millisecond.
                self._pause(deadline, _FAST_POLL if not bulk and tries <= _FAST_TRIES else _POLL)
            yield max(deadline - time.monotonic(), 0.05)
        finally:
            os.close(gate)  # closing releases its locks
            os.close(small)

    def try_take(self) -> Turn | None:
        """A small writer's turn if it is free this instant, else None (never waits)."""
        small, gate = self._open(self.small_path), self._open(self.turn_path)
        if _try(small, fcntl.LOCK_SH) and _try(gate, fcntl.LOCK_EX):
            return Turn(small, gate)
        os.close(gate)
        os.close(small)
        return None

    @staticmethod
    def _pause(deadline: float, seconds: float = _POLL) -> None:
        if time.monotonic() > deadline:
            raise StoreBusy("the database is busy")
        time.sleep(seconds)
