"""networkerror: the message could not reach the receiving server over the network."""

from __future__ import annotations

import re

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
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
