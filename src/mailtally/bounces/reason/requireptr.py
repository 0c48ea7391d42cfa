"""requireptr: the sending server's IP address has no (or a mismatched) reverse DNS name."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.REQUIREPTR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
# Names of the check: said alone, they may be advice in a refusal for another reason.
_NAMES = (r"\bptr\b", r"rdns")
_VERDICTS = (
    # A bare "reverse dns" is too loose ("missing reverse dns for 192.0.2.1" is a host block).
    r"reverse dns (?:failed|required|lookup|validation|entry|name)",
    r"fix reverse dns for ",
    r"with no reverse dns",
    r"reverse (?:lookup|look-up|hostname|name|address)",
    r"cannot find your (?:reverse )?hostname",
    r"cannot resolve your (?:ip )?address",
    r"client host name .{0,40}(?:unknown|mismatch)",
    r"ip name lookup failed",
    r"(?:no|missing|invalid) ptr",
    r"hostname (?:does not|doesn't) (?:match|resolve)",
    r"unresolvable (?:ip|address|host)",
    r"client host rejected: cannot find your",
    r"reverse dns lookup failed",
    r"dns lookup of .{0,60}(?:failed|does not match)",
    r"no dns name for",
    r"does not have a hostname",
    r"without valid reverse",
    r"doesn't have a ptr",
    r"no reverse",
    r"not have reverse",
    r"connections from ips without",
    r"ip address has no name",
    r"ip doesn't have a ptr",
    r"service permits .{0,20}unverifyable sending ips",
    r"domain .{0,100}mismatches client ip",
)
PATTERN: re.Pattern[str] | None = re.compile("|".join(_NAMES + _VERDICTS))
_VERDICT = re.compile("|".join(_VERDICTS))

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "cannot find your ", "cannot resolve your ", "client host name ", "client host rejected: cannot find your",
    "connections from ips without", "dns lookup of ", "does not have a hostname", "hostname does",
    "ip address has no name", "ip name lookup failed", "mismatches client ip", "no dns name for", "no reverse",
    "not have reverse", "ptr", "rdns", "reverse ", "unresolvable ", "unverifyable sending ips",
    "without valid reverse",
)


match = matcher(PATTERN, NEEDLES)


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """The status says so, or the text; but a bare "PTR" in an antispam refusal ("be sure your
    SPF, HELO and PTR are right") is advice, and the refusal is for spam."""
    from mailtally.bounces.reason import spamdetected

    if tmp is REASON:
        return True
    if not match(text):
        return False
    return _VERDICT.search(text) is not None or not spamdetected.match(text)
