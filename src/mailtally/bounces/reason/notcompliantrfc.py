"""notcompliantrfc: the message is not compliant with RFC 5322 (headers, line formats)."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.NOTCOMPLIANTRFC
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"rfc ?5322",
            r"rfc ?2822",
            r"rfc ?822 (?:compliant|standard|format)",
            r"not (?:rfc|standards?)[- ]compliant",
            r"multiple (?:from|to|subject|date|message-id|sender) (?:headers|fields)",
            r"duplicate (?:from|to|subject|date|message-id)\b",  # a duplicate header otherwise: contenterror
            r"bare lf",
            r"missing (?:required )?(?:header|from|date|message-id)",
            r"rfc ?5321",
            r"not compliant with rfc",
            r"does not (?:conform|comply) (?:to|with) (?:rfc|the standards?)",
            r"header (?:is )?malformed",
            r"malformed header",
            r"message contains (?:invalid|illegal) header",
            r"more than one .{0,20}header",
            r"improperly formatted",
            r"message not rfc",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
