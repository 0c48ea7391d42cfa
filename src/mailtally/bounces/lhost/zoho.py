"""Zoho Mail: one line per recipient, `a@b Invalid Address, ERROR_CODE :550, ERROR_CODE :5.1.1 ...`,
or for delays `[Status: Error, Address: <a@b>, ResponseCode 421, , Host not reachable.]`."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_command, find_reply_code, find_status, squash
from mailtally.vocab import Reason

_LINE = re.compile(r"^[ \t]*<?([^\s<>@]{1,128}@[A-Za-z0-9.-]{1,255})>?[ \t]+(.{0,400}ERROR_CODE[ \t]*:.{0,400})$", re.M)
_DELAY = re.compile(
    r"^[ \t]*\[Status: [^,\n]{1,40}, Address: <?([^\s<>@,]{1,128}@[A-Za-z0-9.-]{1,255})>?,(.{0,400})\]", re.M
)
_CODE = re.compile(r"(?:ERROR_CODE :|ResponseCode )([245]\d\d)\b")
_RETRY = re.compile(r"will be retried|Host not reachable|\(Delay\)", re.I)


def matches(mail: Mail) -> bool:
    return "ERROR_CODE :" in mail.text or "[Status: " in mail.text


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:20000]
    out: list[Finding] = []
    for m in _LINE.finditer(text):
        diag = squash(m.group(2).replace("ERROR_CODE :", "").replace(", ,", ","))
        out.append(_finding(m.group(1), diag, mail, m.group(2)))
    for m in _DELAY.finditer(text):
        diag = squash(m.group(2).replace("ResponseCode", "").replace(", ,", ",").strip(" ,"))
        f = _finding(m.group(1), diag, mail, m.group(2))
        f.reason = Reason.EXPIRED  # a warning: delivery still being retried when it was sent
        out.append(f)
    return [f for f in out if f.recipient]


def _finding(address: str, diag: str, mail: Mail, raw: str) -> Finding:
    f = Finding(recipient=clean_address(address), diagnostic=diag)
    f.status = find_status(diag)
    c = _CODE.search(raw)
    f.reply_code = c.group(1) if c else find_reply_code(diag)
    f.command = find_command(diag)
    if not f.status.startswith("5") and _RETRY.search(diag + " " + mail.subject):
        f.reason = Reason.EXPIRED  # Zoho gives up on an unreachable host only after its retry period
    return f
