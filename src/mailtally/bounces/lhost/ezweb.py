"""au EZweb (ezweb.ne.jp, au.com): `Mail System Error - Returned Mail` from Postmaster, a notice in
Japanese then English (`The user(s) account is disabled.`, `Your message was not delivered within
0 days and 1 hours.`, `Each of the following recipients was rejected by a remote mail server.`),
the recipients as `<a@b>` lines, sometimes with a transcript (`>>> RCPT TO:<a@b>`, `<<< 550 ...`)
or a delivery-status part. The English notice says the reason; a transcript's remote answer, when
there is one, says it better. A header `X-SPASIGN: NG` marks mail stopped by the recipient's filter.
"""

from __future__ import annotations

import re

from mailtally.bounces import fallback, rfc3464
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import squash
from mailtally.bounces.textscan import cut_original
from mailtally.vocab import Reason

_SUBJECT = "Mail System Error - Returned Mail"
_MARKERS = re.compile(r"^[ \t]*(?:-{50}|Content-Type:[ \t]*message/rfc822)", re.I | re.M)
_TRANSCRIPT = re.compile(r"^[ \t]*>>>[ \t]*\S", re.M)
# The notice's own sentences, and what each says.
_NOTICES: tuple[tuple[Reason, tuple[str, ...]], ...] = (
    (Reason.MAILBOXFULL, ("The user(s) account is temporarily over quota",)),
    (Reason.SUSPEND, ("The user(s) account is disabled", "The user(s) account is temporarily limited")),
    (Reason.EXPIRED, ("Your message was not delivered within ",)),
)


def matches(mail: Mail) -> bool:
    points = int(mail.subject == _SUBJECT)
    sender = mail.from_.lower()
    points += "postmaster@ezweb.ne.jp" in sender or "postmaster@au.com" in sender
    if points < 2:
        mid = (mail.headers.get("Message-ID") or "").rstrip()
        points += mid.endswith((".ezweb.ne.jp>", ".au.com>"))
    return points >= 2


def _english(report: str) -> str:
    """The notice without its Japanese lines and without the recipient lines."""
    keep = [ln.strip() for ln in report.split("\n") if ln.strip() and ln.isascii() and "@" not in ln]
    return squash(" ".join(keep))


def probe(mail: Mail) -> list[Finding]:
    found = rfc3464.parse(mail)
    if found:
        fallback.enrich(mail, found)
    else:
        found = fallback.parse(mail)
    if not found:
        return []
    report, _ = cut_original(mail.text[:60000], _MARKERS)
    filtered = (mail.headers.get("X-SPASIGN") or "").strip().upper() == "NG"
    transcript = _TRANSCRIPT.search(report) is not None
    said: Reason | None = None
    for r, phrases in _NOTICES:
        if any(p in report for p in phrases):
            said = r
            break
    notice = _english(report)
    for f in found:
        if filtered:
            f.reason = Reason.FILTERED
        elif transcript:
            continue  # the remote server's own answer decides
        elif said is not None:
            f.reason = said
        else:
            continue
        if notice and (not f.diagnostic or not f.diagnostic.isascii() or not f.reply_code):
            f.diagnostic = notice
    return found
