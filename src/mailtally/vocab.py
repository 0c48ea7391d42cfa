"""The domain vocabularies, defined once.

Every dialect (Constant Contact v3/v2, Zoho, WhatCounts) and every source maps *from*
these names; nothing else in the code base spells a reason, a bounce code or an event
type by hand.
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    SEND = "send"
    OPEN = "open"
    CLICK = "click"
    FORWARD = "forward"
    OPTOUT = "optout"
    BOUNCE = "bounce"
    ABUSE = "abuse"
    # History only: kept in the log for the contact's timeline, never counted, never a bounce.
    DELIVERY = "delivery"  # the receiving system accepted the message (a provider's or a DSN's word)
    DEFERRAL = "deferral"  # a temporary failure the sending MTA will retry (Postfix "deferred", Exim "==")


HISTORY_ONLY = frozenset({EventType.DELIVERY, EventType.DEFERRAL})


class DeviceType(StrEnum):
    COMPUTER = "computer"
    MOBILE = "mobile"
    TABLET = "tablet"
    OTHER = "other"
    NONE = "none"


class BounceCode(StrEnum):
    """Constant Contact's one-letter bounce codes."""

    NONEXISTENT = "B"
    UNDELIVERABLE = "D"
    MAILBOX_FULL = "F"
    SUSPENDED = "S"
    VACATION = "V"
    OTHER = "X"
    BLOCKED = "Z"


class Reason(StrEnum):
    """Why a message failed, in Sisimai's vocabulary."""

    USERUNKNOWN = "userunknown"
    HOSTUNKNOWN = "hostunknown"
    HASMOVED = "hasmoved"
    NOTACCEPT = "notaccept"
    SUSPEND = "suspend"
    SUPPRESSED = "suppressed"
    MAILBOXFULL = "mailboxfull"
    SYSTEMFULL = "systemfull"
    VACATION = "vacation"
    BLOCKED = "blocked"
    FILTERED = "filtered"
    SPAMDETECTED = "spamdetected"
    VIRUSDETECTED = "virusdetected"
    POLICYVIOLATION = "policyviolation"
    REJECTED = "rejected"
    BADREPUTATION = "badreputation"
    REQUIREPTR = "requireptr"
    NORELAYING = "norelaying"
    AUTHFAILURE = "authfailure"
    SECURITYERROR = "securityerror"
    NOTCOMPLIANTRFC = "notcompliantrfc"
    CONTENTERROR = "contenterror"
    SPEEDING = "speeding"
    TOOMANYCONN = "toomanyconn"
    RATELIMITED = "ratelimited"
    EXPIRED = "expired"
    NETWORKERROR = "networkerror"
    SYSTEMERROR = "systemerror"
    MAILERERROR = "mailererror"
    FAILEDSTARTTLS = "failedstarttls"
    MESGTOOBIG = "mesgtoobig"
    EXCEEDLIMIT = "exceedlimit"
    SYNTAXERROR = "syntaxerror"
    ONHOLD = "onhold"
    UNDEFINED = "undefined"
    # Not bounces: an ARF complaint, and a delivery report that says "delivered".
    FEEDBACK = "feedback"
    DELIVERED = "delivered"


_R = Reason
REASON_TO_CODE: dict[Reason, BounceCode] = {
    **dict.fromkeys((_R.USERUNKNOWN, _R.HOSTUNKNOWN, _R.HASMOVED, _R.NOTACCEPT), BounceCode.NONEXISTENT),
    **dict.fromkeys((_R.SUSPEND, _R.SUPPRESSED), BounceCode.SUSPENDED),
    **dict.fromkeys((_R.MAILBOXFULL, _R.SYSTEMFULL), BounceCode.MAILBOX_FULL),
    _R.VACATION: BounceCode.VACATION,
    **dict.fromkeys(
        (
            _R.BLOCKED, _R.FILTERED, _R.SPAMDETECTED, _R.VIRUSDETECTED, _R.POLICYVIOLATION,
            _R.REJECTED, _R.BADREPUTATION, _R.REQUIREPTR, _R.NORELAYING, _R.AUTHFAILURE,
            _R.SECURITYERROR, _R.NOTCOMPLIANTRFC, _R.CONTENTERROR, _R.SPEEDING,
            _R.TOOMANYCONN, _R.RATELIMITED,
        ),
        BounceCode.BLOCKED,
    ),
    **dict.fromkeys(
        (_R.EXPIRED, _R.NETWORKERROR, _R.SYSTEMERROR, _R.MAILERERROR, _R.FAILEDSTARTTLS),
        BounceCode.UNDELIVERABLE,
    ),
    **dict.fromkeys(
        (_R.MESGTOOBIG, _R.EXCEEDLIMIT, _R.SYNTAXERROR, _R.ONHOLD, _R.UNDEFINED), BounceCode.OTHER
    ),
}

