"""Amazon SES notifications, delivered by an SNS topic to an HTTPS subscription.

The SNS envelope is verified before anything else is read: its signature (version 1, RSA with
SHA1, or 2, RSA with SHA256) over the fields SNS signs, with the certificate fetched only from
``https://sns.<region>.amazonaws.com/....pem`` and cached; its topic must be one this endpoint
lists; and when the endpoint has a secret, HTTP basic auth too (SNS sends it only after a 401).
A ``SubscriptionConfirmation`` is confirmed (its SubscribeURL fetched) only then: a signature
alone proves only that *some* AWS account's topic sent it.

One SES notification can name several recipients (``bouncedRecipients``, ``complainedRecipients``,
``delivery.recipients``): each is an event, keyed by the SNS MessageId and its address. A sender
attaches ``mailtally_id`` as an SES message tag (``mail.tags``), or as the ``X-Mailtally-Id``
header when the configuration includes original headers.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

import orjson
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ...config import Settings
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
    Unavailable,
    address,
    check_password,
    header,
    json_body,
    ms_from_iso,
    obj,
    sub,
    text,
)

TOPIC_ARN = re.compile(r"^arn:aws(?:-cn|-us-gov)?:sns:[a-z0-9-]{1,30}:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$")
_SNS_HOST = re.compile(r"^sns\.[a-z0-9-]{3,}\.amazonaws\.com(?:\.cn)?$")
# The fields SNS signs, in this order, each only when present (AWS "Verifying the signatures").
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")

KINDS = {
    "Bounce": K.BOUNCED, "Complaint": K.COMPLAINED, "Delivery": K.DELIVERED, "Send": K.SENT, "Reject": K.REJECTED,
    "Open": K.OPENED, "Click": K.CLICKED, "DeliveryDelay": K.DEFERRED, "Subscription": K.UNSUBSCRIBED,
    # A template that failed to render: the sender's problem, no recipient's.
    "Rendering Failure": K.UNKNOWN,
}
# SES's bounce type and subtype, used only when the diagnostic gives our engine nothing to read.
SUBTYPES = {
    "noemail": Reason.USERUNKNOWN, "suppressed": Reason.SUPPRESSED, "onaccountsuppressionlist": Reason.SUPPRESSED,
    "mailboxfull": Reason.MAILBOXFULL, "messagetoolarge": Reason.MESGTOOBIG, "contentrejected": Reason.CONTENTERROR,
    "attachmentrejected": Reason.CONTENTERROR,
}
CERT_LIMIT = 64 * 1024
_certs: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
_certs_lock = threading.Lock()


def bounce_class(bounce_type: str, sub_type: str) -> Reason | None:
    sub = sub_type.lower()
    if sub in SUBTYPES:
        return SUBTYPES[sub]
    if bounce_type.lower() == "permanent":
        return Reason.USERUNKNOWN
    return Reason.UNDEFINED if bounce_type else None


def options(secret: str, given: dict[str, Any]) -> dict[str, Any]:
    arns = [a for a in given.get("topic_arns") or [] if isinstance(a, str)]
    if not arns:
        raise ValueError("topic_arns: name the SNS topic(s) this endpoint accepts; "
                         "no subscription is confirmed for any other topic")
    bad = [a for a in arns if not TOPIC_ARN.match(a)]
    if bad:
        raise ValueError(f"topic_arns: {bad[0]!r} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)")
    return {"topic_arns": sorted(set(arns))}


def trusted_url(url: str, settings: Settings, *, certificate: bool) -> bool:
    """An SNS address: https on sns.<region>.amazonaws.com (a .pem for certificates), or a configured prefix."""
    if any(url.startswith(p) for p in settings.sns_url_prefixes):
        return True
    try:
        u = urlsplit(url)
        port = u.port
    except ValueError:
        return False
    return (u.scheme == "https" and bool(_SNS_HOST.match(u.hostname or "")) and port in (None, 443)
            and not u.username and (not certificate or u.path.endswith(".pem")))


def _get(url: str, limit: int) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read(limit + 1))[:limit]
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise Unavailable(f"could not fetch {url}: {e}") from None


def certificate_key(url: str, settings: Settings) -> rsa.RSAPublicKey:
    with _certs_lock:
        key = _certs.get(url)
        if key is not None:
            _certs.move_to_end(url)
            return key
    pem = _get(url, CERT_LIMIT)
    try:
        found = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        raise Refused(403, "bad_certificate", "SigningCertURL does not hold a PEM certificate") from None
    if not isinstance(found, rsa.RSAPublicKey):
        raise Refused(403, "bad_certificate", "the signing certificate's key is not RSA")
    with _certs_lock:
        _certs[url] = found
        while len(_certs) > 32:
            _certs.popitem(last=False)
    return found


def verify_signature(envelope: dict[str, Any], settings: Settings) -> None:
    version = text(envelope.get("SignatureVersion"), 4)
    algorithm = HASHES.get(version)
    if algorithm is None:
        raise Refused(403, "bad_signature", f"SignatureVersion {version!r} is not 1 or 2")
    cert_url = text(envelope.get("SigningCertURL") or envelope.get("SigningCertUrl"), 2000)
    if not trusted_url(cert_url, settings, certificate=True):
        raise Refused(403, "bad_certificate", "SigningCertURL is not an SNS certificate address")
    fields = NOTIFICATION_FIELDS if envelope.get("Type") == "Notification" else CONFIRMATION_FIELDS
    parts = []
    for name in fields:
        value = envelope.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Malformed(f"{name} must be a string")
        parts.append(f"{name}\n{value}\n")
    try:
        signature = base64.b64decode(text(envelope.get("Signature"), 4096), validate=True)
    except (ValueError, binascii.Error):
        raise Refused(403, "bad_signature", "Signature is not base64") from None
    key = certificate_key(cert_url, settings)
    try:
        key.verify(signature, "".join(parts).encode(), padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Refused(403, "bad_signature", "the SNS signature does not verify") from None


def receive(req: HookRequest) -> Delivery:
    if req.endpoint.secret:
        check_password(req, req.endpoint.secret, bearer=False, realm="sns")
    envelope = obj(json_body(req.body, "body is not an SNS message (JSON)"), "body")
    kind = envelope.get("Type")
    if kind not in TYPES:
        raise Malformed(f"Type must be one of {', '.join(TYPES)}")
    for name, field in (("x-amz-sns-message-type", "Type"), ("x-amz-sns-message-id", "MessageId")):
        if header(req, name) and header(req, name) != envelope.get(field):
            raise Malformed(f"the {name} header does not match the body's {field}")
    topic = text(envelope.get("TopicArn"), 400)
    topics = list(req.endpoint.options.get("topic_arns") or [])
    if topic not in topics:
        raise Refused(403, "topic_not_allowed", f"topic {topic!r} is not one this endpoint accepts")
    verify_signature(envelope, req.settings)

    options = dict(req.endpoint.options)
    if kind == "SubscriptionConfirmation":
        url = text(envelope.get("SubscribeURL"), 4000)
        if not trusted_url(url, req.settings, certificate=False):
            raise Refused(403, "bad_subscribe_url", "SubscribeURL is not an SNS address")
        _get(url, CERT_LIMIT)  # confirms the subscription
        options["confirmed_topics"] = sorted({*options.get("confirmed_topics", []), topic})
        return Delivery(note=f"subscription to {topic} confirmed", options=options)
    if kind == "UnsubscribeConfirmation":
        # Acknowledged, not acted on: re-subscribing is the account owner's decision.
        options["unsubscribed_topics"] = sorted({*options.get("unsubscribed_topics", []), topic})
        return Delivery(note=f"unsubscribed from {topic}; visit its SubscribeURL to subscribe again", options=options)

    message_id = text(envelope.get("MessageId"), 200)
    if not message_id:
        raise Malformed("MessageId is required")
    try:
        notification = orjson.loads(text(envelope.get("Message"), 1_000_000))
    except orjson.JSONDecodeError:
        notification = None
    if not isinstance(notification, dict):
        # Not an SES notification (SES's own "Successfully validated" test message, for one).
        return Delivery([ProviderEvent(K.UNKNOWN, "", 0, message_id, provider_kind="non-SES message")])
    sent_at = envelope.get("Timestamp")
    return Delivery(events(notification, message_id, ms_from_iso(sent_at, "Timestamp") if sent_at else 0))


def _mail_id(mail: dict[str, Any]) -> str | None:
    tags = mail.get("tags")
    if isinstance(tags, dict):
        values = tags.get(MAILTALLY_ID)
        if isinstance(values, list) and values and isinstance(values[0], str):
            return values[0][:200]
    for h in mail.get("headers") or []:
        if isinstance(h, dict) and text(h.get("name"), 100).lower() == TOKEN_HEADER.lower():
            return text(h.get("value"), 200) or None
    return None


def events(n: dict[str, Any], message_id: str, published: int = 0) -> list[ProviderEvent]:
    """The events of one SES notification; ``published`` (SNS's time) when it gives none of its own."""
    name = text(n.get("eventType") or n.get("notificationType"), 64)
    kind = KINDS.get(name, K.UNKNOWN)
    mail = sub(n, "mail")
    common = sub(mail, "commonHeaders")
    destination = [a for a in (address(d) for d in mail.get("destination") or []) if a]
    base = {"provider_kind": name, "mailtally_id": _mail_id(mail),
            "message_id": text(common.get("messageId"), 998) or None,
            "provider_message_id": text(mail.get("messageId"), 200) or None}
    detail_key = {"Bounce": "bounce", "Complaint": "complaint", "Delivery": "delivery", "Send": "send",
                  "Reject": "reject", "Open": "open", "Click": "click", "DeliveryDelay": "deliveryDelay",
                  "Subscription": "subscription", "Rendering Failure": "failure"}.get(name, "")
    detail = sub(n, detail_key)
    when = detail.get("timestamp") or mail.get("timestamp")
    at = ms_from_iso(when, f"{name} timestamp") if when else published

    def one(recipient: str, **extra: Any) -> ProviderEvent:
        fields = {**base, **extra, "recipients_in_message": max(1, len(recipients))}
        return ProviderEvent(kind, recipient, at, f"{message_id}:{recipient}", **fields)

    if kind is K.BOUNCED:
        listed = [r for r in detail.get("bouncedRecipients") or [] if isinstance(r, dict)]
        recipients = [address(r.get("emailAddress")) for r in listed]
        cls = bounce_class(text(detail.get("bounceType"), 32), text(detail.get("bounceSubType"), 64))
        return [one(a, status=text(r.get("status"), 16), diagnostic=text(r.get("diagnosticCode")),
                    remote_mta=text(detail.get("remoteMtaIp"), 255), provider_reason=cls)
                for a, r in zip(recipients, listed, strict=True) if a]
    if kind is K.COMPLAINED:
        recipients = [address(r.get("emailAddress")) for r in detail.get("complainedRecipients") or []
                      if isinstance(r, dict)]
        return [one(a) for a in recipients if a]
    if kind is K.DELIVERED:
        recipients = [address(r) for r in detail.get("recipients") or []]
        smtp = text(detail.get("smtpResponse"))
        return [one(a, diagnostic=smtp, remote_mta=text(detail.get("remoteMtaIp"), 255)) for a in recipients if a]
    if kind is K.DEFERRED:
        listed = [r for r in detail.get("delayedRecipients") or [] if isinstance(r, dict)]
        recipients = [address(r.get("emailAddress")) for r in listed]
        return [one(a, status=text(r.get("status"), 16), diagnostic=text(r.get("diagnosticCode")))
                for a, r in zip(recipients, listed, strict=True) if a]
    recipients = destination
    if kind in (K.OPENED, K.CLICKED, K.UNSUBSCRIBED):
        # One recipient's open, click or opt-out, not each recipient's: the first, unless our id says which.
        if not recipients:
            raise Malformed(f"{name}: mail.destination names no recipient")
        if kind is K.UNSUBSCRIBED and sub(detail, "newTopicPreferences").get("unsubscribeAll") is not True:
            kind = K.SUBSCRIBED  # a change of topic preferences, not an opt-out of everything
        return [one(recipients[0], user_agent=text(detail.get("userAgent"), 1000) or None,
                    url=text(detail.get("link"), 4000) or None, alternates=tuple(recipients[1:]))]
    if kind is K.REJECTED:
        reason = text(detail.get("reason")) or text(detail.get("errorMessage"))
        cls = Reason.VIRUSDETECTED if name == "Reject" else Reason.CONTENTERROR
        return [one(a, diagnostic=reason, provider_reason=cls) for a in recipients]
    return [one(a) for a in recipients] or [ProviderEvent(K.UNKNOWN, "", at, message_id, provider_kind=name)]
