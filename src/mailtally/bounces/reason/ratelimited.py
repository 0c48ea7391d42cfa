"""ratelimited: the receiver has deferred the sender for sending at too high a rate."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.RATELIMITED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"ratelimit(?:ed)?\b",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
