"""KDDI / au one net (dion.ne.jp, auone-net.jp): `Your mail sent on: ...` then
`Could not be delivered to: <a@b>` and the error on the next line, from a no-reply sender."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, squash
from mailtally.vocab import Reason

_RCPT = re.compile(
    r"^[ \t]*Could not be delivered to:[ \t]*<?([^\s<>@]{1,128}@[A-Za-z0-9.-]{1,255})>?[ \t]*\n"
    r"((?:[^\n]{0,300}\n){0,3})",
    re.I | re.M,
)


def matches(mail: Mail) -> bool:
    return "Your mail sent on" in mail.text and "Could not be delivered to" in mail.text


def probe(mail: Mail) -> list[Finding]:
    out: list[Finding] = []
    for m in _RCPT.finditer(mail.text[:20000]):
        a = clean_address(m.group(1))
        if not a:
            continue
        diag = squash(m.group(2))
        f = Finding(recipient=a, diagnostic=diag)
        low = diag.lower()
        if "mailbox is full" in low:
            f.reason = Reason.MAILBOXFULL
        elif "timed out" in low or "expired" in low:
            f.reason = Reason.EXPIRED
        out.append(f)
    return out
