"""ratelimited: the receiver has deferred the sender for sending at too high a rate."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.RATELIMITED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"ratelimit(?:ed)?\b",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "ratelimit",
)


match = matcher(PATTERN, NEEDLES)
