"""Ipswitch IMail Server (`X-Mailer: <SMTP32 v...>`, subject `Undeliverable Mail`): one line per
recipient that is itself the error (`Unknown user: a@b`, `User mailbox exceeds allowed size: a@b`),
or `undeliverable to a@b` followed by the remote server's response, introduced by the SMTP step
(`Additional RCPT TO generated following response:`, `DATA command generated response:`)."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.textscan import cut_original, scan
from mailtally.vocab import Reason

_STEPS: tuple[tuple[str, str], ...] = (
    ("SMTP connection failed,", "CONN"),
    ("Unexpected connection response from server:", "CONN"),
    ("Unexpected response to EHLO/HELO:", "EHLO"),
    ("Server response to MAIL FROM:", "MAIL"),
    ("Additional RCPT TO generated following response:", "RCPT"),
    ("DATA command generated response:", "DATA"),
)
_OWN: tuple[tuple[re.Pattern[str], Reason], ...] = (
    (re.compile(r"Unknown host"), Reason.HOSTUNKNOWN),
    (re.compile(r"^(?:Unknown user|Invalid final delivery userid)"), Reason.USERUNKNOWN),
    (re.compile(r"^User mailbox exceeds allowed size"), Reason.MAILBOXFULL),
    (re.compile(r"^Requested action not taken: virus detected"), Reason.VIRUSDETECTED),
    (re.compile(r"^Delivery failed \d{1,5} attempts"), Reason.EXPIRED),
)
_PREAMBLE = re.compile(
    r"^[ \t]*(?:To|CC|Date|Subject):.{0,400}$|^[ \t]*Save to the following Address Book:", re.I | re.M
)


def matches(mail: Mail) -> bool:
    return (mail.headers.get("X-Mailer") or "").startswith("<SMTP32 v") or mail.subject.strip() == "Undeliverable Mail"


def probe(mail: Mail) -> list[Finding]:
    report, _ = cut_original(mail.text[:60000])
    report = _PREAMBLE.sub("", report)  # an address-book header block quoting the sender
    found = [f for f in scan(report) if f.diagnostic]
    for f in found:
        d = f.diagnostic
        for marker, step in _STEPS:
            if marker in d:
                f.command = step
                break
        for rx, r in _OWN:
            if rx.search(d):
                f.reason = r
                break
    return found
