"""rejected: the receiving server refuses the envelope sender."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.REJECTED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.1.7", "5.1.8", "4.1.7", "4.1.8"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"sender (?:address |domain |e-?mail )?(?:rejected|refused|denied|invalid|not allowed|blocke"
            r"d|verify failed|verification failed)",
            r"domain of sender address .{1,100} does not exist",
            r"sender verify (?:failed|error)",
            r"invalid sender",
            r"bad sender",
            r"unverifiable sender",
            r"sender (?:is )?(?:not|un)(?:authorized|permitted|allowed)",
            r"sender domain .{0,60}(?:must exist|does not exist|doesn't exist|not found|unknown|invalid)",
            r"mail from .{0,100}(?:rejected|refused|not accepted)(?! for policy)",
            r"address rejected: domain not found",
            r"from address rejected",
            r"rejected by sender",
            r"return path",
            r"envelope sender",
            r"sender not pre-approved",
            r"unknown sender",
            r"sender unknown",
            r"your (?:e-?mail )?address has been (?:black|block)listed",
            r"we do not accept mail from",
            r"sender address is not valid",
            r"reject(?:ed)? sender",
            r"sender .{0,80} rejected",
            r"empty envelope senders",
            r"not allowed to send (?:from|as)",
            r"sender domain",
            r"null sender",
            r"sender mismatch",
            r"reject by sender",
            r"is not a registered gateway user",
            r"can't determine purported responsible address",
            r"all recipient addresses rejected : access denied",
            r"send.{0,40} address that has been blacklisted",
            r"your email address has been blacklisted",
            r"has an outgoing mail suspension",
            r"returned mail not accepted here",
            r"unroutable sender address",
            r"too many spam complaints",
            # A mailing list refusing a post: the sender is not one of its members.
            r"not (?:a )?member of (?:this|the) (?:mailing )?list",
            r"only (?:list )?(?:members|subscribers) (?:may|can|are allowed to) post",
            r"not allowed to post",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " address that has been blacklisted", " rejected", " sender", "address has been bl",
    "can't determine purported responsible address", "has an outgoing mail suspension",
    "is not a registered gateway user", "mail from ", "not allowed to send ", "return path",
    "returned mail not accepted here", "sender ", "too many spam complaints", "we do not accept mail from",
    " post", "member",
)


match = matcher(PATTERN, NEEDLES)


_UNSURE = frozenset({None, Reason.ONHOLD, Reason.UNDEFINED, Reason.SECURITYERROR, Reason.SYSTEMERROR})


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """Sender refusals count when the status says so, at MAIL FROM, at DATA (unless the status
    says the user is unknown), or when the status code says nothing precise."""
    if tmp is REASON:
        return True
    if command == "MAIL":
        # "Access denied" or "... does not exist" said to MAIL FROM is about the sender.
        return match(text) or "access denied" in text or " does not exist" in text
    if tmp in _UNSURE:
        return match(text)
    if command == "DATA":
        return tmp is not Reason.USERUNKNOWN and match(text)
    return False
