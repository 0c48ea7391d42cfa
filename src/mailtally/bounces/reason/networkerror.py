"""networkerror: the message could not reach the receiving server over the network."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.NETWORKERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.4.2", "4.4.4", "4.4.6", "4.4.8", "5.4.0"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"could not connect and send the mail to",
            r"dns records for the destination computer could not be found",
            r"hop count exceeded",
            r"host is unreachable",
            r"host name lookup failure",
            r"host not found, try again",
            r"mail forwarding loop for ",
            r"malformed (?:or unexpected )?name server reply",
            r"maximum forwarding loop count exceeded",
            r"message looping",
            r"message probably in a routing loop",
            r"no route to host",
            r"too many hops",
            r"unable to resolve route ",
            r"unrouteable mail domain",
            r"network is unreachable",
            r"temporary failure in name resolution",
            r"network error (?:on|to|with|while)",
            r"(?:unable|wasn't able|was not able|could ?n[o']t) to establish an? (?:smtp )?connection",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "establish a", "network error ",
    "could not connect and send the mail to", "dns records for the destination computer could not be found",
    "hop count exceeded", "host is unreachable", "host name lookup failure", "host not found, try again",
    "mail forwarding loop for ", "maximum forwarding loop count exceeded", "message looping",
    "message probably in a routing loop", "name server reply", "network is unreachable", "no route to host",
    "temporary failure in name resolution", "too many hops", "unable to resolve route ", "unrouteable mail domain",
)


match = matcher(PATTERN, NEEDLES)
