"""PowerMTA's delivery reports: a standard DSN whose recipient blocks carry PowerMTA's own verdict,
`X-PowerMTA-BounceCategory: bad-mailbox`, which says the reason in PowerMTA's words."""

from __future__ import annotations

import re

from mailtally.bounces import fallback, rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.vocab import Reason

_CATEGORY = re.compile(r"^[ \t]*X-PowerMTA-BounceCategory:[ \t]*([A-Za-z-]{1,40})", re.I | re.M)
_FINAL = re.compile(r"^[ \t]*Final-Recipient:", re.I | re.M)
CATEGORIES: dict[str, Reason] = {
    "bad-domain": Reason.HOSTUNKNOWN,
    "bad-mailbox": Reason.USERUNKNOWN,
    "inactive-mailbox": Reason.SUSPEND,
    "message-expired": Reason.EXPIRED,
    "no-answer-from-host": Reason.NETWORKERROR,
    "policy-related": Reason.POLICYVIOLATION,
    "quota-issues": Reason.MAILBOXFULL,
    "routing-errors": Reason.SYSTEMERROR,
    "spam-related": Reason.SPAMDETECTED,
}


def matches(mail: Mail) -> bool:
    return "X-PowerMTA-BounceCategory" in mail.dsn


def probe(mail: Mail) -> list[Finding]:
    found = rfc3464.parse(mail)
    if not found:
        return []
    fallback.enrich(mail, found)
    # One category per recipient block, in the order of the blocks.
    blocks = _FINAL.split(mail.dsn)[1:]
    for f, block in zip(found, blocks, strict=False):
        m = _CATEGORY.search(block)
        if m:
            f.reason = CATEGORIES.get(m.group(1).lower())
    return found
