"""Resend webhooks, signed by Svix (the Standard Webhooks scheme): base64 HMAC-SHA256 of
``{svix-id}.{svix-timestamp}.{body}`` under the ``whsec_`` secret, in ``svix-signature`` as
space-separated ``v1,<signature>`` entries; the timestamp must be within the tolerance.

``svix-id`` stays the same across retries: it is the event id. Resend sends one notification per
recipient without saying which: the event is the first ``to`` address's unless our id names
another. A sender attaches ``mailtally_id`` as a tag (``tags: [{name: "mailtally_id", value}]``)
or as the ``X-Mailtally-Id`` header.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

from ...verp import TOKEN_HEADER
from ...vocab import ProviderEventKind as K
from ...vocab import Reason
from .base import (
    MAILTALLY_ID,
    Delivery,
    HookRequest,
    Malformed,
    ProviderEvent,
    Refused,
    address,
    check_timestamp,
    equal,
    header,
    json_body,
    ms_from_iso,
    obj,
    sub,
    text,
)
from .ses import bounce_class

KINDS = {
    "email.sent": K.SENT, "email.delivered": K.DELIVERED, "email.delivery_delayed": K.DEFERRED,
    "email.complained": K.COMPLAINED, "email.bounced": K.BOUNCED, "email.opened": K.OPENED,
    "email.clicked": K.CLICKED, "email.failed": K.REJECTED, "email.suppressed": K.REJECTED,
}


def secret_key(secret: str) -> bytes:
    s = secret.strip()
    s = s[len("whsec_"):] if s.startswith("whsec_") else s
    try:
        return base64.b64decode(s, validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("the Resend signing secret is whsec_ followed by base64") from None


def options(secret: str, given: dict[str, Any]) -> dict[str, Any]:
    if not secret:
        raise ValueError("secret: give the webhook's signing secret (whsec_...) from Resend")
    secret_key(secret)
    return {}


def verify(req: HookRequest) -> tuple[str, str]:
    """The event id (``svix-id``) and the signatures of a request whose signature holds."""
    msg_id = header(req, "svix-id") or header(req, "webhook-id")
    timestamp = header(req, "svix-timestamp") or header(req, "webhook-timestamp")
    signatures = header(req, "svix-signature") or header(req, "webhook-signature")
    if not (msg_id and timestamp and signatures):
        raise Refused(401, "unsigned", "the svix-id, svix-timestamp and svix-signature headers are required")
    check_timestamp(req, timestamp, "svix-timestamp")
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + req.body
    expected = base64.b64encode(hmac.new(secret_key(req.endpoint.secret), signed, hashlib.sha256).digest())
    ok = False
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version == "v1" and equal(value.encode(), expected):
            ok = True
    if not ok:
        raise Refused(403, "bad_signature", "no signature matches this endpoint's signing secret")
    return msg_id[:200], signatures


def _tag(tags: Any) -> str | None:
    if isinstance(tags, dict):
        value = tags.get(MAILTALLY_ID)
        return value[:200] if isinstance(value, str) else None
    if isinstance(tags, list):
        for t in tags:
            if isinstance(t, dict) and t.get("name") == MAILTALLY_ID and isinstance(t.get("value"), str):
                return str(t["value"])[:200]
    return None


def _header(headers: Any, name: str) -> str | None:
    if isinstance(headers, list):
        for h in headers:
            if isinstance(h, dict) and text(h.get("name"), 100).lower() == name.lower():
                return text(h.get("value"), 998) or None
    elif isinstance(headers, dict):
        for k, v in headers.items():
            if isinstance(k, str) and k.lower() == name.lower():
                return text(v, 998) or None
    return None


def receive(req: HookRequest) -> Delivery:
    event_id, signatures = verify(req)
    events = _events(req, event_id)
    # The same signed request shown twice is a replay (Svix signs each retry anew).
    return Delivery(events, replay_token="sig:" + hashlib.sha256(signatures.encode()).hexdigest()[:48],
                    replay_window_ms=2 * req.settings.webhook_tolerance_seconds * 1000, replay_status=409)


def _events(req: HookRequest, event_id: str) -> list[ProviderEvent]:
    doc = obj(json_body(req.body), "body")
    name = text(doc.get("type"), 64)
    kind = KINDS.get(name, K.UNKNOWN)
    data = obj(doc.get("data"), "data")
    to = data.get("to")
    recipients = [a for a in (address(t) for t in (to if isinstance(to, list) else [to])) if a]
    if not recipients:
        if kind is K.UNKNOWN:
            return [ProviderEvent(K.UNKNOWN, "", 0, event_id, provider_kind=name)]
        raise Malformed("data.to names no recipient")
    ev = ProviderEvent(kind, recipients[0], ms_from_iso(doc.get("created_at"), "created_at"), event_id,
                       provider_kind=name,
                       mailtally_id=_tag(data.get("tags")) or _header(data.get("headers"), TOKEN_HEADER),
                       message_id=_header(data.get("headers"), "Message-ID"),
                       provider_message_id=text(data.get("email_id"), 200) or None,
                       recipients_in_message=len(recipients), alternates=tuple(recipients[1:]))
    if kind is K.BOUNCED or kind is K.REJECTED or kind is K.DEFERRED:
        bounce = sub(data, "bounce")
        failed = sub(data, "failed")
        ev.diagnostic = text(bounce.get("message")) or text(failed.get("reason"))
        # Resend sends through Amazon SES and reports SES's bounce type and subtype.
        ev.provider_reason = bounce_class(text(bounce.get("type"), 32), text(bounce.get("subType"), 64))
        if name == "email.suppressed":
            ev.provider_reason = Reason.SUPPRESSED
    elif kind is K.CLICKED:
        click = sub(data, "click")
        ev.url = text(click.get("link"), 4000) or None
        ev.user_agent = text(click.get("userAgent"), 1000) or None
    return [ev]
