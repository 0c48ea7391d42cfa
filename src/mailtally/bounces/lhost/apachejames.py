"""Apache James style notices (also sent by Verizon's vtext.com gateway): `Error message below:`
with the SMTP reply, then `Message details:` listing the envelope, whose `RCPT TO:` is the recipient."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status, squash

_BELOW = re.compile(r"^[ \t]*Error message below:[ \t]*\n(.{0,2000}?)\n[ \t]*\n", re.I | re.M | re.S)
_RCPT = re.compile(r"^[ \t]*RCPT TO:[ \t]*<?([^\s<>@]{1,128}@[A-Za-z0-9.-]{1,255})>?", re.I | re.M)
_ERROR = re.compile(r"^[ \t]*Error:[ \t]*(.{1,300})$", re.M)


def matches(mail: Mail) -> bool:
    return "Message details:" in mail.text and "Error message below" in mail.text


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:20000]
    head, _, details = text.partition("Message details:")
    m = _BELOW.search(head + "\n\n")
    diag = squash(m.group(1)) if m else ""
    if not diag:
        e = _ERROR.search(head)
        diag = squash(e.group(1)) if e else ""
    out: list[Finding] = []
    for r in _RCPT.finditer(details):
        a = clean_address(r.group(1))
        if a:
            out.append(
                Finding(recipient=a, diagnostic=diag, command="RCPT" if diag else "",
                        reply_code=find_reply_code(diag), status=find_status(diag))
            )
    return out
