"""securityerror: the transaction failed a security requirement (authentication, encryption)."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SECURITYERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset(
    {
        "5.7.0", "5.7.1", "5.7.2", "5.7.3", "5.7.4", "5.7.5", "5.7.6", "5.7.7",
        "5.7.8", "5.7.10", "5.7.11", "5.7.14", "5.7.15", "5.7.19", "5.7.9", "4.7.5",
        "4.7.6", "4.7.7", "4.7.12", "4.7.15",
    }
)
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"authentication (?:is )?(?:required|failed|needed)",
            r"must be authenticated",
            r"user not authenticated",
            r"authrequired",
            r"encryption (?:is )?required",
            r"must (?:be|use) (?:encrypted|tls)",
            r"not authenticated",
            r"authentication credentials invalid",
            r"please authenticate",
            r"sender is not authenticated",
            r"auth (?:failed|required)",
            r"security (?:error|reasons|policy)",
            r"authenticat(?:e|ion) first",
            r"restricted to authenticated",
            r"unauthenticated senders? not allowed",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "auth ", "authenticat", "authrequired", "encryption ", "must ", "security ",
)


match = matcher(PATTERN, NEEDLES)
