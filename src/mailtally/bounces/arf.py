"""RFC 5965 Abuse Reporting Format: complaints (and opt-outs) sent back by mailbox providers.

A complaint is not a bounce: the records carry reason `feedback`, no bounce code, and the
feedback type, so that the store can count it as abuse (or an opt-out) instead.
"""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.record import UNDISCLOSED_RECIPIENT
from mailtally.bounces.smtp import clean_address, find_addresses
from mailtally.vocab import Reason

_FIELD = re.compile(
    r"^(feedback-type|original-rcpt-to|removal-recipient|arrival-date|received-date|reporting-mta|source-ip)"
    r"[ \t]*:[ \t]*(.*)$",
    re.I | re.M,
)
_TO = re.compile(r"^to[ \t]*:[ \t]*(.*(?:\n[ \t]+.*){0,20})", re.I | re.M)
_COMPLAINT_SUBJECT = re.compile(r"complaint about message from|abuse report|^fw: |spam report", re.I)
_COMPLAINT_SENDER = re.compile(r"staff@hotmail|abuse|feedback|fbl", re.I)


def is_arf(mail: Mail) -> bool:
    """A feedback report part, a report-type of feedback-report, or a provider's complaint wrapper."""
    if mail.feedback:
        return True
    ctype = mail.headers.get("Content-Type", "") or ""
    if "feedback-report" in ctype.lower():
        return True
    # Hotmail-style: a complaint wrapping the original, with no feedback-report part at all.
    return bool(
        mail.original is not None
        and _COMPLAINT_SUBJECT.search(mail.subject)
        and _COMPLAINT_SENDER.search(mail.from_)
    )


def parse(mail: Mail) -> list[Finding]:
    text = mail.feedback or mail.text
    ftype = "abuse"
    recipients: list[str] = []
    date = reporting = ""
    for m in _FIELD.finditer(text):
        name, value = m.group(1).lower(), m.group(2).strip()
        if name == "feedback-type":
            ftype = value.split()[0].lower() if value else ftype
        elif name in ("original-rcpt-to", "removal-recipient"):
            a = clean_address(value)
            if a and a not in recipients:
                recipients.append(a)
        elif name in ("arrival-date", "received-date") and not date:
            date = value
        elif name == "reporting-mta" and not reporting:
            reporting = value.split(";")[-1].strip()
    if not recipients and mail.original:
        head = mail.original.split("\n\n", 1)[0]
        to = _TO.search(head)
        if to:
            recipients = find_addresses(to.group(1))
    if not recipients:
        # A complaint with the recipient redacted still counts: keep it, under the placeholder.
        recipients = [UNDISCLOSED_RECIPIENT]
    return [
        Finding(recipient=r, reason=Reason.FEEDBACK, feedback_type=ftype, date=date, reporting_mta=reporting)
        for r in recipients
    ]
