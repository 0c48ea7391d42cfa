"""Reading times from callers. Stored times are UTC milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime


class BadTime(ValueError):
    pass


def parse_time(value: object) -> int:
    """ISO-8601 with a zone (``Z`` or ``+hh:mm``), or an integer of UTC milliseconds."""
    if isinstance(value, bool):
        raise BadTime("expected an ISO-8601 time or UTC milliseconds")
    if isinstance(value, int):
        if not 0 <= value < 253402300800000:
            raise BadTime(f"{value} is out of range for UTC milliseconds")
        return value
    if not isinstance(value, str) or not value:
        raise BadTime("expected an ISO-8601 time such as 2024-05-01T12:00:00Z")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise BadTime(f"{value!r} is not an ISO-8601 time such as 2024-05-01T12:00:00Z") from None
    if dt.tzinfo is None:
        raise BadTime(f"{value!r} has no time zone; add Z for UTC")
    return int(dt.timestamp() * 1000)


def to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def iso_ms(ms: int) -> str:
    """2024-05-01T12:00:00.000Z, the shape Constant Contact uses."""
    dt = to_datetime(ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
