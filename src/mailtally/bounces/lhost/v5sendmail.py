"""Sendmail's transcript without DSN fields (V5 sendmail, and sendmail-like MTAs): the SMTP
dialogue (`>>> RCPT To:<a@b>`, `<<< 550 ...`) comes before the `550 <a@b>... User unknown` line
that names the recipient, so the remote server's words belong to the recipient that follows."""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status, squash
from mailtally.bounces.textscan import cut_original

_TRANSCRIPT = re.compile(r"^[ \t]*-{3,10}[ \t]*Transcript of session follows", re.I | re.M)
_RCPT = re.compile(
    r"^[ \t]*([245]\d\d)[ -](?:[245]\.\d{1,3}\.\d{1,3}[ \t]+)?<?([^\s<>@]{1,128}@[^\s<>]{1,255}?)>?"
    r"\.\.\.[ \t]*(.{0,400})$"
)
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
            continue
        a = clean_address(r.group(2))
        if not a:
            continue
        diag = squash(" ".join(replies)) if replies else squash(r.group(3))
        f = Finding(recipient=a, diagnostic=diag, command=command if command != "QUIT" else "")
        f.reply_code = find_reply_code(diag) or r.group(1)
        f.status = find_status(diag) or find_status(line)
        out.append(f)
        command, replies = "", []
    return out
