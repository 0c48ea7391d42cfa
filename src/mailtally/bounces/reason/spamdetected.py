"""spamdetected: the receiving server judged the message to be spam."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SPAMDETECTED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"spam(?!haus|cop)",
            r"junk mail",
            r"unsolicited (?:bulk |commercial )?(?:e-?mail|mail|message)",
            r"bulk (?:e-?mail|mail)",
            r"looks like (?:spam|junk)",
            r"content (?:was |is )?(?:rejected|blocked)",
            r"message (?:content )?(?:rejected|refused) due to (?:its )?content",
            r"high probability of being",
            r"considered (?:as )?(?:junk|unsolicited)",
            r"classified as (?:junk|bulk)",
            r"uce\b",
            r"content presents a potential",
            r"message (?:is|was) (?:classified|identified|detected) as",
            r"our system has detected that this message is",
            r"mail appears to be unsolicited",
            r"rejected as bulk",
            r"blacklisted url in message",
            r"\b(?:uribl|surbl)\b",
            r"appears to be unsolicited",
            r"mass[ -]?mail(?:er|ing)",
            r"anti-?spam (?:check|filter|polic|scor)",
            r"(?:message|spam|content) scor(?:e|ing) .{0,40}(?:over|exceed|above|too high)",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " due to ", "blacklisted url in message", "bulk ", "classified as ", "considered ", "content ",
    "high probability of being", "junk mail", "looks like ", "mail appears to be unsolicited", "message ",
    "rejected as bulk", "spam", "uribl", "surbl", "appears to be unsolicited", "mass", "scor", "uce", "unsolicited ",
)


match = matcher(PATTERN, NEEDLES)

# The word itself, or its usual stand-ins: what tells a spam verdict from a vague content refusal.
SPAM_WORD = re.compile(r"spam|junk|unsolicited|bulk|\buce\b")


def true(tmp: Reason | None, text: str, command: str) -> bool:
    from mailtally.bounces.reason.filtered import judged_after_data

    return judged_after_data(REASON, tmp, text, command, match)
