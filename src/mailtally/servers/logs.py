"""Reading an MTA log file, once or following it, with a checkpoint that survives rotation.

The checkpoint (the file's device and inode, and the offset after the last whole line
handled) is written in the same transaction as the events of those lines, so a restart
resumes exactly there and nothing counts twice. When the file is rotated, the rest of the
old file (found by its inode beside the new one) is read before the new file from its start;
a file cut shorter than the checkpoint (copytruncate) is read from its start.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine

from ..ingest.mta_logs import Counts, LogReader, record
from ..store import sources
from ..store.db import writing
from .config import LogConfig

log = logging.getLogger("mailtally.sources.logs")

CHUNK = 4 * 1024 * 1024
POLL_SECONDS = 0.5


@dataclass(slots=True)
class LogFile:
    """``logs ingest``: one file (or ``-``) into one account's events."""

    engine: Engine
    secret: bytes
    account: int
    path: str
    name: str
    format: str = "auto"
    reader: LogReader = field(init=False)
    totals: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.reader = LogReader(self.format)

    def _batch(self, lines: list[bytes], checkpoint: dict[str, Any] | None) -> None:
        records = self.reader.read_all(b.decode("utf-8", "replace") for b in lines)
        with writing(self.engine) as conn:
            counts = record(conn, self.account, self.secret, self.name, records, dict(self.reader.refs))
            counts.lines = len(lines)
            sources.record_success(conn, self.name, "log", handled=len(lines), backlog=0,
                                   checkpoint=checkpoint)
        self.totals.add(counts)
        if counts.bounces or counts.deferrals:
            log.info("%s: %d lines: %d bounces (%d recorded, %d unmatched kept, %d already known), %d deferrals",
                     self.name, len(lines), counts.bounces, counts.recorded, counts.unmatched, counts.duplicates,
                     counts.deferrals)

    def read_stream(self, stream: BinaryIO) -> Counts:
        """Standard input, or any stream: no checkpoint."""
        while True:
            chunk = stream.readlines(CHUNK)
            if not chunk:
                return self.totals
            self._batch(chunk, None)

    def run(self, follow: bool = False, stop: threading.Event | None = None) -> Counts:
        if self.path == "-":
            return self.read_stream(sys.stdin.buffer)
        stop = stop or threading.Event()
        with self.engine.connect() as conn:
            saved = sources.checkpoint(conn, self.name) or {}
        path = Path(self.path)
        rotated = self._rotated_rest(path, saved)
        if rotated is not None:
            old, offset = rotated
            self._read_file(old, offset, follow=False, stop=stop)
            saved = {}
        while True:
            try:
                st = path.stat()
            except FileNotFoundError:
                if not follow:
                    raise
                if stop.wait(POLL_SECONDS):
                    return self.totals
                continue
            offset = 0
            if saved.get("inode") == st.st_ino and saved.get("device") == st.st_dev:
                offset = int(saved.get("offset", 0))
                if offset > st.st_size:  # truncated in place
                    offset = 0
            ended = self._read_file(path, offset, follow=follow, stop=stop)
            if not follow or ended == "stopped":
                return self.totals
            saved = {}  # rotated: the new file from its start

    def _rotated_rest(self, path: Path, saved: dict[str, int]) -> tuple[Path, int] | None:
        """The old file of a rotation that happened while we were not running, with our offset in it."""
        if not saved:
            return None
        try:
            st = path.stat()
            if st.st_ino == saved.get("inode") and st.st_dev == saved.get("device"):
                return None
        except FileNotFoundError:
            pass
        for sibling in path.parent.glob(path.name + "?*"):
            try:
                s = sibling.stat()
            except OSError:
                continue
            if s.st_ino == saved.get("inode") and s.st_dev == saved.get("device") and not sibling.name.endswith(
                    (".gz", ".bz2", ".xz", ".zst")):
                return sibling, int(saved.get("offset", 0))
        return None

    def _read_file(self, path: Path, offset: int, follow: bool, stop: threading.Event) -> str:
        with path.open("rb") as f:
            st = os.fstat(f.fileno())
            f.seek(offset)
            pos, partial = offset, b""
            while True:
                chunk = f.readlines(CHUNK)
                if chunk:
                    if partial:
                        chunk[0] = partial + chunk[0]
                        partial = b""
                    if not chunk[-1].endswith(b"\n"):
                        partial = chunk.pop()  # a line still being written: read it whole next time
                    if chunk:
                        pos += sum(len(c) for c in chunk)
                        self._batch(chunk, {"device": st.st_dev, "inode": st.st_ino, "offset": pos})
                    continue
                if not follow:
                    if partial:  # the file ends without a newline: that last line is whole
                        pos += len(partial)
                        self._batch([partial], {"device": st.st_dev, "inode": st.st_ino, "offset": pos})
                    return "done"
                if stop.wait(POLL_SECONDS):
                    return "stopped"
                try:
                    now = path.stat()
                except FileNotFoundError:
                    now = None
                if now is None or now.st_ino != st.st_ino or now.st_dev != st.st_dev:
                    # Rotated: finish what the old file still gets, then move on to the new one.
                    rest = f.readlines()
                    if rest:
                        if partial:
                            rest[0] = partial + rest[0]
                        pos += sum(len(c) for c in rest)
                        self._batch(rest, {"device": st.st_dev, "inode": st.st_ino, "offset": pos})
                    return "rotated"
                if now.st_size < pos:  # truncated in place
                    f.seek(0)
                    pos, partial = 0, b""


class LogFollower:
    """A config's ``[[log]]``: followed in a thread, restarted after errors."""

    def __init__(self, engine: Engine, secret: bytes, account: int, config: LogConfig) -> None:
        self.file = LogFile(engine, secret, account, config.path, config.name, config.format)
        self.engine, self.name = engine, config.name
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=config.name, daemon=True)

    def _run(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                self.file.run(follow=True, stop=self.stopping)
                return
            except Exception as e:
                log.exception("%s: reading the log failed; retrying in %.0f s", self.name, delay)
                sources.record_error(self.engine, self.name, "log", f"{type(e).__name__}: {e}")
                if self.stopping.wait(delay):
                    return
                delay = min(delay * 2, 300)
                self.file.reader = LogReader(self.file.format)

    def start(self) -> LogFollower:
        sources.register(self.engine, self.name, "log")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(15)


def log_follower(engine: Engine, secret: bytes, account: int, config: LogConfig) -> LogFollower:
    return LogFollower(engine, secret, account, config)