HARD_CODES = frozenset({BounceCode.NONEXISTENT, BounceCode.SUSPENDED})


def bounce_code_for(reason: Reason | str) -> BounceCode | None:
    """The CC bounce code a reason reports as; None for feedback and delivered."""
    return REASON_TO_CODE.get(Reason(reason))


def is_hard(code: BounceCode | str | None) -> bool:
    return code is not None and BounceCode(code) in HARD_CODES


class ZohoBounceType(StrEnum):
    HARD = "hardbounce"
    SOFT = "softbounce"


class WhatCountsBounceType(StrEnum):
    HARD = "HARD_BOUNCE"
    SOFT = "SOFT_BOUNCE"
    BLOCKED = "BLOCKED"


def zoho_bounce_type(code: BounceCode | str) -> ZohoBounceType | None:
    """Zoho's hard/soft split; None for vacation, which Zoho does not report as a bounce."""
    code = BounceCode(code)
    if code is BounceCode.VACATION:
        return None
    return ZohoBounceType.HARD if code in HARD_CODES else ZohoBounceType.SOFT


def whatcounts_bounce_type(code: BounceCode | str) -> WhatCountsBounceType | None:
    code = BounceCode(code)
    if code is BounceCode.VACATION:
        return None
    if code in HARD_CODES:
        return WhatCountsBounceType.HARD
    if code is BounceCode.BLOCKED:
        return WhatCountsBounceType.BLOCKED
    return WhatCountsBounceType.SOFT


def codes_for_zoho(kind: ZohoBounceType) -> frozenset[BounceCode]:
    return frozenset(c for c in BounceCode if zoho_bounce_type(c) is kind)


def codes_for_whatcounts(kind: WhatCountsBounceType) -> frozenset[BounceCode]:
    return frozenset(c for c in BounceCode if whatcounts_bounce_type(c) is kind)


# The reason assumed when a caller gives only a bounce code.
CODE_DEFAULT_REASON: dict[BounceCode, Reason] = {
    BounceCode.NONEXISTENT: Reason.USERUNKNOWN,
    BounceCode.UNDELIVERABLE: Reason.EXPIRED,
    BounceCode.MAILBOX_FULL: Reason.MAILBOXFULL,
    BounceCode.SUSPENDED: Reason.SUSPEND,
    BounceCode.VACATION: Reason.VACATION,
    BounceCode.OTHER: Reason.UNDEFINED,
    BounceCode.BLOCKED: Reason.BLOCKED,
}

# Words for each code, as Constant Contact's reports describe them.
CODE_DESCRIPTION: dict[BounceCode, str] = {
    BounceCode.NONEXISTENT: "Non-existent address",
    BounceCode.UNDELIVERABLE: "Undeliverable",
    BounceCode.MAILBOX_FULL: "Mailbox full",
    BounceCode.SUSPENDED: "Suspended",
    BounceCode.VACATION: "Vacation or autoreply",
    BounceCode.OTHER: "Other",
    BounceCode.BLOCKED: "Blocked",
}


class Scope(StrEnum):
    CAMPAIGN_DATA = "campaign_data"
    CONTACT_DATA = "contact_data"
    INGEST = "ingest"
    ADMIN = "admin"


class Verdict(StrEnum):
    """Whether a person or a machine made an open or a click."""

    HUMAN = "human"
    MACHINE = "machine"


class VerdictWhy(StrEnum):
    """Why a hit got its verdict: the first signal that decided it."""

    NO_SIGNAL = "no_signal"  # human: nothing says machine
    GMAIL_PROXY = "gmail_proxy"
    YAHOO_PROXY = "yahoo_proxy"
    APPLE_MPP = "apple_mpp"  # Apple Mail Privacy Protection's prefetch
    BOT_USER_AGENT = "bot_user_agent"
    NO_USER_AGENT = "no_user_agent"
    HEAD_REQUEST = "head_request"
    SCANNER_NETWORK = "scanner_network"
    TOO_SOON = "too_soon"  # within seconds of the send
    CLICK_BURST = "click_burst"  # another link of the message clicked within a second
    HONEYPOT = "honeypot"  # the hidden link no person can see
    PROVIDER_PROXY = "provider_proxy"  # a sending provider's webhook says an image proxy made it


class MachineKind(StrEnum):
    """Image proxies fetch on a reader's behalf (often when a person opens the mail);
    scanners fetch for a mail filter, with no person behind them."""

    PROXY = "proxy"
    SCANNER = "scanner"


