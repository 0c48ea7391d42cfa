"""systemerror: the receiving system failed internally or is misconfigured."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

REASON = Reason.SYSTEMERROR
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset(
    {
        "5.3.0", "5.3.3", "5.3.5", "5.4.3", "5.5.4", "5.5.5", "5.1.9", "4.1.9",
        "4.3.3", "4.3.5", "4.5.5",
    }
)
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"system (?:config(?:uration)? )?error",
            r"internal (?:server )?error",
            r"server (?:configuration|config) (?:error|problem)",
            r"local configuration error",
            r"temporary (?:local )?problem",
            r"mail system (?:error|failure)",
            r"unable to process",
            r"server error",
            r"mail (?:for .{1,100} )?loops back to myself",
            r"local error in processing",
            r"delivery to (?:the )?following recipients? failed permanently",
            r"too many hops",
            r"hop count exceeded",
            r"mail loop",
            r"loop(?:ing)? detected",
            r"routing loop",
            r"forwarding loop",
            r"loops back",
            r"unexpected (?:error|failure)",
            r"database (?:error|failure)",
            r"queue file write error",
            r"configuration problem",
            r"system config",
            r"misconfigured",
            r"temporary failure",
            r"lmtp",
            r"storedrv",
        )
    )
)


def match(text: str) -> bool:
    return PATTERN is not None and PATTERN.search(text) is not None
