"""contenterror: the receiving side could not handle the message's content or encoding."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.CONTENTERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset(
    {
        "5.6.0", "5.6.1", "5.6.2", "5.6.3", "5.6.5", "5.6.6", "5.6.7", "5.6.8",
        "5.6.9", "4.6.0", "4.6.2", "4.6.5",
    }
)
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"improper use of 8-bit",
            r"8-?bit data in (?:message )?header",
            r"message header size exceeds",
            r"header (?:error|syntax error|line too long)",
            r"invalid (?:mime|message) (?:structure|header|format)",
            r"message contains invalid",
            r"illegal character",
            r"mime (?:error|format)",
            r"line too long",
            r"message (?:header|headers) (?:too long|too large)",
            r"too many (?:header|headers|received)",
            r"content error",
            r"invalid content",
            r"binary content not supported",
            r"mime part",
            r"utf-?8 (?:header|string|text) ",
            r"duplicate header",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "binary content not supported", "bit data in ", "content error", "duplicate header", "header ", "illegal character",
    "improper use of 8-bit", "invalid content", "invalid m", "line too long", "message contains invalid",
    "message header", "mime ", "too many ", "utf",
)


match = matcher(PATTERN, NEEDLES)

# "Message content rejected": says the content was refused, not why.
VAGUE_REFUSAL = re.compile(r"content (?:was |is )?(?:rejected|refused|not accepted)")
