"""Zoho Mail (*.zoho.com, *.zoho.eu): a handful of fixed English answers."""

from __future__ import annotations

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".zoho.com", ".zoho.eu", ".zohomail.com")
DOMAINS: frozenset[str] = frozenset({"zoho.com", "zohomail.com", "zoho.eu"})

_PHRASES = Phrases(
    (
        (Reason.AUTHFAILURE, ("email rejected per dmarc policy",)),
        (Reason.BLOCKED, ("greylisted, try again after some time",)),
        (Reason.REJECTED, (
            "email cannot be delivered. reason: email flagged as spam", "mail rejected by destination domain",
        )),
        (Reason.POLICYVIOLATION, ("email policy violation detected", "mailbox delivery restricted by policy error")),
        (Reason.SYSTEMERROR, ("temporary system error",)),
        (Reason.USERUNKNOWN, ("user does not exist",)),
        (Reason.VIRUSDETECTED, (" detected by zoho mail",)),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return _PHRASES.find(text)
