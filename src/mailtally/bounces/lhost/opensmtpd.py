"""OpenSMTPD (smtpd/bounce.c): `This is the MAILER-DAEMON, please DO NOT REPLY to this e-mail.`, a
notice for the failed (or delayed) recipients, one `a@b: error` line each, then
`Below is a copy of the original message:`. The error is the remote answer, or one of smtpd's own
messages (mta.c), which say the reason themselves."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, squash
from mailtally.bounces.textscan import complete
from mailtally.vocab import Reason

_START = "This is the MAILER-DAEMON, please DO NOT REPLY to this"
_END = re.compile(r"^[ \t]*Below is a copy of the original message", re.M)
_LINE = re.compile(r"^([^\s<>@:]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253}):[ \t]*(.{1,1000})$", re.M)
# smtpd's own words (mta.c, queue.c), checked in this order.
_OWN: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.EXPIRED, ("envelope expired",)),
    (Reason.NOTACCEPT, ("no mx found for domain", "no mx found for destination")),
    (Reason.HOSTUNKNOWN, ("domain does not exist", "invalid domain name")),
    (Reason.NETWORKERROR, ("network error on destination mxs", "destination seem to reject all mails")),
    (Reason.SECURITYERROR, ("could not retrieve credentials",)),
)


def matches(mail: Mail) -> bool:
    return "Delivery status notification" in mail.subject and _START in mail.text[:5000]


def probe(mail: Mail) -> list[Finding]:
    text = mail.text
    start = text.find(_START)
    if start < 0:
        return []
    report = text[start : start + 60000]
    m = _END.search(report)
    if m is not None:
        report = report[: m.start()]
    found: list[Finding] = []
    for line in _LINE.finditer(report):
        a = clean_address(line.group(1))
        if not a:
            continue
        f = complete(Finding(recipient=a, diagnostic=squash(line.group(2))), [])
        low = f.diagnostic.lower()
        for r, phrases in _OWN:
            if any(p in low for p in phrases):
                f.reason = r
                break
        found.append(f)
    return found
