"""mesgtoobig: the message is too big for the receiving system."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.MESGTOOBIG
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.3.4", "5.7.16", "4.7.16"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"message (?:is |was )?too (?:big|large)",
            r"message size (?:exceeds|too)",
            r"exceeds? (?:the |our |maximum |max )+(?:allowed )?(?:message )?size",
            r"size (?:limit|exceeded)",
            r"message length exceeds",
            r"mail (?:is )?too large",
            r"larger than (?:the )?(?:allowed|maximum|max)",
            r"message file too big",
            r"exceeded maximum message size",
            r"maximum (?:message )?size",
            r"size of (?:the )?message exceeds",
            r"email is too large",
            r"message exceeds (?:the )?(?:maximum|fixed|local)",
            r"too big for",
            r"mail size",
            r"sizelimit",
            r"line limit exceeded",
            r"taille limite du message atteinte",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "exceed", "larger than ", "mail size", "maximum ", "message ", "size ", "sizelimit", "too big for", "too large",
)


match = matcher(PATTERN, NEEDLES)


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """5.2.3 (per-recipient limit) is exceedlimit even when the text says "too big"."""
    if tmp is REASON:
        return True
    return tmp is not Reason.EXCEEDLIMIT and match(text)
