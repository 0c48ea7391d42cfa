"""notcompliantrfc: the message is not compliant with RFC 5322 (headers, line formats)."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.NOTCOMPLIANTRFC
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"rfc ?5322",
            r"rfc ?2822",
            r"rfc ?822 (?:compliant|standard|format)",
            r"not (?:rfc|standards?)[- ]compliant",
            r"multiple (?:from|to|subject|date|message-id|sender) (?:headers|fields)",
            r"duplicate (?:from|to|subject|date|message-id)\b",  # a duplicate header otherwise: contenterror
            r"bare lf",
            r"missing (?:required )?(?:header|from|date|message-id)",
            r"rfc ?5321",
            r"not compliant with rfc",
            r"does not (?:conform|comply) (?:to|with) (?:rfc|the standards?)",
            r"header (?:is )?malformed",
            r"malformed header",
            r"message contains (?:invalid|illegal) header",
            r"more than one .{0,20}header",
            r"improperly formatted",
            r"message not rfc",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "2822", "5321", "5322", "822 ", "bare lf", "compliant", "does not co", "duplicate ", "improperly formatted",
    "malformed", "message contains i", "message not rfc", "missing ", "more than one ", "multiple ",
)


match = matcher(PATTERN, NEEDLES)
