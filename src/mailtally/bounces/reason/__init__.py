"""The one place where a bounce's reason is decided.

Each reason lives in its own module with the DSN status codes that imply it and the
diagnostic phrases that say it. `decide` follows the order Sisimai 5 uses, because its
judgement is the reference: what the format reader knew for certain; then rules for the
remote host's provider (`bounces.rhost`); then each reason's own test in a fixed order,
where the status code and the phrases are weighed together with the SMTP command; then,
when the status code is vague, a second phrase list; then the action and the command.
"""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

from mailtally.bounces import rhost
from mailtally.bounces.finding import Finding
from mailtally.bounces.reason import (
    _named_codes,
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

# Reason tests ask each other (userunknown asks blocked, rejected ...; filtered asks userunknown),
# so one diagnostic meets the same pattern several times: remember the last few answers.
for _mod in (
    authfailure, badreputation, blocked, contenterror, delivered, exceedlimit, expired, failedstarttls, filtered,
    hasmoved, hostunknown, mailboxfull, mailererror, mesgtoobig, networkerror, norelaying, notaccept,
    notcompliantrfc, policyviolation, ratelimited, rejected, requireptr, securityerror, spamdetected, speeding,
    suppressed, suspend, syntaxerror, systemerror, systemfull, toomanyconn, userunknown, vacation, virusdetected,
):
    _mod.match = lru_cache(maxsize=32)(_mod.match)  # type: ignore[attr-defined]

# Codes with one meaning that diagnostics name in words (Exchange's RESOLVER.ADR.RecipNotFound).
NAMED_CODE_MARKS = _named_codes.MARKS
named_code = _named_codes.reason_of

STATUS_TO_REASON: dict[str, Reason] = {}
for _mod in (
    suppressed, mailboxfull, exceedlimit, mesgtoobig, suspend, hasmoved, notcompliantrfc, authfailure,
    requireptr, badreputation, norelaying, hostunknown, rejected, userunknown, filtered, virusdetected,
    spamdetected, policyviolation, speeding, ratelimited, toomanyconn, blocked, failedstarttls,
    securityerror, notaccept, systemfull, contenterror, expired, networkerror, systemerror, mailererror,
    syntaxerror, delivered,
):
    for _code in _mod.STATUSES:
        STATUS_TO_REASON.setdefault(_code, _mod.REASON)

# First pass: each reason's `true` (status code and phrases together), most specific first.
FIRST: tuple[ModuleType, ...] = (
    suppressed, mailboxfull, mesgtoobig, exceedlimit, suspend, hasmoved, norelaying, authfailure, userunknown,
    filtered, requireptr, notcompliantrfc, badreputation, rejected, hostunknown, virusdetected, spamdetected,
    toomanyconn, speeding, blocked,
)
# Second pass, when the status code is missing or vague: phrases only.
SECOND: tuple[ModuleType, ...] = (
    mailboxfull, spamdetected, policyviolation, virusdetected, norelaying, authfailure, badreputation,
    securityerror, systemerror, networkerror, speeding, suspend, notaccept, expired, contenterror, systemfull,
    mailererror, suppressed, ratelimited, failedstarttls,
)
# What a status code says that is worth a second look at the text.
VAGUE = frozenset(
    {
        Reason.UNDEFINED, Reason.ONHOLD, Reason.SYSTEMERROR, Reason.SECURITYERROR, Reason.EXPIRED,
        Reason.SUSPEND, Reason.NETWORKERROR, Reason.HOSTUNKNOWN, Reason.USERUNKNOWN,
    }
)


# RFC 3464 actions that report success; a DSN saying one of them without a Status field is no bounce.
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})


def status_reason(status: str) -> Reason | None:
    """What the DSN status code alone says (RFC 3463 codes as Sisimai reads them)."""
    return STATUS_TO_REASON.get(status) if status else None


def _true(mod: ModuleType, tmp: Reason | None, text: str, command: str) -> bool:
    special = getattr(mod, "true", None)
    if special is not None:
        return bool(special(tmp, text, command))
    return tmp is mod.REASON or mod.match(text)


