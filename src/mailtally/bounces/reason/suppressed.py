"""suppressed: the recipient is on a suppression list of the sending service."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.SUPPRESSED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"suppression list",
            r"\bsuppressed\b",
            r"on (?:the|our|an?) (?:account-level |global )?suppression",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
