"""policyviolation: the message broke a local policy of the receiving side."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.POLICYVIOLATION
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            # a bare "policy violation" is what many hosts say for any 5.7.x refusal: not enough alone
            r"local policy violation",
            r"policy (?:rejection|reasons|restriction)",
            r"violates? (?:our|the|a|local)? ?(?:security |content |anti-spam )?polic",
            r"(?:rejected|blocked|denied|refused) (?:due to|by|because of|for) (?:local |our |security |"
            r"content )?polic",
            r"not accepted for policy reasons",
            r"prohibited (?:attachment|file|content)",
            r"attachment (?:type )?(?:not allowed|prohibited|rejected|blocked)",
            r"you are not authorized to send",
            r"local policy",
            r"email not accepted for policy",
            r"policy reasons",
            r"by policy",
            r"is not (?:authorized|permitted) to send (?:mail|email|messages) to",
            r"message(?: has been)? (?:rejected|blocked) by (?:the )?(?:content|attachment) filter",
            r"because of (?:its )?(?:content|attachment)",
            r"suspicious (?:url|link|attachment|content)",
            r"unacceptable (?:attachment|content)",
            r"header .{0,40}(?:is )?not allowed",
            r"messages with multiple addresses",
            r"sender is not allowed by policy",
            r"denied by policy",
            r"header (?:are not accepted|error)",
            r"protocol violation",
            r"mail from .{1,100} rejected for policy reasons",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " filter", " to send ", "attachment ", "because of ", "header ", "messages with multiple addresses", "not allowed",
    "polic", "prohibited ", "protocol violation", "suspicious ", "unacceptable ", "violate",
    "you are not authorized to send",
)


match = matcher(PATTERN, NEEDLES)
