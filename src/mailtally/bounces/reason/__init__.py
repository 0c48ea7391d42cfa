"""The one place where a bounce's reason is decided.

Each reason lives in its own module with the DSN status codes that imply it and the
diagnostic phrases that say it. `decide` weighs them in a fixed order: what the format
reader knew for certain, then the diagnostic text (the most specific evidence), then the
DSN status code, then what little the action and the SMTP command tell.
"""

from __future__ import annotations

from types import ModuleType

from mailtally.bounces.finding import Finding
from mailtally.bounces.reason import (
    authfailure,
    badreputation,
    blocked,
    contenterror,
    delivered,
    exceedlimit,
    expired,
    failedstarttls,
    filtered,
    hasmoved,
    hostunknown,
    mailboxfull,
    mailererror,
    mesgtoobig,
    networkerror,
    norelaying,
    notaccept,
    notcompliantrfc,
    policyviolation,
    ratelimited,
    rejected,
    requireptr,
    securityerror,
    spamdetected,
    speeding,
    suppressed,
    suspend,
    syntaxerror,
    systemerror,
    systemfull,
    toomanyconn,
    userunknown,
    vacation,
    virusdetected,
)
from mailtally.vocab import Reason

# Order matters: a more specific phrase must be tried before a broader one that would also
# match ("mailbox full" before "mailbox", "spf" before "blocked", "sender rejected" before "rejected").
TEXT_ORDER: tuple[ModuleType, ...] = (
    suppressed,
    mailboxfull,
    exceedlimit,
    mesgtoobig,
    suspend,
    hasmoved,
    notcompliantrfc,
    authfailure,
    requireptr,
    badreputation,
    norelaying,
    hostunknown,
    rejected,
    userunknown,
    filtered,
    virusdetected,
    spamdetected,
    policyviolation,
    speeding,
    ratelimited,
    toomanyconn,
    blocked,
    failedstarttls,
    securityerror,
    notaccept,
    systemfull,
    contenterror,
    expired,
    networkerror,
    systemerror,
    mailererror,
    syntaxerror,
)

STATUS_TO_REASON: dict[str, Reason] = {}
for _mod in (*TEXT_ORDER, delivered):
    for _code in _mod.STATUSES:
        STATUS_TO_REASON.setdefault(_code, _mod.REASON)

# Status codes whose meaning is precise enough to beat a loose phrase in the diagnostic.
DECISIVE = frozenset(
    {
        "5.1.1", "5.1.2", "5.1.6", "5.2.2", "4.2.2", "5.2.3", "5.3.4", "5.7.25",
        "5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.26", "5.7.27", "5.1.7", "5.1.8",
    }
)
# Reasons a text match may give that must not override a decisive status code.
_LOOSE = frozenset(
    {
        Reason.BLOCKED, Reason.SYSTEMERROR, Reason.NETWORKERROR, Reason.SECURITYERROR, Reason.EXPIRED,
        Reason.FILTERED, Reason.POLICYVIOLATION, Reason.SPAMDETECTED, Reason.HOSTUNKNOWN,
        Reason.USERUNKNOWN, Reason.REJECTED, Reason.NOTACCEPT, Reason.SPEEDING,
    }
)


def by_text(text: str) -> Reason | None:
    """The first reason whose phrases appear in the (lower-cased) diagnostic."""
    for mod in TEXT_ORDER:
        if mod.match(text):
            return mod.REASON
    return None


def by_status(status: str) -> Reason | None:
    if not status:
        return None
    r = STATUS_TO_REASON.get(status)
    if r is not None:
        return r
    cls = status[:3]
    if cls in ("5.6", "4.6"):
        return Reason.CONTENTERROR
    if cls in ("5.7", "4.7"):
        return Reason.SECURITYERROR
    return None


def decide(f: Finding) -> Reason:
    """The reason for one finding; `Reason.DELIVERED` means it was not a failure."""
    if f.reason is not None:
        return f.reason
    status = f.status
    if status.startswith("2."):
        return Reason.DELIVERED
    text = f.diagnostic.lower()
    from_text = by_text(text) if text else None
    from_status = by_status(status)
    if (
        from_text is Reason.USERUNKNOWN
        and f.command not in ("RCPT", "MAIL")
        and not status.startswith(("5.1.", "4.1."))
        and from_status is not Reason.SUSPEND
    ):
        # "User unknown" said after the message was sent (at DATA), not to the address: the
        # recipient's side refused this sender or message. Japanese carriers do this for filters.
        return Reason.FILTERED
    if from_text is not None:
        if status in DECISIVE and from_status is not None and from_text in _LOOSE and from_text != from_status:
            return from_status
        return from_text
    if from_status is not None:
        return from_status
    if f.command == "MAIL":
        return Reason.REJECTED  # refused at MAIL FROM: the sender, not the recipient
    if f.command in ("CONN", "EHLO", "HELO"):
        return Reason.BLOCKED  # refused before any address was given: the sending host
    if f.diagnostic_type.upper().startswith("X-UNIX"):
        return Reason.MAILERERROR
    if f.action in ("delayed", "expired"):
        return Reason.EXPIRED
    if syntaxerror.match(text) or f.reply_code in ("501", "502", "503", "504"):
        return Reason.SYNTAXERROR
    if vacation.match(text):
        return Reason.VACATION
    if text:
        return Reason.ONHOLD
    return Reason.UNDEFINED