MACHINE_KIND: dict[VerdictWhy, MachineKind] = {
    **dict.fromkeys((VerdictWhy.GMAIL_PROXY, VerdictWhy.YAHOO_PROXY, VerdictWhy.APPLE_MPP, VerdictWhy.PROVIDER_PROXY),
                    MachineKind.PROXY),
    **dict.fromkeys(
        (VerdictWhy.BOT_USER_AGENT, VerdictWhy.NO_USER_AGENT, VerdictWhy.HEAD_REQUEST, VerdictWhy.SCANNER_NETWORK,
         VerdictWhy.TOO_SOON, VerdictWhy.CLICK_BURST, VerdictWhy.HONEYPOT),
        MachineKind.SCANNER,
    ),
}


class MachineCounting(StrEnum):
    """Per account: which machine hits the vendor surfaces (CC, Zoho, WhatCounts) count.

    Every hit stays in the log with its verdict; /v1 shows human and machine side by side."""

    ALL = "all"  # every machine hit counts
    PROXY = "proxy"  # image-proxy hits count (Apple's prefetch included), scanners' do not
    NONE = "none"  # only human hits count


# What those vendors count: Apple's proxied opens are opens; scanner clicks are not clicks.
DEFAULT_OPEN_COUNTING = MachineCounting.PROXY
DEFAULT_CLICK_COUNTING = MachineCounting.NONE


def counts_for_vendors(verdict: Verdict, why: VerdictWhy, policy: MachineCounting) -> bool:
    if verdict is Verdict.HUMAN or policy is MachineCounting.ALL:
        return True
    return policy is MachineCounting.PROXY and MACHINE_KIND.get(why) is MachineKind.PROXY


class IpStorage(StrEnum):
    """How much of a recipient's IP address the log keeps."""

    FULL = "full"
    TRUNCATED = "truncated"  # IPv4 to its /24, IPv6 to its /48
    NONE = "none"


class Health(StrEnum):
    """What ``/healthz`` and ``mailtally tracking status`` say of the instance."""

    OK = "ok"
    BEHIND = "behind"  # tracking hits answered long ago are not in the log yet: reports wait for them


class OptoutSource(StrEnum):
    ONE_CLICK = "one_click"  # RFC 8058 POST from the mailbox provider
    PAGE = "page"  # the button on the unsubscribe page
    MAILTO = "mailto"  # a message to List-Unsubscribe's mailto: address (unsubscribe+<token>@domain)

class SuppressionReason(StrEnum):
    """Why an address is on an account's suppression list."""

    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"  # the soft-bounce threshold was reached
    BLOCK = "block"  # blocks, when the policy counts them
    COMPLAINT = "complaint"
    OPTOUT = "optout"
    MANUAL = "manual"
    IMPORT = "import"


class BlockPolicy(StrEnum):
    """What a block (code Z) does to the address: usually the sender's reputation, not the address."""

    IGNORE = "ignore"
    SOFT = "soft"  # counts towards the soft-bounce threshold
    HARD = "hard"  # suppresses at once


class AlertKind(StrEnum):
    """The rates an alert rule watches, per activity."""

    BOUNCE_RATE = "bounce_rate"
    HARD_BOUNCE_RATE = "hard_bounce_rate"
    COMPLAINT_RATE = "complaint_rate"
    OPTOUT_RATE = "optout_rate"


class WebhookEvent(StrEnum):
    """What an outgoing webhook subscription can ask for (the payload's ``type``)."""

    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    OPTOUT = "optout"
    FORWARD = "forward"
    SUPPRESSION_ADDED = "suppression.added"
    SUPPRESSION_REMOVED = "suppression.removed"
    ALERT_FIRED = "alert.fired"


class WebhookDeliveryState(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after the retry schedule
class WebhookProvider(StrEnum):
    """The sending providers whose event webhooks mailtally takes (``POST /hooks/{provider}/{id}``)."""

    SES = "ses"  # Amazon SES, through an SNS topic
    SENDGRID = "sendgrid"
    MAILGUN = "mailgun"
    POSTMARK = "postmark"
    SPARKPOST = "sparkpost"
    BREVO = "brevo"
    RESEND = "resend"


class ProviderEventKind(StrEnum):
    """What a provider says happened, in one vocabulary for all of them (django-anymail's)."""

    SENT = "sent"  # accepted or handed on by the provider
    REJECTED = "rejected"  # refused before sending (suppressed, invalid, dropped)
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # a temporary failure; the provider tries again
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    UNSUBSCRIBED = "unsubscribed"
    SUBSCRIBED = "subscribed"
    OPENED = "opened"
    CLICKED = "clicked"
    UNKNOWN = "unknown"
