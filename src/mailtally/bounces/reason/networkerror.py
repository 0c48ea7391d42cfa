"""networkerror: the message could not reach the receiving server over the network."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.NETWORKERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.4.2", "4.4.4", "4.4.6", "5.4.0", "5.4.6", "5.4.2", "4.4.0", "4.4.3"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"could not connect",
            r"connection (?:refused|timed out|reset|closed|lost|attempt failed|failed)",
            r"no route to host",
            r"network (?:is )?unreachable",
            r"host (?:is )?unreachable",
            r"unable to connect",
            r"lost connection",
            r"couldn't connect",
            r"connect to .{1,100}(?:refused|timed out|failed)",
            r"dns (?:error|failure|lookup failed|query failed)",
            r"temporary failure in name resolution",
            r"name server",
            r"no answer from",
            r"malformed name server reply",
            r"could not be found",
            r"unable to resolve",
            r"did not accept our requests to connect",
            r"service unavailable\.? (?:try|please)",
            r"not reachable",
            r"unreachable",
            r"broken pipe",
            r"remote server (?:did not|does not) respond",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
