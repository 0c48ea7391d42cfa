"""mailererror: a local delivery program (pipe, procmail) failed on the receiving side."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
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

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "/", "child ", "command ", "exit ", "local delivery ", "mailer ", "pipe to", "procmail", "program exited", "sh: ",
    "x-unix",
)


match = matcher(PATTERN, NEEDLES)
