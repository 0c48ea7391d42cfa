"""exceedlimit: the message exceeds a per-recipient or administrative size limit."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.EXCEEDLIMIT
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.2.3", "4.2.3"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"message (?:length |size )?exceeds (?:the )?(?:administrative|per-recipient|recipient) limit",
            r"exceeds? (?:the )?administrative limit",
            r"message too large for this recipient",
            r"recipsizelimit",
            r"exceeded the message size limit for the recipient",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "administrative limit", "exceeded the message size limit for the recipient", "exceeds ",
    "message too large for this recipient", "recipsizelimit",
)


match = matcher(PATTERN, NEEDLES)
