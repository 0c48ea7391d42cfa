"""hasmoved: the recipient's address has moved and mail is not forwarded."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.HASMOVED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.1.6", "5.1.6", "5.7.17", "5.7.18"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r" has been replaced by ",
            r"(?:address|mailbox|recipient) has moved",
            r"no longer on (?:this )?server",
            r"has changed (?:his|her|their|the) address",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " has been replaced by ", " has moved", "has changed ", "no longer on ",
)


match = matcher(PATTERN, NEEDLES)
