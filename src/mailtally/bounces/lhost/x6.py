"""An MTA whose notices say `We had trouble delivering your message. Full details follow:` with one
line per error: `The following recipients returned permanent errors: a@b. Reason: ...` or
`SMTP Server <host> rejected recipient <a@b> (Error following RCPT command). It responded as follows: [...]`."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_command, find_reply_code, find_status, squash

_ADDR = r"<?([^\s<>@,]{1,128}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,10})>?"
_LINES = (
    re.compile(
        r"recipients? returned (?:permanent|temporary) errors?:[ \t]*" + _ADDR + r"\.?[ \t]*(.{0,600})$", re.I | re.M
    ),
    re.compile(r"rejected recipient[ \t]*" + _ADDR + r"[ \t]*(.{0,600})$", re.I | re.M),
)
_CMD = re.compile(r"\((?:Error following )?(RCPT|MAIL|DATA|HELO|EHLO)\b[^)]{0,20}\)", re.I)
_BRACKET = re.compile(r"\[([^\[\]\n]{1,500})\]")


def matches(mail: Mail) -> bool:
    return "Full details follow" in mail.text and "We had trouble delivering" in mail.text


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:20000]
    out: list[Finding] = []
    for rx in _LINES:
        for m in rx.finditer(text):
            a = clean_address(m.group(1))
            if not a:
                continue
            rest = m.group(2)
            b = _BRACKET.search(rest)
            diag = squash(b.group(1) if b else rest)
            c = _CMD.search(rest)
            f = Finding(recipient=a, diagnostic=diag, command=c.group(1).upper() if c else find_command(rest))
            f.status = find_status(diag)
            f.reply_code = find_reply_code(diag)
            out.append(f)
    return out
