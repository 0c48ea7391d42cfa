"""The suppression list as CSV: ``email,reason,suppressed_at,expires_at,note``.

Import reads the whole file before anything is written, so a bad line stops the import with
its line number and nothing half-imported. Only ``email`` is required; the reason defaults
to ``import``; times are ISO 8601 (``2024-05-01T12:00:00Z``) or empty.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from ..timefmt import iso_ms
from ..vocab import SuppressionReason

HEADER = ("email", "reason", "suppressed_at", "expires_at", "note")
MAX_ROWS = 1_000_000


class CsvError(ValueError):
    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


class Row:
    __slots__ = ("email", "expires_at", "note", "reason", "suppressed_at")

    def __init__(self, email: str, reason: SuppressionReason, suppressed_at: int | None, expires_at: int | None,
                 note: str | None):
        self.email, self.reason, self.suppressed_at = email, reason, suppressed_at
        self.expires_at, self.note = expires_at, note


def valid_email(text: str) -> bool:
    local, at, domain = text.rpartition("@")
    return bool(at and local and "." in domain and len(text) <= 320
                and not any(c.isspace() or c in "\x00,;<>" for c in text))


def _time(text: str, line: int, column: str) -> int | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CsvError(line, f"{column} {text!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse_bytes(raw: bytes) -> list[Row]:
    """An uploaded file (UTF-8, with or without a BOM): every row, or a CsvError naming the line."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CsvError(raw[:e.start].count(b"\n") + 1, "not UTF-8") from None
    return parse(text)


def parse(text: str) -> list[Row]:
    """Every row of the file, or a CsvError naming the first bad line."""
    if "\x00" in text:
        raise CsvError(1 + text[:text.index("\x00")].count("\n"), "contains a NUL character")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvError(1, "the file is empty; the first line must be a header naming the columns") from None
    except csv.Error as e:
        raise CsvError(1, str(e)) from None
    if "email" not in header:
        raise CsvError(1, f"the header must name an email column (columns: {', '.join(HEADER)})")
    unknown = [h for h in header if h not in HEADER]
    if unknown:
        raise CsvError(1, f"unknown column {unknown[0]!r} (columns: {', '.join(HEADER)})")
    at = {name: header.index(name) for name in HEADER if name in header}
    reasons = {r.value for r in SuppressionReason}
    rows: list[Row] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise CsvError(line, f"has {len(cells)} fields, the header has {len(header)}")

            def cell(name: str, cells: list[str] = cells) -> str:
                return cells[at[name]].strip() if name in at else ""

            email = cell("email").lower()
            if not valid_email(email):
                raise CsvError(line, f"{cell('email')!r} is not an email address")
            reason = cell("reason") or SuppressionReason.IMPORT.value
            if reason not in reasons:
                raise CsvError(line, f"reason {reason!r} is not one of {', '.join(sorted(reasons))}")
            note = cell("note")
            if len(note) > 2000:
                raise CsvError(line, "note is longer than 2000 characters")
            rows.append(Row(email, SuppressionReason(reason), _time(cell("suppressed_at"), line, "suppressed_at"),
                            _time(cell("expires_at"), line, "expires_at"), note or None))
            if len(rows) > MAX_ROWS:
                raise CsvError(line, f"more than {MAX_ROWS:,} rows; split the file")
    except csv.Error as e:
        raise CsvError(reader.line_num, str(e)) from None
    return rows


def _iso(ms: int | None) -> str:
    return iso_ms(ms) if ms is not None else ""


def write(rows: Iterable[Any]) -> Iterator[str]:
    """CSV text, a chunk at a time: the header, then one line per entry."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    for n, r in enumerate(rows, 1):
        w.writerow((r.email, r.reason, _iso(r.suppressed_at), _iso(r.expires_at), r.note or ""))
        if n % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()
