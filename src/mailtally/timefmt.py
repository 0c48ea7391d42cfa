"""Reading and writing times. Stored times are UTC milliseconds.

One range holds for every time from every source (the batch API, bounce messages, webhooks,
tracking hits): from 1970-01-01T00:00:00.000Z up to, not including, 10000-01-01T00:00:00Z,
in UTC. ISO strings and integers are held to the same rule, after the zone is applied, so
``9999-12-31T23:59:59-14:00`` (in UTC, year 10000) is out of range like its integer. Every
serializer here is total: a stored value outside the range (written before the rule existed)
is shown clamped to its nearest end instead of raising.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

MIN_MS = 0  # 1970-01-01T00:00:00.000Z
MAX_MS = 253402300800000  # 10000-01-01T00:00:00.000Z, excluded
RANGE_TEXT = "from 1970-01-01T00:00:00Z up to 9999-12-31T23:59:59.999Z (UTC)"
_EPOCH = date(1970, 1, 1).toordinal()


class BadTime(ValueError):
    pass


def in_range(ms: int) -> bool:
    return MIN_MS <= ms < MAX_MS


def check_range(ms: int, shown: object = None) -> int:
    """``ms``, or BadTime naming the range when it is outside it."""
    if not MIN_MS <= ms < MAX_MS:
        raise BadTime(f"{shown if shown is not None else ms!r} is out of range: times must be {RANGE_TEXT}")
    return ms


def parse_time(value: object) -> int:
    """ISO-8601 with a zone (``Z`` or ``+hh:mm``), or an integer of UTC milliseconds."""
    if isinstance(value, bool):
        raise BadTime("expected an ISO-8601 time or UTC milliseconds")
    if isinstance(value, int):
        return check_range(value)
    if not isinstance(value, str) or not value:
        raise BadTime("expected an ISO-8601 time such as 2024-05-01T12:00:00Z")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise BadTime(f"{value!r} is not an ISO-8601 time such as 2024-05-01T12:00:00Z") from None
    if dt.tzinfo is None:
        raise BadTime(f"{value!r} has no time zone; add Z for UTC")
    return check_range(datetime_ms(dt), value)


def datetime_ms(dt: datetime) -> int:
    """UTC milliseconds of an aware datetime, exactly (no float rounding), for any year."""
    offset = dt.utcoffset()
    days = dt.toordinal() - _EPOCH
    ms = ((days * 24 + dt.hour) * 60 + dt.minute) * 60_000 + dt.second * 1000 + dt.microsecond // 1000
    if offset is not None:
        ms -= int(offset.total_seconds() * 1000)
    return ms


def clamp(ms: int) -> int:
    return MIN_MS if ms < MIN_MS else MAX_MS - 1 if ms >= MAX_MS else ms


def to_datetime(ms: int) -> datetime:
    """The UTC datetime of a stored time (clamped into the range: this never raises)."""
    ms = clamp(ms)
    return datetime.fromtimestamp(ms // 1000, tz=UTC).replace(microsecond=(ms % 1000) * 1000)


def iso_ms(ms: int) -> str:
    """2024-05-01T12:00:00.000Z, the shape Constant Contact uses."""
    ms = clamp(ms)
    dt = to_datetime(ms)
    return f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}.{ms % 1000:03d}Z"
