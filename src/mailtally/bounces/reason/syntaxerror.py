"""syntaxerror: the SMTP conversation broke down on a command syntax error."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SYNTAXERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.5.2", "5.5.6"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"syntax error",
            r"command (?:unrecognized|not recognized|unknown)",
            r"unrecognized command",
            r"bad sequence of commands",
            r"command not implemented",
            r"parameter not implemented",
            r"line too long\b.{0,20}command",
            r"invalid command",
            r"malformed (?:recipient )?address",  # an address the MTA could not parse (Exim)
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "bad sequence of commands", "command ", "invalid command", "line too long", "malformed ",
    "parameter not implemented", "syntax error", "unrecognized command",
)


match = matcher(PATTERN, NEEDLES)
