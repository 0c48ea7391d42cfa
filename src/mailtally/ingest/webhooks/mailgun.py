"""Mailgun webhooks: ``{"signature": {"timestamp", "token", "signature"}, "event-data": {...}}``.

The signature is hex HMAC-SHA256 of timestamp + token under the webhook signing key. It does
not cover the body, so a token is accepted once only. Mailgun retries for 8 hours and does not
say that a retry is signed anew, so its timestamp window is ``mailgun_tolerance_seconds`` (9 h),
and tokens are kept for twice that: the token, not the time, is what refuses a replay.
A sender attaches ``mailtally_id`` as a variable (``v:mailtally_id`` or ``X-Mailgun-Variables``);
it comes back in ``user-variables``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from ...vocab import ProviderEventKind as K
from ...vocab import Reason
from .base import (
    Delivery,
    HookRequest,
    Malformed,
    ProviderEvent,
    Refused,
    address,
    check_timestamp,
    equal,
    json_body,
    metadata_id,
    ms_from_epoch,
    obj,
    secret_required,
    sub,
    text,
)

KINDS = {
    "accepted": K.SENT, "rejected": K.REJECTED, "delivered": K.DELIVERED, "failed": K.BOUNCED,
    "opened": K.OPENED, "clicked": K.CLICKED, "unsubscribed": K.UNSUBSCRIBED, "complained": K.COMPLAINED,
    # Legacy names.
    "dropped": K.REJECTED, "bounced": K.BOUNCED,
}
# Mailgun's own reason for a permanent failure, used only when there is no diagnostic.
REASONS = {
    "suppress-bounce": Reason.SUPPRESSED, "suppress-unsubscribe": Reason.SUPPRESSED,
    "suppress-complaint": Reason.SUPPRESSED, "bounce": Reason.USERUNKNOWN, "old": Reason.EXPIRED,
    "generic": Reason.UNDEFINED, "espblock": Reason.BLOCKED,
}


options = secret_required("Mailgun's HTTP webhook signing key")


def receive(req: HookRequest) -> Delivery:
    doc = obj(json_body(req.body), "body")
    sig = doc.get("signature")
    if not isinstance(sig, dict):
        raise Refused(401, "unsigned", "the body has no signature object")
    timestamp, token, signature = text(sig.get("timestamp"), 20), text(sig.get("token"), 128), \
        text(sig.get("signature"), 128)
    if not (timestamp and token and signature):
        raise Refused(401, "unsigned", "signature needs timestamp, token and signature")
    expected = hmac.new(req.endpoint.secret.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not equal(expected, signature.lower()):
        raise Refused(403, "bad_signature", "the signature does not match this endpoint's signing key")
    window = req.settings.mailgun_tolerance_seconds
    check_timestamp(req, timestamp, "signature.timestamp", window)
    return Delivery([event(obj(doc.get("event-data"), "event-data"))], replay_token=token,
                    replay_window_ms=2 * window * 1000)


def event(data: dict[str, Any]) -> ProviderEvent:
    name = text(data.get("event"), 64)
    kind = KINDS.get(name, K.UNKNOWN)
    severity = text(data.get("severity"), 16)
    if kind is K.BOUNCED and severity == "temporary":
        kind = K.DEFERRED
    recipient = address(data.get("recipient"))
    event_id = text(data.get("id"), 200)
    if not recipient or not event_id:
        raise Malformed("event-data needs id and recipient")
    occurred = ms_from_epoch(data.get("timestamp"), "event-data.timestamp")
    message = sub(data, "message")
    headers = sub(message, "headers")
    ev = ProviderEvent(
        kind, recipient, occurred,
        # Mailgun's id is unique only within a day: with the time it is unique.
        f"{event_id}@{occurred}", provider_kind=name,
        mailtally_id=metadata_id(data.get("user-variables")),
        message_id=text(headers.get("message-id"), 998) or None,
    )
    status = sub(data, "delivery-status")
    if kind in (K.BOUNCED, K.DEFERRED, K.REJECTED, K.DELIVERED):
        ev.status = text(status.get("enhanced-code"), 16)
        code = status.get("code")
        ev.reply_code = str(code) if isinstance(code, int) and 200 <= code < 600 else ""
        ev.diagnostic = text(status.get("message")) or text(status.get("description"))
        ev.remote_mta = text(status.get("mx-host"), 255)
        reason = text(data.get("reason"), 64)
        ev.provider_reason = REASONS.get(reason)
        ev.own_words = reason.startswith("suppress-")  # Mailgun did not try: no server said anything
        if kind is K.REJECTED:
            reject = sub(data, "reject")
            ev.diagnostic = ev.diagnostic or text(reject.get("reason"))
            ev.provider_reason = ev.provider_reason or Reason.REJECTED
    elif kind is K.OPENED or kind is K.CLICKED:
        client = sub(data, "client-info")
        ev.user_agent = text(client.get("user-agent"), 1000) or None
        ev.url = text(data.get("url"), 4000) or None
    return ev
