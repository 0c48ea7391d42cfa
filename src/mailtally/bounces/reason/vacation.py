"""vacation: the message was delivered and an auto-reply came back."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.VACATION
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"auto-?repl(?:y|ied)",
            r"out of (?:the )?office",
            r"\bvacation\b",
            r"i am (?:currently )?(?:away|out)",
            r"i'm (?:currently )?(?:away|out)",
            r"automatic reply",
            r"autoreply",
            r"away from (?:my|the) (?:office|desk)",
            r"absence",
            r"on leave",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "absence", "auto", "away from ", "i am ", "i'm ", "on leave", "out of ", "vacation",
)


match = matcher(PATTERN, NEEDLES)
