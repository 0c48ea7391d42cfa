"""SendGrid's Event Webhook: a JSON array of events, signed with ECDSA (P-256, SHA-256) over the
timestamp header followed by the raw body; the endpoint's secret is the verification key from
Mail Settings (base64 DER, as SendGrid shows it, or PEM).

Custom args (``custom_args``/``unique_args``) come back flattened into each event, so a sender
attaches ``mailtally_id`` as a custom arg.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

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
    header,
    json_body,
    ms_from_epoch,
    text,
)

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"

KINDS = {
    "processed": K.SENT, "dropped": K.REJECTED, "delivered": K.DELIVERED, "deferred": K.DEFERRED,
    "bounce": K.BOUNCED, "blocked": K.BOUNCED, "open": K.OPENED, "click": K.CLICKED, "spamreport": K.COMPLAINED,
    "unsubscribe": K.UNSUBSCRIBED, "group_unsubscribe": K.UNSUBSCRIBED, "group_resubscribe": K.SUBSCRIBED,
}
# SendGrid's own class, used only when the event carries no diagnostic.
BOUNCE_TYPE = {"bounce": Reason.USERUNKNOWN, "blocked": Reason.BLOCKED}
DROPPED = {
    "bounced address": Reason.SUPPRESSED, "unsubscribed address": Reason.SUPPRESSED,
    "spam reporting address": Reason.SUPPRESSED, "invalid": Reason.SYNTAXERROR,
    "invalid smtpapi header": Reason.SYNTAXERROR,
}


@lru_cache(maxsize=64)
def public_key(secret: str) -> ec.EllipticCurvePublicKey:
    """The verification key, from base64 DER (as Mail Settings shows it) or PEM."""
    s = secret.strip()
    try:
        key = load_pem_public_key(s.encode()) if s.startswith("-----") else load_der_public_key(base64.b64decode(s))
    except Exception as e:  # the key is the user's input: whatever cryptography says, it is a bad key
        raise ValueError(f"not a SendGrid verification key: {e}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("the SendGrid verification key must be an elliptic-curve (ECDSA) public key")
    return key


def signature_key(signature: str) -> str:
    return "sig:" + hashlib.sha256(signature.encode()).hexdigest()[:48]


def options(secret: str, given: dict[str, Any]) -> dict[str, Any]:
    if not secret:
        raise ValueError("secret: give the verification key from SendGrid's Mail Settings (Signed Event Webhook)")
    public_key(secret)
    return {}


def verify(req: HookRequest) -> str:
    """The signature of a request whose signature holds."""
    signature, timestamp = header(req, SIGNATURE), header(req, TIMESTAMP)
    if not signature or not timestamp:
        raise Refused(401, "unsigned", f"the {SIGNATURE} and {TIMESTAMP} headers are required")
    check_timestamp(req, timestamp, TIMESTAMP)
    try:
        raw = base64.b64decode(signature, validate=True)
        public_key(req.endpoint.secret).verify(raw, timestamp.encode() + req.body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise Refused(403, "bad_signature", "the signature does not match this endpoint's verification key") from None
    return signature


def receive(req: HookRequest) -> Delivery:
    signature = verify(req)
    items = json_body(req.body)
    if not isinstance(items, list):
        raise Malformed("body must be a JSON array of events")
    # The same signed request shown twice is a replay (a retry is signed anew); remembered for as
    # long as its timestamp could pass.
    return Delivery([event(item, i) for i, item in enumerate(items)], replay_token=signature_key(signature),
                    replay_window_ms=2 * req.settings.webhook_tolerance_seconds * 1000, replay_status=409)


def event(item: Any, i: int) -> ProviderEvent:
    if not isinstance(item, dict):
        raise Malformed(f"event {i} must be a JSON object")
    get = item.get  # this runs for every event of every batch: no work that only an error needs
    name = text(get("event"), 64)
    kind = KINDS.get(name, K.UNKNOWN)
    event_id = text(get("sg_event_id"), 200)
    recipient = address(get("email"))
    if not event_id or not recipient:
        raise Malformed(f"event {i} needs sg_event_id and email")
    try:
        at = ms_from_epoch(get("timestamp"), "timestamp")
    except Malformed as e:
        raise Malformed(f"event {i} {e}") from None
    ev = ProviderEvent(kind, recipient, at, event_id, name, text(get(MAILTALLY_ID), 200) or None,
                       text(get("smtp-id"), 998) or None, text(get("sg_message_id"), 200) or None)
    if kind is K.BOUNCED or kind is K.DEFERRED or kind is K.REJECTED or kind is K.DELIVERED:
        ev.status = text(item.get("status"), 16)
        # "reason" says why it bounced or was dropped; "response" is the server's reply otherwise.
        ev.diagnostic = text(item.get("reason")) or text(item.get("response"))
        if kind is K.BOUNCED:
            ev.provider_reason = BOUNCE_TYPE.get(text(item.get("type"), 16) or name)
        elif kind is K.REJECTED:
            ev.provider_reason = DROPPED.get(ev.diagnostic.lower(), Reason.SUPPRESSED)
            ev.own_words = ev.diagnostic.lower() in DROPPED
    elif kind is K.OPENED or kind is K.CLICKED:
        ev.user_agent = text(get("useragent"), 1000) or None
        ev.url = text(get("url"), 4000) or None
        machine = get("sg_machine_open")
        ev.machine = machine if isinstance(machine, bool) else None
    return ev
