"""Yahoo Inc. (Yahoo Mail, AOL's inbound MX at *.yahoodns.net): phrases from Yahoo's sender
error-code page; the bracketed codes ([TSS04], [PH01] ...) come with a fixed wording."""

from __future__ import annotations

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".yahoodns.net",)
# Matched by its MX hosts only: mail to yahoo.com relayed elsewhere is read the generic way.
DOMAINS: frozenset[str] = frozenset()

_PHRASES = Phrases(
    (
        (Reason.AUTHFAILURE, ("yahoo requires all senders to authenticate with either spf or dkim",)),
        # [TSS04]: Yahoo defers everything from this sender for a while; Sisimai reads it as a refusal
        # of the sender, not as a rate limit.
        (Reason.REJECTED, ("temporarily deferred due to unexpected volume or user complaints",)),
        (Reason.BLOCKED, (" because the ip is in spamhaus's list;", "not accepted from ip addresses on spamhaus xbl")),
        (Reason.NORELAYING, ("relaying denied for ",)),
        (Reason.NOTCOMPLIANTRFC, ("headers are not rfc compliant",)),
        (Reason.POLICYVIOLATION, ("not accepted for policy reasons",)),
        (Reason.REJECTED, (" will be permanently deferred",)),
        (Reason.SPEEDING, ("user is receiving mail too quickly",)),
        (Reason.SUSPEND, (" is no longer valid.", "this mailbox is disabled")),
        (Reason.SYNTAXERROR, ("syntax error in parameters or arguments",)),
        (Reason.TOOMANYCONN, ("max message per connection reached",)),
        (Reason.USERUNKNOWN, ("dd this user doesn't have a ", "mailbox not found")),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return _PHRASES.find(text)
