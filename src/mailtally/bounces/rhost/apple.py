"""Apple iCloud Mail (icloud.com, me.com, mac.com): phrases from Apple's postmaster page."""

from __future__ import annotations

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".mail.icloud.com", ".apple.com", ".me.com", "privaterelay.appleid.com")
DOMAINS: frozenset[str] = frozenset({"icloud.com", "me.com", "mac.com"})

_PHRASES = Phrases(
    (
        (Reason.AUTHFAILURE, ("s dmarc policy", "blocked for failing both spf and dkim")),
        (Reason.BLOCKED, (
            "rejected due to having a domain present in the spamhaus", "rejected due to listing in spamhaus",
            "blocked - see https://support.proofpoint.com/dnsbl-lookup", "not accepting connections",
        )),
        (Reason.HASMOVED, ("recipient no longer on server",)),
        (Reason.MAILBOXFULL, ("user is over quota",)),
        (Reason.NORELAYING, ("relay access denied",)),
        (Reason.NOTACCEPT, ("host/domain does not accept mail",)),
        (Reason.POLICYVIOLATION, ("due to local policy",)),
        (Reason.REJECTED, ("sender address rejected",)),
        (Reason.SPEEDING, ("due to excessive volume",)),
        (Reason.USERUNKNOWN, ("inactive email address", "user does not exist", "unknown or illegal alias")),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return _PHRASES.find(text)
