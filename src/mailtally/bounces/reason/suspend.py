"""suspend: the recipient's account exists but is disabled or suspended."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.SUSPEND
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.2.1", "5.7.13"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"(?:account|mailbox|user|address|recipient)(?: has been| is|'s)? (?:temporarily )?(?:disabl"
            r"ed|suspended|deactivated|inactive|locked|frozen|blocked by the administrator|expired|disco"
            r"ntinued|closed|deleted)",
            r"(?:inactive|disabled|suspended|expired|closed) (?:user|account|mailbox|recipient|address)",
            r"has been (?:disabled|suspended|deactivated)",
            r"boite du destinataire archivee",
            r"not an active (?:user|account|mailbox)",
            r"mailbox (?:currently )?(?:suspended|unavailable due)",
            r"is not active",
            r"account (?:is )?unavailable",
            r"user (?:account )?(?:is )?suspended",
            r"this account has been disabled",
            r"email account .{0,40}(?:disabled|suspended)",
            r"recipient suspended",
            r"mailbox is frozen",
            r"is a deactivated mailbox",
            r"account has been closed",
            r" temporary locked",
            r"archived recipient",
            r"is unavailable: user is terminated",
            r"recipient rejected: temporarily inactive",
            r"user or domain is disabled",
            r"this mailbox is disabled",
            r"mailbox disabled",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "archived recipient", "boite du destinataire archivee", "closed", "deactivated", "deleted", "disabled",
    "discontinued", "email account ", "expired", "frozen", "has been ", "inactive", "is not active", "locked",
    "not an active ", "suspended", "unavailable",
)


match = matcher(PATTERN, NEEDLES)
