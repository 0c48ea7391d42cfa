"""mailererror: a local delivery program (pipe, procmail) failed on the receiving side."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.MAILERERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"x-unix",
            r"procmail",
            r"pipe to",
            r"command (?:failed|died)",
            r"exit (?:code|status)",
            r"mailer (?:error|failed)",
            r"unknown mailer error",
            r"local delivery (?:failed|error)",
            r"child (?:exited|died)",
            r"\|\s*/",
            r"program exited",
            r"sh: ",
            r"command not found",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
