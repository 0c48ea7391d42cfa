"""failedstarttls: STARTTLS could not be negotiated with the receiving server."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.FAILEDSTARTTLS
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"starttls (?:failed|failure|is required|required|negotiation)",
            r"tls (?:negotiation|handshake) (?:failed|error)",
            r"failed to (?:establish|negotiate) tls",
            r"must issue a starttls",
            r"tls is required",
            r"ssl(?:3)?_(?:get|read)",
            r"certificate verify failed",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "certificate verify failed", "failed to ", "must issue a starttls", "ssl", "tls ",
)


match = matcher(PATTERN, NEEDLES)
