"""Google (Gmail, Workspace): its SMTP answers are documented and worded the same everywhere.

Read first because some of them would mislead the generic phrase lists: "unusual rate of
unsolicited mail" is about the sending IP (blocked), not spam in this message.
"""

from __future__ import annotations

import re

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".google.com", ".googlemail.com")
DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})

# (reason, phrase) in the order they must be tried; phrases are Google's documented wording.
_RULES: tuple[tuple[Reason, str], ...] = (
    (Reason.USERUNKNOWN, r"the email account that you tried to reach does not exist"),
    (Reason.SUSPEND, r"the email account that you tried to reach is (?:disabled|inactive)"),
    (Reason.MAILBOXFULL, r"(?:account that you tried to reach|recipient's inbox) is (?:over quota|out of storage)"),
    (Reason.SPEEDING, r"receiving mail (?:at a rate|too quickly)|try again slower"),
    (Reason.REQUIREPTR, r"does not have a ptr record|ptr record setup|ip address does not match hostname"),
    (Reason.AUTHFAILURE, r"(?:fails to pass|does not have) authentication|unauthenticated email|dmarc policy"),
    (Reason.NOTCOMPLIANTRFC, r"not rfc ?5322 compliant"),
    (Reason.VIRUSDETECTED, r"contains? a virus|potential security issue"),
    (Reason.BLOCKED, r"unusual rate of unsolicited mail|not authorized to send email directly to our servers"),
    (Reason.SPAMDETECTED, r"likely unsolicited mail"),
)
_ANY = re.compile("|".join(f"(?P<r{i}>{p})" for i, (_, p) in enumerate(_RULES)))


def find(text: str, status: str, reply: str) -> Reason | None:
    """Google's reading of its own answer, or None to let the generic rules decide."""
    m = _ANY.search(text)
    if m is None or m.lastgroup is None:
        return None
    return _RULES[int(m.lastgroup[1:])][0]
