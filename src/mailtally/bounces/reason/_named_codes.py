"""Codes a diagnostic names in words, each with one meaning: Microsoft Exchange's
`COMPONENT.CATEGORY.Name` (`RESOLVER.ADR.RecipNotFound`, `QUEUE.Expired`, ...).

They say the reason more precisely than the status code beside them (5.2.3 for a message too
large for one recipient, 4.4.7 for a message that expired in the queue), and they travel inside
other systems' reports when an Exchange or Office 365 server answered, so they are read here, by
the reason layer, not by a format module.
"""

from __future__ import annotations

import re

from mailtally.vocab import Reason

# The components whose codes name a reason; a diagnostic without one of these is skipped cheaply.
MARKS: tuple[str, ...] = ("RESOLVER.", "QUEUE.Expired", "SMTPSEND.DNS.")
_CODE = re.compile(r"\b((?:RESOLVER|QUEUE|SMTPSEND)\.[A-Za-z]{1,20}(?:\.[A-Za-z]{1,30})?)\b")
CODES: dict[str, Reason] = {
    "SMTPSEND.DNS.NonExistentDomain": Reason.HOSTUNKNOWN,
    "SMTPSEND.DNS.MxLoopback": Reason.NETWORKERROR,
    "RESOLVER.ADR.BadPrimary": Reason.SYSTEMERROR,
    "RESOLVER.ADR.RecipNotFound": Reason.USERUNKNOWN,
    "RESOLVER.ADR.ExRecipNotFound": Reason.USERUNKNOWN,
    "RESOLVER.ADR.RecipLimit": Reason.TOOMANYCONN,
    "RESOLVER.ADR.InvalidInSmtp": Reason.SYSTEMERROR,
    "RESOLVER.ADR.Ambiguous": Reason.SYSTEMERROR,
    "RESOLVER.RST.AuthRequired": Reason.SECURITYERROR,
    "RESOLVER.RST.NotAuthorized": Reason.REJECTED,
    "RESOLVER.RST.RecipSizeLimit": Reason.MESGTOOBIG,
    "QUEUE.Expired": Reason.EXPIRED,
}


def reason_of(diagnostic: str) -> Reason | None:
    """The reason the first known code in the diagnostic (as written, not lower-cased) names."""
    if "." not in diagnostic or not any(m in diagnostic for m in MARKS):
        return None
    for m in _CODE.finditer(diagnostic[:2000]):
        r = CODES.get(m.group(1))
        if r is not None:
            return r
    return None
