"""norelaying: the receiving server refuses to relay for this domain."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.NORELAYING
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed|prohibited|rejected|refused)",
            r"not (?:permitted|allowed) to relay",
            r"unable to relay",
            r"not configured to relay",
            r"we do not relay",
            r"relaying (?:is )?(?:not allowed|disallowed|denied)",
            r"relay not (?:permitted|allowed|authorized)",
            r"(?:insecure|open) relay(?! rbl|\.)",
            r"not our customer",
            r"no relaying",
            r"relaying mail to .{1,80} is not allowed",
            r"that domain isn't in my list of allowed rcpthosts",
            r"relay denied",
            r"cannot relay",
            r"not a gateway",
            r"mail relay",
            r"no relay",
            r"relay access",
            r"email address is not verified\.",
            r"(?:use|using) (?:me|this (?:server|host)|us) .{0,120}as a relay",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " relay", "as a relay", "denied", "email address is not verified.", "not a gateway", "not allowed",
    "not our customer",
    "not permitted", "prohibited", "refused", "rejected", "relay access", "relay not ", "relaying ",
    "that domain isn't in my list of allowed rcpthosts",
)


match = matcher(PATTERN, NEEDLES)
