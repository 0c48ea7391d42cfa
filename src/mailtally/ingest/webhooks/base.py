"""The one notion of a provider event that every provider module parses into (django-anymail's idea).

A provider module turns a verified request into ``ProviderEvent``s: one per recipient and
thing that happened, with the provider's own event id (so a redelivery counts nothing), the
SMTP status and diagnostic it reported (so our engine decides the bounce reason), our
``mailtally_id`` when the sender attached it, the Message-ID, and the machine-open flag.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson

from ... import bounces
from ...bounces.smtp import find_reply_code, find_status, squash
from ...config import Settings
from ...store.webhooks import Endpoint
from ...timefmt import MAX_MS, MIN_MS, RANGE_TEXT, in_range
from ...vocab import DeviceType, ProviderEventKind, Reason

MAILTALLY_ID = "mailtally_id"  # the name a sender gives our id in custom args, metadata or tags
DEFAULT_USERNAME = "mailtally"  # the basic-auth user name when an endpoint sets none


class Refused(Exception):
    """The request is not from the provider for this endpoint: 401 or 403, nothing written."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class Malformed(ValueError):
    """The body cannot be read as this provider's notification: 400, nothing written."""


class Unavailable(Exception):
    """Something outside (the provider's certificate or confirmation URL) could not be reached:
    a 503, so that the provider tries again."""


@dataclass(slots=True)
class ProviderEvent:
    kind: ProviderEventKind
    recipient: str
    occurred_at: int  # UTC milliseconds
    event_id: str  # the provider's own id for this event and recipient
    provider_kind: str = ""  # the provider's word for it, for logs
    mailtally_id: str | None = None
    message_id: str | None = None  # the RFC 5322 Message-ID, when the provider reports it
    provider_message_id: str | None = None
    status: str = ""  # DSN status, e.g. 5.1.1
    reply_code: str = ""  # SMTP reply code, e.g. 550
    diagnostic: str = ""  # the remote server's words
    own_words: bool = False  # the diagnostic is the provider's own (a suppression notice): its class decides
    remote_mta: str = ""
    # The provider's own class, mapped: used only when the diagnostic says nothing.
    provider_reason: Reason | None = None
    url: str | None = None
    user_agent: str | None = None
    device: DeviceType | None = None
    machine: bool | None = None  # the provider says a machine (image proxy, scanner) made this open or click
    recipients_in_message: int = 1  # how many recipients the notification named
    # When the provider cannot say which recipient of a message an event is about (Resend, SES
    # opens): the others it may be, should our id name one of them.
    alternates: tuple[str, ...] = ()
    optout_reason: str | None = None


@dataclass(slots=True)
class HookRequest:
    endpoint: Endpoint
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    settings: Settings
    now: float  # seconds since the epoch


@dataclass(slots=True)
class Delivery:
    """What one request brought: events to record, and for some providers a token to remember."""

    events: list[ProviderEvent] = field(default_factory=list)
    replay_token: str | None = None  # refused if seen before (Mailgun)
    replay_window_ms: int = 0  # how long the token is remembered
    replay_status: int = 406  # the answer to a replay (406 tells Mailgun not to retry)
    note: str | None = None  # said back in the response (SNS subscription handling)
    options: dict[str, Any] | None = None  # new endpoint options to save (SNS topics confirmed)


def header(req: HookRequest, name: str) -> str:
    return req.headers.get(name.lower(), "")


def check_timestamp(req: HookRequest, value: str | int | float, what: str, tolerance: int | None = None) -> None:
    """Refuse a signature timestamp outside the tolerance either way (replays of old requests)."""
    tolerance = req.settings.webhook_tolerance_seconds if tolerance is None else tolerance
    try:
        ts = float(value)
    except (TypeError, ValueError):
        raise Refused(401, "bad_timestamp", f"{what} is not a timestamp") from None
    if ts != ts or abs(req.now - ts) > tolerance:
        raise Refused(401, "expired", f"{what} is outside the {tolerance} s tolerance")


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison."""
    a = a.encode() if isinstance(a, str) else a
    b = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a, b)


def check_password(req: HookRequest, secret: str, *, bearer: bool = True, realm: str = "mailtally") -> None:
    """HTTP basic auth (the endpoint's user name and its secret), or ``Authorization: Bearer <secret>``."""
    kind, _, value = header(req, "authorization").partition(" ")
    username = str(req.endpoint.options.get("username") or DEFAULT_USERNAME)
    ok = False
    if kind.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError, binascii.Error):
            user = password = ""
        ok = equal(user, username) & equal(password, secret)
    elif kind.lower() == "bearer" and bearer:
        ok = equal(value.strip(), secret)
    if not ok:
        raise Refused(401, "unauthorized", "send this endpoint's credentials (HTTP basic auth"
                      + (" or a bearer token)" if bearer else ")"),
                      headers={"WWW-Authenticate": f'Basic realm="{realm}"'})


