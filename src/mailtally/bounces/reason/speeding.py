"""speeding: the sender sends too much, too fast for the receiver (rate limiting)."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SPEEDING
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"rate (?:limit|limited|limiting)",
            r"rate that prevents additional messages",
            r"try again slower",
            r"too many (?:messages|mails|e-?mails) (?:in|from|sent|per|too)",
            r"sending (?:too )?(?:fast|quickly|many)",
            r"exceeded .{0,30}(?:sending|message) (?:limit|rate|quota)",
            r"throttl",
            r"too fast",
            r"receiving mail at a rate",
            r"message rate",
            r"unusual rate",
            r"rate of unsolicited",
            r"too much mail",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "exceeded ", "message rate", "rate limit", "rate of unsolicited", "rate that prevents additional messages",
    "receiving mail at a rate", "sending ", "throttl", "too fast", "too many ", "too much mail", "try again slower",
    "unusual rate",
)


match = matcher(PATTERN, NEEDLES)
