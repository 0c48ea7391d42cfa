"""failedstarttls: STARTTLS could not be negotiated with the receiving server."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.FAILEDSTARTTLS
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"starttls (?:failed|failure|is required|required|negotiation)",
            r"tls (?:negotiation|handshake) (?:failed|error)",
            r"failed to (?:establish|negotiate) tls",
            r"must issue a starttls",
            r"tls is required",
            r"ssl(?:3)?_(?:get|read)",
            r"certificate verify failed",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
