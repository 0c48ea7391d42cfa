"""fml mailing-list manager (X-MLServer: fml): it refuses posts from non-members and stops loops;
the list address it speaks for is the first `<a@b>` of its notice."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, squash
from mailtally.vocab import Reason

_ANGLE = re.compile(r"<([^\s<>@]{1,128}@[A-Za-z0-9.-]{1,255})>")
_REFUSED = re.compile(r"not (?:a )?member|only members|members only|not allowed to post|rejected", re.I)
_LOOP = re.compile(r"loop|duplicated", re.I)


def matches(mail: Mail) -> bool:
    return (mail.headers.get("x-mlserver") or "").lower().startswith("fml")


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:5000]
    m = _ANGLE.search(text)
    a = clean_address(m.group(1)) if m else ""
    if not a:
        return []
    probe_text = mail.subject + " " + text[:1000]
    if _LOOP.search(mail.subject):
        reason = Reason.SYSTEMERROR  # the list saw its own message again: a mail loop
    elif _REFUSED.search(probe_text):
        reason = Reason.REJECTED  # the list refused the sender, not the address
    else:
        return []
    return [Finding(recipient=a, reason=reason, diagnostic=squash(text.split("\n\n", 1)[0], 500))]
