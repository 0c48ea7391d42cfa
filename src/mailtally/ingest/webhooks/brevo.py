"""Brevo (Sendinblue) transactional webhooks: one JSON event per request, or a JSON array when
the webhook is batched. Not signed: the webhook is created with basic auth in its URL or
``auth: {type: bearer, token}``; both checked in constant time.

Brevo sends no event id: one is made from the event, message, recipient and its UTC time
(``ts_epoch``, milliseconds). A sender attaches ``mailtally_id`` in the ``X-Mailin-custom``
header (its value, or ``mailtally_id:<id>`` within it); it comes back in ``X-Mailin-custom``.
"""

from __future__ import annotations

from typing import Any

import orjson

from ...vocab import ProviderEventKind as K
from ...vocab import Reason
from .base import (
    MAILTALLY_ID,
    Delivery,
    HookRequest,
    Malformed,
    ProviderEvent,
    address,
    ms_from_epoch,
    obj,
    password_json,
    secret_required,
    text,
)

KINDS = {
    "request": K.SENT, "delivered": K.DELIVERED, "hard_bounce": K.BOUNCED, "soft_bounce": K.BOUNCED,
    "blocked": K.REJECTED, "invalid_email": K.REJECTED, "error": K.REJECTED, "deferred": K.DEFERRED,
    "spam": K.COMPLAINED, "complaint": K.COMPLAINED, "opened": K.OPENED, "unique_opened": K.OPENED,
    "proxy_open": K.OPENED, "unique_proxy_open": K.OPENED, "click": K.CLICKED, "unsubscribe": K.UNSUBSCRIBED,
    "unsubscribed": K.UNSUBSCRIBED,
}
MACHINE = frozenset({"proxy_open", "unique_proxy_open"})  # Brevo's own word: an image proxy opened it
# Brevo's class, used only when ``reason`` gives our engine nothing to read.
REASONS = {"hard_bounce": Reason.USERUNKNOWN, "soft_bounce": Reason.UNDEFINED, "blocked": Reason.SUPPRESSED,
           "invalid_email": Reason.SYNTAXERROR, "error": Reason.MAILERERROR}


options = secret_required("the password (or bearer token) the Brevo webhook will send")


def receive(req: HookRequest) -> Delivery:
    doc = password_json(req, "brevo")
    items = doc if isinstance(doc, list) else [doc]
    return Delivery([event(obj(item, f"event {i}"), i) for i, item in enumerate(items)])


def _custom_id(value: Any) -> str | None:
    """``X-Mailin-custom`` is free text; a JSON object with ``mailtally_id`` is read as such,
    anything else is searched for our signed id as it stands."""
    raw = text(value, 1000)
    if raw.startswith("{"):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get(MAILTALLY_ID), str):
            return str(doc[MAILTALLY_ID])[:200]
    return raw or None


def event(d: dict[str, Any], i: int) -> ProviderEvent:
    name = text(d.get("event"), 64)
    kind = KINDS.get(name, K.UNKNOWN)
    recipient = address(d.get("email"))
    if not recipient:
        raise Malformed(f"event {i} needs email")
    if d.get("ts_epoch") is not None:
        at = ms_from_epoch(d.get("ts_epoch"), f"event {i} ts_epoch", millis=True)
    else:
        at = ms_from_epoch(d.get("ts_event") or d.get("ts"), f"event {i} ts_event")
    message_id = text(d.get("message-id"), 998) or None
    ev = ProviderEvent(kind, recipient, at, f"{name}:{message_id}:{recipient}:{at}:{text(d.get('link'), 2000)}",
                       provider_kind=name, mailtally_id=_custom_id(d.get("X-Mailin-custom")), message_id=message_id)
    if kind in (K.BOUNCED, K.DEFERRED, K.REJECTED):
        ev.diagnostic = text(d.get("reason"))
        ev.provider_reason = REASONS.get(name)
    elif kind is K.OPENED or kind is K.CLICKED:
        ev.url = text(d.get("link"), 4000) or None
        ev.user_agent = text(d.get("user_agent"), 1000) or None
        ev.machine = name in MACHINE
    return ev
