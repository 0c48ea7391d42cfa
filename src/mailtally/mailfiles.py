"""Raw messages from where people keep them: a file, a folder of files, a Maildir, an mbox, or stdin.

This is the I/O side of bounce parsing; `mailtally.bounces` itself only ever sees bytes.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# An mbox separator: "From sender Sat Oct  4 08:00:07 2025" (asctime date after the sender).
_SEPARATOR = re.compile(
    rb"^From \S* +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ", re.M
)
# Single-message files by name: a bounce may quote an mbox separator line inside its body.
SINGLE_MESSAGE_SUFFIXES = (".eml", ".msg", ".txt")


class MailSourceError(Exception):
    """A path that cannot be read as a message, a folder, a Maildir or an mbox."""


def read_bounded(fh: BinaryIO) -> bytes:
    """`fh.read(MAX_MESSAGE_BYTES)`, without what that costs for a small file: `read(n)` sets aside
    n bytes before reading (64 MB: ~70 µs a file, more than parsing many a bounce)."""
    size = os.fstat(fh.fileno()).st_size
    if not 0 < size < MAX_MESSAGE_BYTES:
        return fh.read(MAX_MESSAGE_BYTES)  # a device, a pipe, an empty or a huge file
    data = fh.read(size + 1)
    if len(data) <= size:
        return data
    return data + fh.read(MAX_MESSAGE_BYTES - len(data))  # it grew while being read


def _is_maildir(p: Path) -> bool:
    return (p / "cur").is_dir() or (p / "new").is_dir()


def _maildir(p: Path, label: str) -> Iterator[tuple[str, bytes]]:
    for sub in ("new", "cur"):
        d = p / sub
        if not d.is_dir():
            continue
        for entry in sorted(os.scandir(d), key=lambda e: e.name):
            if entry.is_file() and not entry.name.startswith("."):
                with open(entry.path, "rb") as fh:
                    yield f"{label}#{sub}/{entry.name}", read_bounded(fh)


def split_mbox(data: bytes) -> Iterator[bytes]:
    """Messages of an mbox: each starts at a line beginning "From " after a blank line (or at the top)."""
    data = data.replace(b"\r\n", b"\n")
    start = 0
    pos = 0
    while True:
        nxt = data.find(b"\n\nFrom ", pos)
        if nxt < 0:
            break
        yield _unescape(data[start : nxt + 1])
        start = nxt + 2
        pos = start
    if data[start:].strip():
        yield _unescape(data[start:])


def _unescape(msg: bytes) -> bytes:
    # mboxrd: ">From " quoted lines lose one ">"; the "From " separator line itself is dropped.
    if msg.startswith(b"From "):
        nl = msg.find(b"\n")
        msg = msg[nl + 1 :] if nl >= 0 else b""
    if b"\n>" in msg:
        lines = msg.split(b"\n")
        msg = b"\n".join(ln[1:] if ln.startswith(b">") and ln.lstrip(b">").startswith(b"From ") else ln for ln in lines)
    return msg


def is_mbox(data: bytes) -> bool:
    """An mbox starts with a separator line; a lone message saved with its "From " line is one too."""
    return _SEPARATOR.match(data[:200]) is not None


def expand(path: str) -> list[str]:
    """The sources under `path`: `[path]` itself, unless it is a plain folder (not a Maildir).

    A plain folder stands for every file under it, recursively, in name order; names starting
    with "." are skipped, and a Maildir inside it stays one source. Raises MailSourceError when
    a folder cannot be listed.
    """
    if path == "-" or not os.path.isdir(path) or _is_maildir(Path(path)):
        return [path]
    out: list[str] = []
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as e:
        raise MailSourceError(f"{path}: {e.strerror or e}") from e
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir(follow_symlinks=False):  # a linked folder could loop back
            out.extend(expand(entry.path))
        elif entry.is_file():
            out.append(entry.path)
    return out


def iter_messages(path: str) -> Iterator[tuple[str, bytes]]:
    """(source label, raw bytes) for every message at `path`; raises MailSourceError if unreadable.

    A file is labelled with its path (as given, or as found under a given folder); members of
    a Maildir or an mbox get `path#member`.
    """
    if path == "-":
        yield "-", sys.stdin.buffer.read(MAX_MESSAGE_BYTES)
        return
    p = Path(path)
    try:
        if p.is_dir():
            if _is_maildir(p):
                yield from _maildir(p, path)
                return
            for source in expand(path):
                yield from iter_messages(source)
            return
        with open(p, "rb") as fh:
            data = read_bounded(fh)
    except OSError as e:
        raise MailSourceError(f"{path}: {e.strerror or e}") from e
    if is_mbox(data) and not p.name.lower().endswith(SINGLE_MESSAGE_SUFFIXES):
        for i, msg in enumerate(split_mbox(data), 1):
            yield f"{path}#{i}", msg
        return
    yield path, data
