"""virusdetected: the message carried (or looked like it carried) malware."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.VIRUSDETECTED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"virus",
            r"infected",
            r"malware",
            r"malicious (?:content|code|attachment)",
            r"trojan",
            r"worm detected",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "infected", "malicious ", "malware", "trojan", "virus", "worm detected",
)


match = matcher(PATTERN, NEEDLES)


def true(tmp: Reason | None, text: str, command: str) -> bool:
    from mailtally.bounces.reason.filtered import judged_after_data

    return judged_after_data(REASON, tmp, text, command, match)
