"""McAfee Email and Web Security appliances (`X-NAI-Header: Modified by McAfee ...`, subject
`Delivery Status`): `--- The following addresses had delivery problems ---`, then per recipient
`<a@b>   (the remote server's answer)`, and a DSN part that often names only Original-Recipient."""

from __future__ import annotations

import re

from mailtally.bounces import rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status, squash
from mailtally.vocab import Reason

_START = "--- The following addresses had delivery problems ---"
_LINE = re.compile(r"^[ \t]*<([^\s<>@]{1,128}@[^\s<>@]{1,255})>[ \t]+\((.{1,500})\)[ \t]*$", re.M)
# The appliance's words for a recipient the remote server does not know.
_UNKNOWN = re.compile(
    r" user \(\S{1,200}@\S{1,200}\) unknown\.|550 unknown user \S{1,200}@|"
    r"550 <\S{1,200}@\S{1,200}>\.{1,3} user not exist|no such user",
    re.I,
)


def matches(mail: Mail) -> bool:
    return "Modified by McAfee" in (mail.headers.get("X-NAI-Header") or "")


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:60000]
    at = text.find(_START)
    if at < 0:
        return []
    found: list[Finding] = []
    for m in _LINE.finditer(text, at):
        a = clean_address(m.group(1))
        if a:
            found.append(Finding(recipient=a, diagnostic=squash(m.group(2))))
    by_rcpt = {f.recipient.lower(): f for f in rfc3464.parse(mail)}
    for f in found:
        d = by_rcpt.get(f.recipient.lower())
        if d is not None:
            f.diagnostic = d.diagnostic or f.diagnostic
            f.status, f.remote_mta, f.action = d.status, d.remote_mta, d.action
            f.diagnostic_type = d.diagnostic_type
        f.status = f.status or find_status(f.diagnostic)
        f.reply_code = find_reply_code(f.diagnostic)
        if _UNKNOWN.search(f.diagnostic):
            f.reason = Reason.USERUNKNOWN
    return found
