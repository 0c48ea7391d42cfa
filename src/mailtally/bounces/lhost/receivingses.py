"""Amazon SES as a mail system (`X-SES-Outgoing:` header): DSNs sent by SES receiving rules and by
SES sending when the remote server refused. Receiving rules word their errors from fixed templates
that say the reason; sending DSNs often carry a vague x.0.0 / x.1.0 status with the remote
server's real code quoted in the diagnostic (`5.1.0 - Unknown address error 550-'5.7.1 ...'`)."""

from __future__ import annotations

import re

from mailtally.bounces import fallback, rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import find_status
from mailtally.vocab import Reason

_VAGUE = re.compile(r"^[45]\.[01]\.0$")
_QUOTED = re.compile(r"[\"'](\d\.\d{1,3}\.\d{1,3}.{0,400}?)[\"']")
# Templates of SES receiving rule actions ("Bounce" action messages).
TEMPLATES: tuple[tuple[str, Reason], ...] = (
    ("Mailbox does not exist", Reason.FILTERED),
    ("Message too large", Reason.MESGTOOBIG),
    ("Mailbox full", Reason.MAILBOXFULL),
    ("Message content rejected", Reason.CONTENTERROR),
)


def matches(mail: Mail) -> bool:
    return bool(mail.dsn) and (mail.headers.get("X-SES-Outgoing") is not None or ".amazonses.com" in mail.dsn[:3000])


def probe(mail: Mail) -> list[Finding]:
    found = rfc3464.parse(mail)
    if not found:
        return []
    fallback.enrich(mail, found)
    receiving = "This message could not be delivered." in mail.text
    for f in found:
        if _VAGUE.match(f.status or "5.0.0"):
            q = _QUOTED.search(f.diagnostic)
            better = find_status(q.group(1) if q else f.diagnostic)
            if better and not _VAGUE.match(better):
                f.status = better
        if receiving:
            for phrase, r in TEMPLATES:
                if phrase in f.diagnostic:
                    f.reason = r
                    break
    return found
