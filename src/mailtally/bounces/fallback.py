"""Last resort for bounces in no known format: read the generic text shape, but only from a sender
that looks like a mail system, so that ordinary mail never yields a guess."""

from __future__ import annotations

import re

from mailtally.bounces import reason
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_command, squash
from mailtally.bounces.textscan import complete, cut_original, scan

_QUOTED = re.compile(r"^>[ \t]{0,4}-{3,10}[ \t]{0,4}(?:the following address|transcript of session)", re.I | re.M)
_QUOTE = re.compile(r"^>[ \t]?", re.M)
_DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|mail ?administrator|mailmaster|daemon|\bndr\b", re.I)
_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|problem)|failure notice|"
    r"returned mail|mail delivery failed|could not be delivered|not delivered|non[- ]?delivery|"
    r"delivery report|rejected|mail system error|bounce|error|fail|returned|unzustellbar|non remis|"
    r"エラー|不達|返送|送信できません",
    re.I,
)


def looks_like_bounce(mail: Mail) -> bool:
    return bool(_DAEMON.search(mail.from_) or _SUBJECT.search(mail.subject))


def parse(mail: Mail) -> list[Finding]:
    if not looks_like_bounce(mail):
        return []
    report, _ = cut_original(mail.text)
    found = [f for f in scan(report) if f.diagnostic]
    if found:
        return found
    if _QUOTED.search(mail.text):
        # A bounce forwarded inline by a person: every line behind "> ". Read it unquoted.
        unquoted = _QUOTE.sub("", mail.text[:200000])
        report, _ = cut_original(unquoted)
        found = [f for f in scan(report) if f.diagnostic]
        if found:
            return found
    failed = mail.headers.get("X-Failed-Recipients")
    if failed:
        out = []
        for part in str(failed).split(","):
            a = clean_address(part)
            if a:
                out.append(complete(Finding(recipient=a), [report[-2000:]]))
        return out
    # A notice from a mail system that names no recipient but says why in words a reason knows
    # ("Message could not be delivered ... No valid recipients"): the recipient is the returned
    # original's To, which the engine fills in.
    text = squash(report, 2000)
    if _DAEMON.search(mail.from_) and _SUBJECT.search(mail.subject) and reason.by_text(text.lower()) is not None:
        return [complete(Finding(), [text])]
    return []


def enrich(mail: Mail, found: list[Finding]) -> None:
    """DSN fields borrow what the human-readable part adds: the error lines, the SMTP command."""
    if all(f.diagnostic and f.command for f in found):
        return
    # The report's scan and its command are worked out on first need only: most diagnostics name
    # their command themselves, and scanning the text costs more than the DSN reading did.
    report = ""
    by_rcpt: dict[str, Finding] | None = None
    for f in found:
        if not f.command:
            f.command = find_command(f.diagnostic)
        if f.command and f.diagnostic:
            continue
        if by_rcpt is None:
            report, _ = cut_original(mail.text)
            by_rcpt = {s.recipient.lower(): s for s in scan(report)}
        t = by_rcpt.get(f.recipient.lower())
        if not f.command:
            f.command = (t.command if t is not None else "") or (find_command(report) if len(found) == 1 else "")
        if f.diagnostic:
            continue
        if t is not None and t.diagnostic:
            f.diagnostic = t.diagnostic
            f.status = f.status or t.status
            f.reply_code = f.reply_code or t.reply_code
            f.command = f.command or t.command
