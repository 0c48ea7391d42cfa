"""Microsoft Exchange 2007 and later (on premises): `Undeliverable: ...` (or its translation), a notice,
then `Diagnostic information for administrators:`, `Generating server: ...`, the recipient and
`#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##`, and usually a delivery-status part. The
`COMPONENT.CATEGORY.Name` code of Exchange's categorizer, resolver and queue names the reason more
precisely than the status code (5.2.3 for a message too large for one recipient, 4.4.7 for a
message that expired in the queue)."""

from __future__ import annotations

import re

from mailtally.bounces import fallback, rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.vocab import Reason

_MARKS = ("RESOLVER.", "QUEUE.Expired", "SMTPSEND.DNS.")
_CODE = re.compile(r"\b((?:RESOLVER|QUEUE|SMTPSEND)\.[A-Za-z]{1,20}(?:\.[A-Za-z]{1,30})?)\b")
# Exchange's own codes and what each one means.
_CODES: dict[str, Reason] = {
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


def matches(mail: Mail) -> bool:
    head = mail.text[:20000]
    dsn = mail.dsn[:20000]
    return any(m in head or m in dsn for m in _MARKS)


def probe(mail: Mail) -> list[Finding]:
    found = rfc3464.parse(mail)
    if found:
        fallback.enrich(mail, found)
    else:
        found = fallback.parse(mail)
    known = False
    for f in found:
        if f.reason is not None or "." not in f.diagnostic:
            continue
        for m in _CODE.finditer(f.diagnostic[:2000]):
            r = _CODES.get(m.group(1))
            if r is not None:
                f.reason = r
                known = True
                break
    # Without one of its codes this is some other system's report that quotes Exchange: not ours.
    return found if known else []
