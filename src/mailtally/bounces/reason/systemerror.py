"""systemerror: the receiving system failed internally or is misconfigured."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SYSTEMERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset(
    {
        "5.3.0", "5.3.3", "5.3.5", "5.4.3", "5.5.4", "5.5.5", "5.1.9", "4.1.9",
        "4.3.3", "4.3.5", "4.5.5", "4.4.3", "4.5.3",
    }
)
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"aliasing/forwarding loop broken",
            r"internal server error",
            r"can't create user output file",
            r"could not load drd for domain",
            r"internal error reading data",
            r"internal server error: operation now in progress",
            r"interrupted system call",
            r"it encountered an error while being processed",
            r"it would create a mail loop",
            r"local configuration error",
            r"local error in processing",
            r"loop was found in the mail exchanger",
            r"loops back to myself",
            r"mail system configuration error",
            r"queue file write error",
            r"recipient deferred because there is no mdb",
            r"remote server is misconfigured",
            r"server configuration error",
            r"service currently unavailable",
            r"system config(?:uration)? error",
            r"temporary local problem",
            r"timeout waiting for input",
            r"transaction failed(?:$| )",
            r"unable to connect .{0,200}daemon",
            r"duplicated? message-id",  # a mailing list that has seen this message before: a loop
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "aliasing/forwarding loop broken", "can't create user output file", "could not load drd for domain",
    "internal error reading data", "internal server error", "interrupted system call",
    "it encountered an error while being processed", "it would create a mail loop", "local configuration error",
    "local error in processing", "loop was found in the mail exchanger", "loops back to myself",
    "queue file write error", "recipient deferred because there is no mdb", "remote server is misconfigured",
    "server configuration error", "service currently unavailable", "system config", "temporary local problem",
    "timeout waiting for input", "transaction failed", "unable to connect ", "message-id",
)


match = matcher(PATTERN, NEEDLES)
