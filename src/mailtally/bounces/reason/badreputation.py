"""badreputation: the sending IP or domain has a poor reputation at the receiver."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.BADREPUTATION
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"temporarily deferred due to unexpected volume or user complaints",
            r"reputation",
            r"ip (?:address )?(?:is )?(?:not trusted|has a poor)",
            r"sender score",
            r"senderscore",
            r"low sender score",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "ip ", "reputation", "sender score", "senderscore",
    "temporarily deferred due to unexpected volume or user complaints",
)


match = matcher(PATTERN, NEEDLES)
