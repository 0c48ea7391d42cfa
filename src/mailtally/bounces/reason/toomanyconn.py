"""toomanyconn: the sender opened too many connections or sent too many recipients at once."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.TOOMANYCONN
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.5.3"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"too many (?:connections|concurrent|simultaneous|sessions|recipients|hosts|smtp sessions)",
            r"connection limit",
            r"connection rate limit",
            r"max(?:imum)? (?:number of )?connections",
            r"too many open connections",
            r"concurrent connection",
            r"exceeded .{0,20}connections",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "concurrent connection", "connection limit", "connection rate limit", "connections", "too many ",
)


match = matcher(PATTERN, NEEDLES)
