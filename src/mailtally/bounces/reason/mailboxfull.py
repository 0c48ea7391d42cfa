"""mailboxfull: the recipient's mailbox is out of space."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.MAILBOXFULL
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.2.2", "5.2.2"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"mail ?box (?:is )?(?:full|over ?quota|exceeded)",
            r"over ?quota",
            r"quota (?:exceeded|full|violation|exceed)",
            r"exceed(?:s|ed)? (?:the |his |her |their |its |your )?(?:storage |mailbox |disk )?(?:quota|storage)",
            r"insufficient (?:storage )?space",
            r"(?:disk|storage|mailbox) quota",
            r"user is over (?:the|their|his|her) quota",
            r"full mailbox",
            r"account is full",
            r"not enough (?:storage|space)",
            r"mail ?folder is full",
            r"would exceed (?:the )?mailbox quota",
            r"too much mail data",
            r"inbox is full",
            r"mailbox (?:size|storage) limit",
            r"mailbox exceeds (?:the )?(?:allowed|maximum)",
            r"maildir over quota",
            r"recipient (?:mailbox|storage) full",
            r"boite du destinataire pleine",
            r"user has exhausted allowed storage",
            r"mailbox has exceeded",
            r"user(?:'s)? mailbox is full",
            r"box is full",
            r"mailboxfull",
            r"shutoffquotaexceeded",
            r"the user you are trying to contact is receiving mail at a rate",
            r"space (?:has )?run out",
            r"over the allowed quota",
            r"delivery failed: over quota",
            r"mailbox full",
            r"is full and cannot accept",
            r"exceeded (?:his|her|the) storage allocation",
            r"not enough disk space",
            r"out of (?:disk )?space",
            r"mailsize limit exceeded",
            r"quota exceeded",
            r"too many (?:messages|mails|e-?mails) (?:on the server|stored|in (?:the |his |her |their |this |your )?"
            r"(?:mail ?box|inbox|account))",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " storage allocation", "account is full", "boite du destinataire pleine", "box is full", "exceed",
    "folder is full", "insufficient ", "is full and cannot accept", "mail", "not enough disk space", "not enough s",
    "out of ", "quota", "too many ", "recipient ", "run out", "user has exhausted allowed storage", "user is over ",
)


match = matcher(PATTERN, NEEDLES)
