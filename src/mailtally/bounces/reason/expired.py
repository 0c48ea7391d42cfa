"""expired: delivery was retried until the queue gave up."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.EXPIRED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.4.1", "4.4.7", "5.4.7", "5.4.1"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"timed? ?out",
            r"timeout",
            r"retry time(?:out)? (?:not reached|exceeded)",
            r"(?:message|delivery time) expired",
            r"too long in (?:the )?queue",
            r"could not be delivered (?:within|for) \d+ (?:days|hours)",
            r"giving up",
            r"delivery time expired",
            r"has not been delivered .{0,40}(?:for|within)",
            r"unable to deliver .{0,60}after (?:multiple|several) (?:retries|attempts)",
            r"been in the queue",
            r"message has been delayed",
            r"queue lifetime",
            r"was not delivered .{0,40}(?:hours|days)",
            r"retry (?:period|limit) (?:exceeded|expired)",
            r"maximum time",
            r"deferred .{0,60}too long",
            r"couldn't be delivered .{0,60}in the allowed",
            r"could not deliver .{0,60}for \d+ (?:days|hours)",
            r"expired",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
