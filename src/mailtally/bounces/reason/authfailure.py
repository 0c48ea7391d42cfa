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
# Names of the checks: said alone, they may be advice in a refusal for another reason.
_NAMES = (
    r"\bspf\b",
    r"\bdkim\b(?!-signature)",
    r"\bdmarc\b",
)
# A verdict: the message failed such a check.
_VERDICTS = (
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
PATTERN: re.Pattern[str] | None = re.compile("|".join(_NAMES + _VERDICTS))

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " as permitted sender", " is not authorized to send", "authentication ", "dkim", "dmarc", "domainkeys", "fail",
    "not authenticated by ", "sender authentication", "sender id", "sender policy framework", "spf",
    "unauthenticated ",
)


match = matcher(PATTERN, NEEDLES)

_VERDICT = re.compile("|".join(_VERDICTS))


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """A 5.7.2x status, or the text says so; but a bare "SPF" in an antispam refusal ("be sure
    your SPF, HELO and PTR are right") is advice, and the refusal is for spam."""
    from mailtally.bounces.reason import spamdetected

    if tmp is REASON:
        return True
    if not match(text):
        return False
    return _VERDICT.search(text) is not None or not spamdetected.match(text)
