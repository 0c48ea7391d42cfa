"""Google Groups: a post to a group that does not exist or does not accept the sender."""

from __future__ import annotations

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, squash


def matches(mail: Mail) -> bool:
    return "googlemail.com" in mail.from_.lower() and "groups.google.com" in mail.text


def probe(mail: Mail) -> list[Finding]:
    failed = mail.headers.get("x-failed-recipients") or ""
    out = []
    for part in failed.split(","):
        a = clean_address(part)
        if a:
            # The reason is the provider rule's (rhost/googlegroups.py): this module only finds the parts.
            out.append(Finding(recipient=a, diagnostic=squash(mail.text, 500)))
    return out
