"""Reading a batch of events from JSON (an array) or NDJSON, all-or-nothing.

Shared by ``POST /v1/events`` and ``mailtally ingest`` so both validate alike.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ..bounces.replies import reply_reason, split_reply
from ..events import Event
from ..store.writer import ItemError
from ..timefmt import MAX_MS, BadTime, parse_time
from ..vocab import CODE_DEFAULT_REASON, BounceCode, DeviceType, EventType, Reason, bounce_code_for, is_hard

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIELDS = frozenset({
    "type", "activity_id", "contact_id", "email", "occurred_at", "device_type", "url_id", "reason",
    "bounce_code", "status", "reply_code", "diagnostic", "remote_mta", "optout_source",
    "optout_reason", "idempotency_key", "smtp_reply",
})
TEXT_LIMITS = {"diagnostic": 4000, "optout_reason": 1000, "remote_mta": 255, "optout_source": 64,
               "status": 16, "reply_code": 8, "url_id": 64, "idempotency_key": 64,
               "smtp_reply": 4000}


class BadBody(ValueError):
    """The body as a whole cannot be read (not JSON, not an array, ...)."""


def parse_body(body: bytes, content_type: str = "") -> list[Any]:
    """A JSON array, or NDJSON (one JSON object per line, blank lines allowed)."""
    text = body.strip()
    if not text:
        return []
    if text[:1] == b"[" and "ndjson" not in content_type:
        try:
            items = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise BadBody(f"body is not valid JSON: {e}") from None
        if not isinstance(items, list):
            raise BadBody("body must be a JSON array of events or NDJSON")
        return items
    return list(iter_ndjson(text.splitlines()))


def iter_ndjson(lines: Iterable[bytes | str]) -> Iterator[Any]:
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise BadBody(f"line {n} is not valid JSON: {e}") from None


def to_events(items: list[Any], first_index: int = 0) -> tuple[list[Event], list[ItemError]]:
    events: list[Event] = []
    errors: list[ItemError] = []
    for i, item in enumerate(items, first_index):
        ev = to_event(item, i, errors)
        if ev is not None:
            events.append(ev)
    return events, errors


_TYPES = {t.value: t for t in EventType}
_DEVICES = {d.value: d for d in DeviceType}
_OPEN, _CLICK, _BOUNCE = EventType.OPEN, EventType.CLICK, EventType.BOUNCE


def to_event(item: Any, i: int, errors: list[ItemError]) -> Event | None:
    """One item, or None with its problems appended to ``errors``."""
    return _plain_event(item) or checked_event(item, i, errors)


def _plain_event(item: Any) -> Event | None:
    """The everyday event (no bounce, contact by canonical id, time in milliseconds), built
    without collecting errors; None means "not that simple": ``checked_event`` decides.

    Most of an ingest's time went to validating, and nearly every event is this kind.
    """
    if item.__class__ is not dict or not FIELDS.issuperset(item):
        return None
    for k, v in item.items():
        if v.__class__ is str:
            if "\x00" in v or len(v) > TEXT_LIMITS.get(k, 320):
                return None
        elif v is not None and k in TEXT_LIMITS:
            return None
    etype = _TYPES.get(item.get("type"))  # type: ignore[arg-type]
    activity_id, contact_id, t = item.get("activity_id"), item.get("contact_id"), item.get("occurred_at")
    if (etype is None or etype is _BOUNCE or item.get("email") is not None or "smtp_reply" in item
            or activity_id.__class__ is not str or not CANONICAL_UUID.fullmatch(activity_id)
            or contact_id.__class__ is not str or not CANONICAL_UUID.fullmatch(contact_id)
            or t.__class__ is not int or not 0 <= t < MAX_MS):
        return None
    device = item.get("device_type")
    if device is not None:
        device = _DEVICES.get(device)
        if device is None:
            return None
    url_id = item.get("url_id")
    if etype is _CLICK and not url_id:
        return None
    if device is None and (etype is _OPEN or etype is _CLICK):
        device = DeviceType.NONE
    # By position, in Event's field order (type, activity_id, occurred_at, contact_id, email,
    # device_type, url_id, reason, bounce_code, hard, dsn_status, ...): binding thirteen
    # keywords cost 0.3 us more an event, an eighth of this function (tests/test_batch.py compares
    # every field with the full checks' keyword-built Event).
    get = item.get
    return Event(etype, activity_id, t, contact_id, None, device, url_id, None, None, None, get("status"),
                 get("reply_code"), get("diagnostic"), get("remote_mta"), get("optout_source"), get("optout_reason"),
                 get("idempotency_key"))


def checked_event(item: Any, i: int, errors: list[ItemError]) -> Event | None:
    """Every check, each failure appended to ``errors`` with its field."""
    start = len(errors)

    def bad(field: str, message: str) -> None:
        errors.append(ItemError(i, field, message))

    if not isinstance(item, dict):
        bad("", "each event must be a JSON object")
        return None
    for k in item.keys() - FIELDS:
        bad(k, "unknown field")
    for k, v in item.items():
        if isinstance(v, str) and "\x00" in v:
            bad(k, "must not contain NUL characters")
    for k, limit in TEXT_LIMITS.items():
        v = item.get(k)
        if v is not None and (not isinstance(v, str) or len(v) > limit):
            bad(k, f"must be a string of at most {limit} characters")
    try:
        etype = EventType(str(item.get("type")))
    except ValueError:
        bad("type", f"must be one of {', '.join(t.value for t in EventType)}")
        etype = None
    activity_id = _uuid(item.get("activity_id"), "activity_id", bad, required=True)
    contact_id = _uuid(item.get("contact_id"), "contact_id", bad, required=False)
    email = item.get("email")
    if contact_id is None and email is None:
        bad("contact_id", "give contact_id or email")
    elif email is not None and (not isinstance(email, str) or len(email) > 320 or not EMAIL.match(email)):
        bad("email", "is not an email address")
    occurred_at = 0
    try:
        occurred_at = parse_time(item.get("occurred_at"))
    except BadTime as e:
        bad("occurred_at", str(e))

    device = None
    if item.get("device_type") is not None:
        try:
            device = DeviceType(item["device_type"])
        except ValueError:
            bad("device_type", f"must be one of {', '.join(d.value for d in DeviceType)}")
    if etype is EventType.CLICK and not item.get("url_id"):
        bad("url_id", "a click needs the url_id of the link")

    reason = code = None
    if etype is EventType.BOUNCE:
        item = _with_reply(item)
        if item.get("smtp_reply") is not None and item.get("reason") == Reason.DELIVERED.value:
            bad("smtp_reply", "is a 2xx reply: the message was accepted, not bounced")
        else:
            reason, code = _bounce_kind(item, bad)
    elif item.get("smtp_reply") is not None:
        bad("smtp_reply", "only a bounce carries an SMTP reply")
    if len(errors) > start or etype is None or activity_id is None:
        return None
    if etype in (EventType.OPEN, EventType.CLICK) and device is None:
        device = DeviceType.NONE
    return Event(
        type=etype, activity_id=activity_id, occurred_at=occurred_at, contact_id=contact_id,
        email=email.lower() if isinstance(email, str) else None, device_type=device,
        url_id=item.get("url_id"), reason=reason, bounce_code=code,
        hard=is_hard(code) if code else None, dsn_status=item.get("status"),
        reply_code=item.get("reply_code"), diagnostic=item.get("diagnostic"),
        remote_mta=item.get("remote_mta"), optout_source=item.get("optout_source"),
        optout_reason=item.get("optout_reason"), idempotency_key=item.get("idempotency_key"),
    )


def _uuid(value: Any, field: str, bad: Any, required: bool) -> str | None:
    if value is None:
        if required:
            bad(field, "is required")
        return None
    if isinstance(value, str) and CANONICAL_UUID.fullmatch(value):
        return value  # already in the stored spelling: skip the costlier parse
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        bad(field, "is not a UUID")
        return None


def _with_reply(item: dict[str, Any]) -> dict[str, Any]:
    """A bounce given as the SMTP reply the sender saw: its parts fill status, reply_code and
    diagnostic where not given, and the reason is classified from them (``bounces.classify``)."""
    text = item.get("smtp_reply")
    if not isinstance(text, str) or "\x00" in text or len(text) > TEXT_LIMITS["smtp_reply"]:
        return item
    reply = split_reply(text)
    out = dict(item)
    for field, value in (("status", reply.status), ("reply_code", reply.reply_code),
                         ("diagnostic", reply.diagnostic[:TEXT_LIMITS["diagnostic"]])):
        if out.get(field) is None and value:
            out[field] = value
    if out.get("reason") is None and out.get("bounce_code") is None:
        out["reason"] = reply_reason(reply).value
    return out


def _bounce_kind(item: dict[str, Any], bad: Any) -> tuple[Reason | None, BounceCode | None]:
    """A bounce names its reason, its code, or both (they must agree)."""
    reason = code = None
    if item.get("reason") is not None:
        try:
            reason = Reason(item["reason"])
        except ValueError:
            bad("reason", "is not a known bounce reason (see docs/events.md)")
    if item.get("bounce_code") is not None:
        try:
            code = BounceCode(item["bounce_code"])
        except ValueError:
            bad("bounce_code", f"must be one of {', '.join(c.value for c in BounceCode)}")
    if reason is not None:
        derived = bounce_code_for(reason)
        if derived is None:
            bad("reason", f"{reason.value} is not a bounce")
        elif code is not None and code is not derived:
            bad("bounce_code", f"reason {reason.value} reports as {derived.value}, not {code.value}")
        code = derived
    elif code is not None:
        reason = CODE_DEFAULT_REASON[code]
    else:
        bad("reason", "a bounce needs a reason or a bounce_code")
    return reason, code
