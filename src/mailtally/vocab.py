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
