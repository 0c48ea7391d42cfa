"""Postfix notices the DSN layer cannot read: the SMTP server's error transcript to the postmaster
(` In:  RCPT TO:<a@b>` / ` Out: 451 4.3.0 Error: ...`), and bounces whose delivery report is
missing (`--- Delivery report unavailable ---`), where only the returned original names the recipient."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status, squash

_IN = re.compile(r"^[ \t]{0,4}In:[ \t]+([A-Za-z]{4})\b[ \t]*(.{0,400})$")
_OUT = re.compile(r"^[ \t]{0,4}Out:[ \t]+([245]\d\d)[ -](.{0,400})$")
_RCPT = re.compile(r"TO:[ \t]*<?([^\s<>@]{1,128}@[A-Za-z0-9.-]{1,255})>?", re.I)


def matches(mail: Mail) -> bool:
    return "Postfix" in mail.subject or ("The mail system" in mail.text and "report unavailable" in mail.text)


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:60000]
    if " In:" in text and " Out:" in text:
        return _transcript(text)
    if not mail.dsn or "final-recipient" in mail.dsn.lower() or "report unavailable" not in text:
        return []
    # A bounce without its per-recipient report: the engine takes the recipient from the original's To.
    return [Finding()]


def _transcript(text: str) -> list[Finding]:
    recipients: list[str] = []
    command = ""
    error = ""
    error_command = ""
    for line in text.split("\n")[:2000]:
        m = _IN.match(line)
        if m:
            command = m.group(1).upper()
            if command == "RCPT":
                r = _RCPT.search(m.group(2))
                a = clean_address(r.group(1)) if r else ""
                if a and a not in recipients:
                    recipients.append(a)
            continue
        o = _OUT.match(line)
        if o and o.group(1)[0] in "45" and not error:
            error = squash(o.group(1) + " " + o.group(2))
            error_command = command
    if not error:
        return []
    return [
        Finding(recipient=a, diagnostic=error, command=error_command, reply_code=find_reply_code(error),
                status=find_status(error))
        for a in recipients
    ]
