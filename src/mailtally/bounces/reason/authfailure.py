"""authfailure: the message failed sender authentication (SPF, DKIM, DMARC)."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.AUTHFAILURE
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset(
    {
        "5.7.20", "5.7.21", "5.7.22", "5.7.23", "5.7.24", "5.7.26", "4.7.24", "4.7.26",
    }
)
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"\bspf\b",
            r"\bdkim\b(?!-signature)",  # the header's name is not a verdict
            r"\bdmarc\b",
            r"sender policy framework",
            r"domainkeys",
            r"unauthenticated (?:e-?mail|mail)\b",
            r"authentication checks failed",
            r"sender authentication",
            r"not authenticated by (?:the )?sender",
            r"authentication (?:check|policy) failed",
            r"message failed .{0,40}authentication",
            r"fails? (?:spf|dkim|dmarc)",
            r"does not designate .{1,100} as permitted sender",
            r"sender id",
            r"not pass dmarc",
            r"ip address .{0,60} is not authorized to send",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " as permitted sender", " is not authorized to send", "authentication ", "dkim", "dmarc", "domainkeys", "fail",
    "not authenticated by ", "sender authentication", "sender id", "sender policy framework", "spf",
    "unauthenticated ",
)


match = matcher(PATTERN, NEEDLES)
