"""systemfull: the receiving system (not the mailbox) is out of storage."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SYSTEMFULL
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.3.1", "5.3.1", "4.4.5"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"mail system full",
            r"insufficient system (?:storage|resources)",
            r"system (?:storage|disk) (?:full|space)",
            r"server is full",
            r"disk (?:is )?full",
            r"insufficient disk space",
            r"file system full",
            r"out of (?:system )?memory",
            r"no space left on device",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "disk ", "no space left on device", "out of ", "server is full", "system ",
)


match = matcher(PATTERN, NEEDLES)
