"""qmail (and notqmail, netqmail, qmail-ldap): `Hi. This is the qmail-send program at host.`, then per
recipient `<a@b>:` and qmail-remote's own words, which tell the SMTP step that failed
(`does not like recipient.` is RCPT, `but sender was rejected.` is MAIL, `but my name was
rejected.` is HELO) and, for local and DNS errors, the reason itself."""

from __future__ import annotations

import re

from mailtally.bounces import reason as reasons
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.textscan import cut_original, scan
from mailtally.vocab import Reason

_START = re.compile(r"^[ \t]*Hi\. This is the qmail", re.M)
_MARKERS = re.compile(
    r"^[ \t]*-{2,4}[ \t]*(?:Below this line is a copy of the (?:message|mail header)|"
    r"Below the next line is a copy of the message|Undelivered message follows|Original message follows)",
    re.I | re.M,
)
# qmail-remote.c: the step of the SMTP dialogue its message names.
_STEPS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"connected to \S{1,255} but greeting failed", re.I), "CONN"),
    (re.compile(r"connected to \S{1,255} but my name was rejected", re.I), "EHLO"),
    (re.compile(r"connected to \S{1,255} but sender was rejected", re.I), "MAIL"),
    (re.compile(r"\S{1,255} does not like recipient", re.I), "RCPT"),
    (re.compile(r"\S{1,255} failed (?:on data command|after i sent the message)", re.I), "DATA"),
)
_PROGRESS = re.compile(r"no SMTP connection got far enough; most progress was ([A-Z]{4})\b")
_ONHOLD = re.compile(r"does not like recipient\..{0,2000}this message has been in the queue too long", re.I)
# qmail's own messages (qmail-local, qmail-remote, qmail-ldap), checked in this order.
_OWN: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.USERUNKNOWN, ("no mailbox here by that name",)),
    (Reason.MAILBOXFULL, ("disk quota exceeded",)),
    (Reason.MESGTOOBIG, ("message size exceeds fixed maximum message size", "exceeds my databytes limit")),
    (Reason.HOSTUNKNOWN, ("sorry, i couldn't find any host",)),
    (Reason.NOTACCEPT, ("sorry, i couldn't find a mail exchanger or ip address",)),
    (Reason.SYSTEMFULL, ("mailbox unavailable (not enough free space)",)),
    (Reason.SUSPEND, ("mailaddress is administratively disabled", "mailaddress is administrativley disabled")),
    (Reason.EXCEEDLIMIT, ("the message exeeded the maximum size the user accepts",)),
    (
        Reason.NETWORKERROR,
        (
            "sorry, i wasn't able to establish an smtp connection",
            "although i'm listed as a best-preference mx or a for that host",
        ),
    ),
    (
        Reason.SYSTEMERROR,
        (
            "bad interpreter: no such file or directory",
            "automatic homedir creator crashed",
            "illegal value in ldap attribute",
            "ldap attribute is not given but mandatory",
            "timeout while performing search on ldap server",
            "too many results returned but needs to be unique",
            "error while executing qmail-forward",
            "error in automatic homedir creation",
            "temporary failure in ldap lookup",
            "unable to contact ldap server",
            "unable to login into ldap server",
            "system error",
        ),
    ),
)
_GIVING_UP = re.compile(r"giving up on \S{1,255}")
_EXPIRED = "this message has been in the queue too long"


def matches(mail: Mail) -> bool:
    return "This is the qmail" in mail.text[:5000]


def probe(mail: Mail) -> list[Finding]:
    m = _START.search(mail.text)
    if m is None:
        return []
    report, _ = cut_original(mail.text[m.end() :], _MARKERS)
    found = [f for f in scan(report) if f.diagnostic]
    for f in found:
        _classify(f)
    return found


def _classify(f: Finding) -> None:
    diag = f.diagnostic
    for rx, step in _STEPS:
        if rx.search(diag):
            f.command = step
            break
    else:
        p = _PROGRESS.search(diag)
        if p:
            f.command = p.group(1)
    low = diag.lower()
    if f.command in ("EHLO", "HELO"):
        f.reason = Reason.BLOCKED
        return
    if f.command == "MAIL":
        return  # the sender was refused: the remote server's words decide how
    if f.command == "RCPT" and _ONHOLD.search(diag):
        return  # refused, retried until too old: qmail cannot tell, the remote words decide
    for r, phrases in _OWN:
        if any(p in low for p in phrases):
            f.reason = r
            return
    if f.command == "RCPT":
        # "does not like recipient": refused at RCPT. Unless the remote server's words say
        # something else, that is an unknown recipient.
        if reasons.by_text(_GIVING_UP.sub("", low)) is None:
            f.reason = Reason.USERUNKNOWN
        return
    if _EXPIRED in low:
        f.reason = Reason.EXPIRED
