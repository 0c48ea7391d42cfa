"""Microsoft Exchange 2007 and later (on premises): `Undeliverable: ...` (or its translation), a notice,
then `Diagnostic information for administrators:`, `Generating server: ...`, the recipient and
`#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##`, and usually a delivery-status part. The
`COMPONENT.CATEGORY.Name` code of Exchange's categorizer, resolver and queue names the reason more
precisely than the status code (5.2.3 for a message too large for one recipient, 4.4.7 for a
message that expired in the queue)."""

from __future__ import annotations

from mailtally.bounces import fallback, rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.reason import NAMED_CODE_MARKS, named_code

_MARKS = NAMED_CODE_MARKS


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
    # The codes decide the reason (reason.decide reads them); here they only say the report is ours.
    # Without one of them this is some other system's report that quotes Exchange: not ours.
    known = any(named_code(f.diagnostic) is not None for f in found)
    return found if known else []
