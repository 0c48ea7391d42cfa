"""SparkPost (Bird) event webhooks: a JSON array of ``{"msys": {"<class>": {...}}}`` batches
(``{"msys": {}}`` is the ping sent when a webhook is created). Not signed: the webhook is set up
with basic auth, or a custom ``Authorization: Bearer`` header; both checked in constant time.

A sender attaches ``mailtally_id`` as recipient metadata (``metadata`` of the recipient or the
transmission); it comes back in ``rcpt_meta``.
"""

from __future__ import annotations

from typing import Any

from ...vocab import ProviderEventKind as K
from ...vocab import Reason
from .base import (
    Delivery,
    HookRequest,
    Malformed,
    ProviderEvent,
    address,
    metadata_id,
    ms_from_epoch,
    ms_from_iso,
    password_json,
    secret_required,
    text,
)

KINDS = {
    "injection": K.SENT, "delivery": K.DELIVERED, "bounce": K.BOUNCED, "out_of_band": K.BOUNCED,
    "delay": K.DEFERRED, "policy_rejection": K.REJECTED, "generation_failure": K.REJECTED,
    "generation_rejection": K.REJECTED, "spam_complaint": K.COMPLAINED, "open": K.OPENED,
    "initial_open": K.OPENED, "amp_open": K.OPENED, "amp_initial_open": K.OPENED, "click": K.CLICKED,
    "amp_click": K.CLICKED, "list_unsubscribe": K.UNSUBSCRIBED, "link_unsubscribe": K.UNSUBSCRIBED,
}
# SparkPost's bounce classes, used only when raw_reason gives our engine nothing to read.
BOUNCE_CLASSES: dict[str, Reason] = {
    "1": Reason.UNDEFINED, "10": Reason.USERUNKNOWN, "20": Reason.UNDEFINED, "21": Reason.HOSTUNKNOWN,
    "22": Reason.MAILBOXFULL, "23": Reason.MESGTOOBIG, "24": Reason.EXPIRED, "25": Reason.SUPPRESSED,
    "30": Reason.USERUNKNOWN, "40": Reason.UNDEFINED, "50": Reason.BLOCKED, "51": Reason.BADREPUTATION,
    "52": Reason.SPAMDETECTED, "53": Reason.CONTENTERROR, "54": Reason.NORELAYING, "60": Reason.VACATION,
    "70": Reason.UNDEFINED, "100": Reason.FILTERED,
}
NOT_BOUNCES = {"80": K.SUBSCRIBED, "90": K.UNSUBSCRIBED}


options = secret_required("the password (or bearer token) the SparkPost webhook will send")


def receive(req: HookRequest) -> Delivery:
    doc = password_json(req, "sparkpost")
    if not isinstance(doc, list):
        raise Malformed("body must be a JSON array of {\"msys\": ...} objects")
    events = []
    for i, item in enumerate(doc):
        msys = item.get("msys") if isinstance(item, dict) else None
        if not isinstance(msys, dict):
            raise Malformed(f"item {i} must be {{\"msys\": {{...}}}}")
        for cls, data in msys.items():  # one class per item; none in a ping
            if not isinstance(data, dict):
                raise Malformed(f"item {i}: msys.{cls} must be an object")
            events.append(event(data, i))
    return Delivery(events)


def _time(value: Any, what: str) -> int:
    if isinstance(value, str) and not value.strip().isdigit():
        return ms_from_iso(value, what)
    return ms_from_epoch(value, what)


def event(d: dict[str, Any], i: int) -> ProviderEvent:
    name = text(d.get("type"), 64)
    kind = KINDS.get(name, K.UNKNOWN)
    bounce_class = text(d.get("bounce_class"), 8)
    if kind is K.BOUNCED and bounce_class in NOT_BOUNCES:
        kind = NOT_BOUNCES[bounce_class]
    recipient = address(d.get("rcpt_to") or d.get("raw_rcpt_to"))
    event_id = text(d.get("event_id"), 200)
    if not recipient or not event_id:
        raise Malformed(f"item {i} needs event_id and rcpt_to")
    ev = ProviderEvent(kind, recipient, _time(d.get("timestamp"), f"item {i} timestamp"), event_id,
                       provider_kind=name, mailtally_id=metadata_id(d.get("rcpt_meta")),
                       provider_message_id=text(d.get("message_id"), 200) or None)
    if kind in (K.BOUNCED, K.DEFERRED, K.REJECTED):
        ev.diagnostic = text(d.get("raw_reason")) or text(d.get("reason"))
        code = text(d.get("error_code"), 8)
        ev.reply_code = code if code.isdigit() and len(code) == 3 else ""
        ev.provider_reason = BOUNCE_CLASSES.get(bounce_class, Reason.REJECTED if kind is K.REJECTED else None)
    elif kind is K.OPENED or kind is K.CLICKED:
        ev.user_agent = text(d.get("user_agent"), 1000) or None
        ev.url = text(d.get("target_link_url"), 4000) or None
    return ev
