"""Verizon Wireless MMS gateway (vzwpix.com): `Message could not be delivered to mobile.` and
`Error: ...`; the recipient appears only as `To:` in the `Original Message:` summary."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, squash
from mailtally.vocab import Reason

_ERROR = re.compile(r"^[ \t]*Error:[ \t]*(.{1,300})$", re.M)
_TO = re.compile(r"^[ \t]*To:[ \t]*(.{1,300})$", re.M | re.I)


def matches(mail: Mail) -> bool:
    return "could not be delivered to mobile" in mail.text and "Original Message:" in mail.text


def probe(mail: Mail) -> list[Finding]:
    head, _, orig = mail.text[:20000].partition("Original Message:")
    e = _ERROR.search(head)
    t = _TO.search(orig)
    if t is None:
        return []
    a = clean_address(t.group(1))
    if not a:
        return []
    f = Finding(recipient=a, diagnostic=squash(e.group(1) if e else head))
    if "no valid recipients" in f.diagnostic.lower():
        f.reason = Reason.USERUNKNOWN  # the gateway's words for a number that has no subscriber
    return [f]
