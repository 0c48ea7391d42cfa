"""hostunknown: the recipient's domain does not exist or cannot be found."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.HOSTUNKNOWN
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.1.2", "5.4.4"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"host (?:or domain name )?(?:unknown|not found)",
            r"unknown host",
            r"domain (?:name )?(?:not found|does not exist|doesn't exist|is not found|unknown|is not reachable)",
            r"no such domain",
            r"unrouteable mail domain",
            r"name or service not known",
            r"nxdomain",
            r"unknown domain",
            r"illegal host/domain name",
            r"recipient domain must exist",
            r"invalid domain",
            r"host unknown",
            r"domain .{0,60}not exist",
            r"no mx (?:record|host)",
            r"unresolvable domain",
            r"host not found",
            r"dns lookup failure: host \S{1,100} not found",
            r"the domain is not reachable",
            r"domain must exist",
            r"dns type 'mx' lookup of .{1,80} responded with code nxdomain",
            r"no dns (?:record|entry)",
            r"domain isn't in my list of allowed rcpthosts",
            r"unknown mail domain",
            r"dns error.{0,80}(?:nxdomain|not found)",
            r"mx lookup failed",
            r"domain lookup failed",
            r"no valid mx",
            r"could not resolve",
            r"non-existent domain",
            r"nonexistent domain",
            r"domain not found",
            r"name server reported (?:the )?domain does not exist",
            r"\b553 [^<>@]{1,120}? does not exist",
            r"unrouteable address|unroutable address",  # Exim's words for a domain it finds no route to
            r"mail domain mentioned in email address is unknown",
            r"the account or domain may not exist",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "could not resolve", "dns error", "dns lookup failure: host ", "domain ", "invalid domain", "mx lookup failed",
    "name or service not known", "name server reported ", "no dns ", "no mx ", "no such domain", "no valid mx",
    "non-existent domain", "nonexistent domain", "not exist", "not found", "nxdomain", "unknown",
    "unresolvable domain", "able address", "unrouteable mail domain",
)


match = matcher(PATTERN, NEEDLES)


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """5.1.2 says it unless the text shows a network failure (a DNS timeout is not a missing host)."""
    from mailtally.bounces.reason import networkerror

    if tmp is REASON:
        return not networkerror.match(text)
    # "Host not found, try again" is a DNS lookup that failed for now, not a missing domain.
    return match(text) and not networkerror.match(text)