def by_text(text: str) -> Reason | None:
    """The first reason whose phrases appear in the (lower-cased) diagnostic, whatever the codes."""
    for mod in FIRST + SECOND:
        if mod.match(text):
            return mod.REASON
    return None


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def decide(f: Finding) -> Reason:
    """The reason for one finding; `Reason.DELIVERED` means it was not a failure."""
    if f.reason is not None:
        return f.reason
    status = f.status
    if status.startswith("2.") or (not status and f.action in _SUCCESS_ACTIONS):
        return Reason.DELIVERED
    named = named_code(f.diagnostic)
    if named is not None:
        return named  # a code with one meaning, named in words (Exchange's RESOLVER.ADR.RecipNotFound)
    text = f.diagnostic.lower()
    by_host = rhost.decide(
        f.remote_mta, _domain(f.recipient), f.reporting_mta, text, status, f.reply_code, f.command
    )
    if by_host is not None:
        return by_host
    tmp = status_reason(status)
    dtype = f.diagnostic_type.upper()
    command = f.command
    if not command and (
        (dtype.startswith("X-") and not dtype.startswith("X-UNIX") and "said:" not in text) or "mail.local:" in text
    ):
        # The reporting MTA's own verdict (X-Postfix; ...) or its local mailer's (Sendmail's
        # "mail.local: unknown user"): no SMTP command was refused.
        command = "LOCAL"
    weighed = weigh(status, tmp, text) if not dtype.startswith("X-UNIX") else None
    if weighed is not None:
        return weighed
    if not dtype.startswith("X-UNIX"):
        # Sisimai runs this pass for SMTP diagnostics only; X-Postfix and the like carry the same
        # remote answers, so they are read the same way here. Mailer exits (X-Unix) are not.
        for mod in FIRST:
            if _true(mod, tmp, text, command):
                return mod.REASON
    found = _another(f, tmp, text, dtype)
    if found is not None:
        return found
    if f.action == "delayed":
        return Reason.EXPIRED
    if vacation.match(text):
        return Reason.VACATION
    return Reason.ONHOLD if text else Reason.UNDEFINED


# Each reason's module, to ask whether the text says what the status code says.
_MODULE_OF: dict[Reason, ModuleType] = {mod.REASON: mod for mod in FIRST + SECOND}
# Reasons whose status codes mean one thing only (X.2.2 full, X.3.4 too big): said in the text too, settled.
_SURE_WHEN_AGREED = frozenset({Reason.MAILBOXFULL, Reason.MESGTOOBIG})
# Statuses that name the mailbox's state without saying which: "disabled, not accepting" (X.2.1).
_MAILBOX_DISABLED = frozenset({"5.2.1", "4.2.1"})


def weigh(status: str, tmp: Reason | None, text: str) -> Reason | None:
    """Where status and text settle it between them, before each reason's own test.

    A status code and text that say the same reason are surer than any other reading of the
    text alone (a word like "suppressed" in quoted headers must not outvote "552 5.2.2 Over
    quota"). A mailbox-state status (5.2.1) beside text that says only "unavailable" is a
    disabled mailbox, not a missing one.
    """
    if tmp in _SURE_WHEN_AGREED and _MODULE_OF[tmp].match(text):
        return tmp
    if status in _MAILBOX_DISABLED and userunknown.WEAK.search(text) and not userunknown.strong_match(text):
        return Reason.SUSPEND
    if notaccept.NO_MX.search(text):
        return Reason.NOTACCEPT
    if status[1:3] == ".6" and tmp is Reason.CONTENTERROR and contenterror.VAGUE_REFUSAL.search(text) \
            and not spamdetected.SPAM_WORD.search(text):
        return Reason.CONTENTERROR  # a content status (X.6.x) beside "content rejected" and no word of spam
    return None


def _another(f: Finding, tmp: Reason | None, text: str, dtype: str) -> Reason | None:
    """Fallback when no reason's own test said yes: trust a precise status code, else phrases."""
    if tmp is not None and tmp not in VAGUE and dtype == "SMTP":
        return tmp
    for mod in SECOND:
        if mod.match(text):
            return mod.REASON
    cls = f.status[:3]
    if cls in ("5.6", "4.6"):
        return Reason.CONTENTERROR
    if cls in ("5.7", "4.7"):
        return Reason.SECURITYERROR
    if dtype.startswith("X-UNIX"):
        return Reason.MAILERERROR
    if syntaxerror.match(text) or f.reply_code in ("501", "502", "503", "504"):
        return Reason.SYNTAXERROR
    if f.action.startswith(("delayed", "expired")):
        return Reason.EXPIRED
    if f.command in ("EHLO", "HELO"):
        return Reason.BLOCKED
    if f.command == "MAIL":
        return Reason.REJECTED  # refused at MAIL FROM: the sender, not the recipient
    if tmp is not None and tmp not in (Reason.UNDEFINED, Reason.ONHOLD):
        return tmp
    return None


def classify(
    status: str = "", reply_code: str = "", diagnostic: str = "", *, command: str = "", recipient: str = "",
    remote_mta: str = "",
) -> Reason:
    """The reason for one remote answer (an SMTP reply, a DSN's Status and Diagnostic-Code), pure.

    The same judgement `parse` applies to each recipient of a bounce, for callers that hold the
    answer itself rather than a message: status, reply code and text weighed together. A
    status or reply code missing from the arguments is read from the text when it names one.
    """
    from mailtally.bounces.smtp import find_command, find_reply_code, find_status, squash

    text = squash(diagnostic)
    f = Finding(
        recipient=recipient,
        status=find_status(status) or find_status(text),
        reply_code=find_reply_code(reply_code) or find_reply_code(text[:8]),
        diagnostic=text,
        diagnostic_type="SMTP",
        command=(command.upper() or find_command(text)),
        remote_mta=remote_mta,
        action="failed",
    )
    return decide(f)
