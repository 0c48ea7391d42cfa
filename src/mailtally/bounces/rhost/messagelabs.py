"""Broadcom Email Security.cloud (formerly Symantec MessageLabs, *.messagelabs.com)."""

from __future__ import annotations

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".messagelabs.com",)
DOMAINS: frozenset[str] = frozenset()

_PHRASES = Phrases(
    (
        (Reason.AUTHFAILURE, ("domain authentication fail",)),
        (Reason.BADREPUTATION, ("connection rejected by policy",)),
        (Reason.REJECTED, (
            "sender envelope domain not allowed for sender ip address", "your domain has been blocked",
            "your email address has been blocked", "your envelope sender is in my badmailfrom list",
            "your email address has been blacklisted", "your domain has been blacklisted",
        )),
        (Reason.BLOCKED, ("mail rejected because your ip is in the pbl", "your ip address has been ")),
        (Reason.CONTENTERROR, ("stray linefeeds in message",)),
        (Reason.FAILEDSTARTTLS, ("tls/sslv3 connection required",)),
        (Reason.NORELAYING, (" as a relay, ",)),
        (Reason.NOTCOMPLIANTRFC, (
            "550 requested action aborted [4]", "has detected that this message is not rfc 5322",
        )),
        (Reason.SECURITYERROR, ("please turn on smtp authentication in your mail client",)),
        (Reason.SPAMDETECTED, ("message filtered", "filtered by outbound scanning")),
        (Reason.TOOMANYCONN, ("too many recipients received this hour", "too many messages")),
        (Reason.USERUNKNOWN, ("no such user", "invalid recipient", "mailbox is not allowed")),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return _PHRASES.find(text)
