"""IBM (Lotus) Domino and Lotus Notes notices.

Domino: subject `DELIVERY FAILURE: ...`, text `Your message ... was not delivered to: <addresses>
because: <reason>`, often with a DSN part whose recipient may be a rewritten address.
Notes (older SMTP MTA): subject `Undeliverable message`, `------- Failure Reasons --------`, then
the reason line and the recipient, before `------- Returned Message --------`.
Both state well-known directory errors in their own words, which say the reason.
"""

from __future__ import annotations

import re

from mailtally.bounces import rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_addresses, find_reply_code, find_status, squash
from mailtally.vocab import Reason

_SUBJECT = re.compile(r"^(?:DELIVERY[ _]FAILURE:|Undeliverable message)")
_DOMINO = re.compile(
    r"was not delivered to:[ \t]*\n(.{0,4000}?)\n[ \t]*because:[ \t]*\n(.{0,4000}?)(?:\n[ \t]*\n|\Z)", re.S
)
_NOTES = re.compile(
    r"^-{3,10}[ \t]*Failure Reasons[ \t]*-{3,10}[ \t]*$(.{0,8000}?)(?:^-{3,10}[ \t]*Returned Message|\Z)",
    re.M | re.S,
)
OWN: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (
        Reason.USERUNKNOWN,
        (
            "not listed in domino directory",
            "not listed in public name & address book",
            "non répertorié dans l'annuaire domino",
            "domino ディレクトリには見つかりません",
            "ディレクトリのリストにありません",
        ),
    ),
    (Reason.FILTERED, ("cannot route mail to user",)),
    (Reason.SYSTEMERROR, ("several matches found in domino directory",)),
    (Reason.NETWORKERROR, ("message has exceeded maximum hop count",)),
)


def matches(mail: Mail) -> bool:
    return _SUBJECT.match(mail.subject) is not None


def own_reason(diagnostic: str) -> Reason | None:
    low = " ".join(diagnostic.lower().split())
    for r, phrases in OWN:
        if any(p in low for p in phrases):
            return r
    return None


def probe(mail: Mail) -> list[Finding]:
    text = mail.text[:60000]
    found: list[Finding] = []
    m = _DOMINO.search(text)
    if m is not None:
        diag = squash(m.group(2))
        for a in find_addresses(m.group(1)):
            found.append(Finding(recipient=a, diagnostic=diag))
    else:
        n = _NOTES.search(text)
        if n is None:
            return []
        reason_lines: list[str] = []
        for line in n.group(1).split("\n"):
            s = line.strip()
            if not s:
                continue
            a = clean_address(s) if "@" in s and " " not in s else ""
            if a:
                found.append(Finding(recipient=a, diagnostic=squash(" ".join(reason_lines))))
                reason_lines = []
            else:
                reason_lines.append(s)
    if not found:
        return []
    dsn = {f.recipient.lower(): f for f in rfc3464.parse(mail)}
    only = next(iter(dsn.values())) if len(dsn) == 1 and len(found) == 1 else None
    for f in found:
        d = dsn.get(f.recipient.lower()) or only
        if d is not None:
            f.status, f.remote_mta, f.reporting_mta, f.action = d.status, d.remote_mta, d.reporting_mta, d.action
            f.diagnostic = f.diagnostic or d.diagnostic
        f.status = f.status or find_status(f.diagnostic)
        f.reply_code = find_reply_code(f.diagnostic)
        f.reason = own_reason(f.diagnostic)
    return found
