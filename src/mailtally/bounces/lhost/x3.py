"""An MTA that writes `This is an automatically generated Delivery Status Notification.`, then
`Delivery to the following recipients failed permanently:` and `  * a@b` per recipient, and its
error under `Technical details:` as `SMTP:RCPT host ...: 550 ...`, `Routing: ...` or a
`Diagnostic-Code:` field. When none of these is there, the notice says nothing of why: its heading
is not a diagnostic, and the reason stays undefined. With them, the generic readers do well."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address
from mailtally.bounces.textscan import cut_original
from mailtally.vocab import Reason

_START = "This is an automatically generated Delivery Status Notification."
_RCPT = re.compile(r"^[ \t]+\*[ \t]([^\s<>@]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})[ \t]*$", re.M)
_DETAIL = re.compile(r"^[ \t]*(?:SMTP:[A-Za-z]|Routing:|Diagnostic-Code:|Technical details)", re.I | re.M)


def matches(mail: Mail) -> bool:
    return (
        mail.from_.startswith("Mail Delivery System")
        and mail.subject.startswith("Delivery status notification")
        and _START in mail.text[:4000]
    )


def probe(mail: Mail) -> list[Finding]:
    if _DETAIL.search(mail.text[:60000]) or _DETAIL.search(mail.dsn[:60000]):
        return []  # an error is written out: the generic readers take it from here
    report, _ = cut_original(mail.text[mail.text.find(_START) :][:60000])
    out: list[Finding] = []
    for m in _RCPT.finditer(report):
        a = clean_address(m.group(1))
        if a and all(f.recipient != a for f in out):
            out.append(Finding(recipient=a, reason=Reason.UNDEFINED))
    return out
