"""Sendmail's transcript without DSN fields (V5 sendmail, and sendmail-like MTAs): the SMTP
dialogue (`>>> RCPT To:<a@b>`, `<<< 550 ...`) comes before the `550 <a@b>... User unknown` line
that names the recipient, so the remote server's words belong to the recipient that follows."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.rfc3464 import findings_from_fields, has_dsn_fields
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status, squash
from mailtally.bounces.textscan import cut_original
from mailtally.vocab import Reason

_TRANSCRIPT = re.compile(r"^[ \t]*-{3,10}[ \t]*Transcript of session follows", re.I | re.M)
_RCPT = re.compile(
    r"^[ \t]*([245]\d\d)[ -](?:[245]\.\d{1,3}\.\d{1,3}[ \t]+)?<?([^\s<>@]{1,128}@[^\s<>]{1,255}?)>?"
    r"\.\.\.[ \t]*(.{0,400})$"
)
# "421 example.com (smtp)... Deferred: Connection timed out": the host failed, for all its recipients.
_HOST = re.compile(
    r"^[ \t]*([245]\d\d)[ -]([A-Za-z0-9][A-Za-z0-9.-]{0,253}) \([a-z0-9-]{1,20}\)\.\.\.[ \t]*(.{1,400})$"
)
# sendmail's subject when a message stayed in its queue past the timeout.
_TIMEOUT = re.compile(r"Cannot send message (?:for|within) \d{1,4} (?:days?|hours?)", re.I)
# '554 "|/usr/bin/procmail ..."... Service unavailable': delivery to a program (a pipe) failed.
_PIPE = re.compile(r'^[ \t]*([245]\d\d)[ -]"?\|[^\n]{1,300}?"?\.\.\.[ \t]*(.{0,400})$')
# A local mailer's own line in the transcript ("mail.local: unknown user: kijitora").
_NOTE = re.compile(r"^[ \t]*[a-z][a-z0-9._-]{1,30}:[ \t]+\S.{0,300}$", re.I)
_SENT = re.compile(r"^[ \t]*>>>[ \t]*([A-Za-z]{4})\b")
_GOT = re.compile(r"^[ \t]*<<<[ \t]*(.{1,400})$")


def matches(mail: Mail) -> bool:
    return not mail.dsn and "Transcript of session follows" in mail.text


def probe(mail: Mail) -> list[Finding]:
    m = _TRANSCRIPT.search(mail.text)
    if m is None:
        return []
    report, _ = cut_original(mail.text[m.end() :])
    out: list[Finding] = []
    host: Finding | None = None
    notes: list[str] = []
    command = ""
    replies: list[str] = []
    for line in report.split("\n")[:400]:
        if line.lstrip().lower().startswith("while talking to"):
            command, replies = "", []
            continue
        s = _SENT.match(line)
        if s:
            command, replies = s.group(1).upper(), []
            continue
        g = _GOT.match(line)
        if g:
            replies.append(g.group(1))
            continue
        r = _RCPT.match(line)
        if r is None:
            h = _HOST.match(line) if host is None else None
            if h is not None:
                host = Finding(diagnostic=squash(h.group(3)), reply_code=h.group(1))
                continue
            p = _PIPE.match(line)
            if p is not None:
                pipe = Finding(diagnostic=squash(" ".join([*notes, p.group(2)])), reply_code=p.group(1))
                pipe.reason = Reason.MAILERERROR
                out.append(pipe)
                notes = []
            elif not replies and "@" not in line and _NOTE.match(line) and len(notes) < 5:
                notes.append(line.strip())
            continue
        a = clean_address(r.group(2))
        if not a:
            continue
        diag = squash(" ".join(replies)) if replies else squash(" ".join([*notes, r.group(3)]))
        f = Finding(recipient=a, diagnostic=diag, command=command if command != "QUIT" else "")
        f.reply_code = find_reply_code(diag) or r.group(1)
        f.status = find_status(diag) or find_status(line)
        out.append(f)
        command, replies, notes = "", [], []
    if has_dsn_fields(mail.text):
        _with_fields(out, findings_from_fields(mail.text))
    if not out and host is not None:
        # No recipient named: the engine takes the original message's recipient.
        if _TIMEOUT.search(mail.subject):
            host.reason = Reason.EXPIRED
        out.append(host)
    return out


def _with_fields(out: list[Finding], fields: list[Finding]) -> None:
    """Delivery-status fields pasted in the text: their status and recipient fill the transcript's gaps."""
    by_rcpt = {f.recipient.lower(): f for f in fields}
    spare = [f for f in fields if all(o.recipient.lower() != f.recipient.lower() for o in out)]
    for o in out:
        d = by_rcpt.get(o.recipient.lower()) if o.recipient else (spare.pop(0) if spare else None)
        if d is None:
            continue
        o.recipient = o.recipient or d.recipient
        o.status = o.status or d.status
        o.action = o.action or d.action
        o.reporting_mta = o.reporting_mta or d.reporting_mta
        o.date = o.date or d.date