def secret_required(what: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """A provider module's ``options`` when its endpoint needs only a secret: ``what`` says which."""
    def options(secret: str, given: dict[str, Any]) -> dict[str, Any]:
        if not secret:
            raise ValueError(f"secret: give {what}")
        return {}

    return options


def json_body(body: bytes, what: str = "body is not JSON") -> Any:
    """The body as JSON, or ``Malformed`` naming what it should have been."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise Malformed(f"{what}: {e}") from None


def password_json(req: HookRequest, realm: str) -> Any:
    """The body as JSON of a request authenticated by the endpoint's password or bearer token
    (Postmark, SparkPost, Brevo: providers that do not sign)."""
    check_password(req, req.endpoint.secret, realm=realm)
    return json_body(req.body)


@lru_cache(maxsize=8192)
def classify(status: str, reply_code: str, diagnostic: str, provider_reason: Reason | None) -> tuple[Reason, str, str]:
    """The bounce reason, by our engine (``bounces.classify``), from what the remote server said; the
    provider's own class only when there is nothing to read (or nothing our engine can tell from it).

    Returns the reason, and the status and reply code (found in the diagnostic when not given).
    Remembered: the verdict depends on these four alone, and providers repeat the same few
    diagnostics for thousands of recipients (a mailbox provider's "user unknown", a blocklist's notice).
    """
    diagnostic = squash(diagnostic or "")
    if not status or status.endswith(".0.0"):
        status = find_status(diagnostic) or status or ""
    reply_code = reply_code or find_reply_code(diagnostic)
    if not status and not diagnostic:
        return provider_reason or Reason.UNDEFINED, status, reply_code
    reason = bounces.classify(status, reply_code, diagnostic)
    if reason in (Reason.UNDEFINED, Reason.ONHOLD, Reason.DELIVERED, Reason.FEEDBACK) and provider_reason:
        return provider_reason, status, reply_code
    if reason in (Reason.DELIVERED, Reason.FEEDBACK):
        return Reason.UNDEFINED, status, reply_code
    return reason, status, reply_code


# -- small readers for untrusted JSON ---------------------------------------------------------


def obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{what} must be a JSON object")
    return value


def sub(parent: dict[str, Any], key: str) -> dict[str, Any]:
    """A nested object, or {} when it is missing or not an object."""
    value = parent.get(key)
    return value if isinstance(value, dict) else {}


def text(value: Any, limit: int = 4000) -> str:
    """A string field as stored: bounded, without NULs; numbers become text; anything else is empty."""
    if value.__class__ is str:  # the usual case, first: this runs for every field of every event
        if len(value) <= limit and "\x00" not in value:
            return value
        return value.replace("\x00", "")[:limit]
    if isinstance(value, bool) or value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)[:limit]
    if isinstance(value, str):
        return value.replace("\x00", "")[:limit]
    return ""


def address(value: Any) -> str:
    """A recipient address, lower-cased, from ``Name <a@b>`` or a bare address; '' when it is none."""
    v = text(value, 640).strip()
    if 3 <= len(v) <= 320 and "@" in v and "<" not in v and " " not in v:
        return v.lower()
    if "<" in v and v.endswith(">"):
        v = v[v.rindex("<") + 1 : -1]
    v = v.strip().lower()
    return v if 3 <= len(v) <= 320 and "@" in v and " " not in v else ""


def ms_from_epoch(value: Any, what: str, *, millis: bool = False) -> int:
    if value.__class__ is int:  # the usual case, first
        ms = value if millis else value * 1000
        if MIN_MS <= ms < MAX_MS:
            return ms
    try:
        n = float(value)
        ms = int(n if millis else n * 1000)
    except (TypeError, ValueError, OverflowError):  # not a number, NaN, infinite or past a float's range
        raise Malformed(f"{what} is not a timestamp") from None
    if not in_range(ms):
        raise Malformed(f"{what} is out of range: times must be {RANGE_TEXT}")
    return ms


def ms_from_iso(value: Any, what: str) -> int:
    if not isinstance(value, str):
        raise Malformed(f"{what} must be an ISO 8601 time")
    v = value.strip()
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    # Some providers write seven fractional digits (.NET): Python reads at most six.
    if "." in v:
        head, _, rest = v.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        v = head + "." + rest[: min(digits, 6)] + rest[digits:]
    try:
        dt = datetime.fromisoformat(v)
    except ValueError:
        raise Malformed(f"{what} {value[:40]!r} is not an ISO 8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return ms_from_epoch(dt.timestamp(), what)


def metadata_id(meta: Any) -> str | None:
    """Our id from a metadata map (``{"mailtally_id": ...}``), if it is there."""
    if isinstance(meta, dict):
        value = meta.get(MAILTALLY_ID)
        if isinstance(value, str) and value:
            return value[:200]
    return None
