"""Postmark webhooks: one JSON record per request (``RecordType`` Bounce, Delivery, Open, Click,
SpamComplaint, SubscriptionChange). Not signed: the URL carries HTTP basic auth (Postmark's
"HTTP Auth"), or a custom ``Authorization: Bearer`` header; both checked in constant time.

A sender attaches ``mailtally_id`` as metadata (``Metadata`` in the API, ``X-PM-Metadata-mailtally_id``
over SMTP); it comes back in ``Metadata``.
"""

from __future__ import annotations

from typing import Any

from ...vocab import DeviceType, Reason
from ...vocab import ProviderEventKind as K
from .base import (
    Delivery,
    HookRequest,
    Malformed,
    ProviderEvent,
    address,
    metadata_id,
    ms_from_iso,
    obj,
    password_json,
    secret_required,
    text,
)

# Bounce TypeCodes (Postmark's Bounce API): the kind they are, and the reason used when
# ``Details`` gives our engine nothing to read.
TYPE_CODES: dict[int, tuple[K, Reason | None]] = {
    1: (K.BOUNCED, Reason.USERUNKNOWN),  # HardBounce
    2: (K.BOUNCED, Reason.UNDEFINED),  # Transient
    16: (K.UNSUBSCRIBED, None),  # Unsubscribe
    32: (K.SUBSCRIBED, None),  # Subscribe
    64: (K.BOUNCED, Reason.VACATION),  # AutoResponder
    128: (K.BOUNCED, Reason.HASMOVED),  # AddressChange
    256: (K.BOUNCED, Reason.HOSTUNKNOWN),  # DnsError
    512: (K.BOUNCED, Reason.SPAMDETECTED),  # SpamNotification
    1024: (K.BOUNCED, Reason.NORELAYING),  # OpenRelayTest
    2048: (K.BOUNCED, Reason.UNDEFINED),  # Unknown
    4096: (K.BOUNCED, Reason.UNDEFINED),  # SoftBounce
    8192: (K.BOUNCED, Reason.VIRUSDETECTED),  # VirusNotification
    16384: (K.BOUNCED, Reason.FILTERED),  # ChallengeVerification
    100000: (K.REJECTED, Reason.USERUNKNOWN),  # BadEmailAddress
    100001: (K.COMPLAINED, None),  # SpamComplaint
    100002: (K.REJECTED, Reason.SUPPRESSED),  # ManuallyDeactivated
    100003: (K.REJECTED, Reason.REJECTED),  # Unconfirmed
    100006: (K.BOUNCED, Reason.BLOCKED),  # Blocked
    100007: (K.REJECTED, Reason.MAILERERROR),  # SMTPApiError
    100008: (K.BOUNCED, Reason.UNDEFINED),  # InboundError
    100009: (K.BOUNCED, Reason.AUTHFAILURE),  # DMARCPolicy
    100010: (K.REJECTED, Reason.CONTENTERROR),  # TemplateRenderingFailed
}
PLATFORMS = {"desktop": DeviceType.COMPUTER, "webmail": DeviceType.COMPUTER, "mobile": DeviceType.MOBILE,
             "unknown": DeviceType.OTHER}


options = secret_required("the password Postmark's HTTP Auth will send")


def receive(req: HookRequest) -> Delivery:
    doc = password_json(req, "postmark")
    # One record per request; a list is accepted too (a replayed export).
    records = doc if isinstance(doc, list) else [doc]
    return Delivery([event(obj(r, "record")) for r in records])


def event(r: dict[str, Any]) -> ProviderEvent:
    record_type = text(r.get("RecordType"), 32)
    meta = r.get("Metadata")
    pm_id = text(r.get("MessageID"), 200) or None
    if record_type in ("Bounce", "SpamComplaint"):
        code = r.get("TypeCode")
        kind, provider_reason = TYPE_CODES.get(code, (K.BOUNCED, Reason.UNDEFINED)) if isinstance(code, int) \
            else (K.BOUNCED, Reason.UNDEFINED)
        if record_type == "SpamComplaint":
            kind, provider_reason = K.COMPLAINED, None
        recipient, when, event_id = address(r.get("Email")), r.get("BouncedAt"), f"{record_type}:{r.get('ID')}"
        if r.get("ID") is None:
            raise Malformed(f"a {record_type} record needs its ID")
        ev = _base(kind, recipient, when, event_id, record_type, meta, pm_id)
        ev.diagnostic = text(r.get("Details"))
        ev.provider_reason = provider_reason
        return ev
    if record_type == "Delivery":
        ev = _base(K.DELIVERED, address(r.get("Recipient")), r.get("DeliveredAt"), "", record_type, meta, pm_id)
        ev.diagnostic = text(r.get("Details"))
        return ev
    if record_type in ("Open", "Click"):
        kind = K.OPENED if record_type == "Open" else K.CLICKED
        ev = _base(kind, address(r.get("Recipient")), r.get("ReceivedAt"), "", record_type, meta, pm_id)
        ev.user_agent = text(r.get("UserAgent"), 1000) or None
        ev.device = PLATFORMS.get(text(r.get("Platform"), 32).lower())
        ev.url = text(r.get("OriginalLink"), 4000) or None
        return ev
    if record_type == "SubscriptionChange":
        suppress = r.get("SuppressSending")
        kind = K.UNSUBSCRIBED if suppress is True else K.SUBSCRIBED
        ev = _base(kind, address(r.get("Recipient")), r.get("ChangedAt"), "", record_type, meta, pm_id)
        ev.optout_reason = text(r.get("SuppressionReason"), 1000) or None
        return ev
    recipient = address(r.get("Recipient") or r.get("Email"))
    return ProviderEvent(K.UNKNOWN, recipient, 0, "", provider_kind=record_type)


def _base(kind: K, recipient: str, when: Any, event_id: str, record_type: str, meta: Any,
          pm_id: str | None) -> ProviderEvent:
    if not recipient:
        raise Malformed(f"a {record_type} record needs the recipient's address")
    at = ms_from_iso(when, f"{record_type} time")
    # Only bounces have an id of their own; the rest are one per message, recipient, kind and time.
    event_id = event_id or f"{record_type}:{pm_id}:{recipient}:{at}"
    return ProviderEvent(kind, recipient, at, event_id, provider_kind=record_type, mailtally_id=metadata_id(meta),
                         provider_message_id=pm_id)
