"""Yahoo! Mail's own notices: `Sorry, we were unable to deliver your message to the following
address.`, then `<a@b>:` and the remote server's reply, whose last bracket names the SMTP step
(`[RCPT_TO]`); a reply that names the recipient `<a@b>` was the answer to RCPT."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.textscan import cut_original, scan
from mailtally.vocab import Reason

_START = "Sorry, we were unable to deliver your message"
_STEP = re.compile(r"\[([A-Z]{4})[A-Z_]{0,10}\][ \t]*$")
_NAMES_RCPT = re.compile(r"<[^<>@\s]{1,128}@[^<>@\s]{1,255}>")
_NOT_MX = re.compile(r"no mx record found for domain", re.I)


def matches(mail: Mail) -> bool:
    return _START in mail.text[:4000]


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:60000]
    at = text.find(_START)
    if at < 0:
        return []
    report, _ = cut_original(text[at:])
    found = [f for f in scan(report) if f.diagnostic]
    for f in found:
        if _NOT_MX.search(f.diagnostic):
            f.reason = Reason.NOTACCEPT  # Yahoo's own words: the domain publishes no mail exchanger
        m = _STEP.search(f.diagnostic)
        if m:
            f.command = m.group(1)
        elif not f.command and _NAMES_RCPT.search(f.diagnostic):
            f.command = "RCPT"
    return found
