"""Tencent (QQ Mail, Foxmail): short English phrases documented on service.mail.qq.com."""

from __future__ import annotations

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".qq.com",)
DOMAINS: frozenset[str] = frozenset({"qq.com", "foxmail.com"})

_PHRASES = Phrases(
    (
        (Reason.AUTHFAILURE, ("spf check failed", "dmarc check failed")),
        (Reason.TOOMANYCONN, (
            "ip frequency limited", "domain frequency limited", "sender frequency limited",
            "connection frequency limited",
        )),
        (Reason.BLOCKED, ("suspected bounce attacks", "suspected spam ip", "connection denied")),
        (Reason.MESGTOOBIG, ("message too large",)),
        (Reason.SPAMDETECTED, ("spam is embedded in the email", "mail content denied")),
        (Reason.REJECTED, ("suspected spam", "mail is rejected by recipients")),
        (Reason.SPEEDING, ("mailbox unavailable or access denined", "mailbox unavailable or access denied")),
        (Reason.SUSPEND, ("is a deactivated mailbox",)),
        (Reason.SYNTAXERROR, ("bad address syntax",)),
        (Reason.USERUNKNOWN, ("mailbox not found",)),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return _PHRASES.find(text)
