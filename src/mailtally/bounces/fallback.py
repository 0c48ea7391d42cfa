"""Last resort for bounces in no known format: read the generic text shape, but only from a sender
that looks like a mail system, so that ordinary mail never yields a guess."""

from __future__ import annotations

import re

from mailtally.bounces import reason
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Headers, Mail, split_message
from mailtally.bounces.smtp import clean_address, find_addresses, find_command, squash
from mailtally.bounces.textscan import complete, cut_original, scan

_QUOTED = re.compile(r"^>[ \t]{0,4}-{3,10}[ \t]{0,4}(?:the following address|transcript of session)", re.I | re.M)
_QUOTE = re.compile(r"^>[ \t]?", re.M)
_DAEMON = re.compile(
    r"mailer-daemon|post[_.-]?master|mail delivery|mail ?administrator|mailmaster|daemon|\bndr\b", re.I
)
_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|problem)|failure notice|"
    r"returned mail|mail delivery failed|could not be delivered|not delivered|non[- ]?delivery|"
    r"delivery report|rejected|mail system error|bounce|error|fail|returned|unzustellbar|non remis|"
    r"エラー|不達|返送|送信できません",
    re.I,
)


def looks_like_bounce(mail: Mail) -> bool:
    return bool(_DAEMON.search(mail.from_) or _SUBJECT.search(mail.subject))


def _failed_recipients(mail: Mail) -> list[str]:
    """The addresses of an `X-Failed-Recipients:` header (Exim, Gmail and others write one)."""
    out: list[str] = []
    for value in mail.headers.get_all("X-Failed-Recipients"):
        for part in value.split(","):
            a = clean_address(part)
            if a and a not in out:
                out.append(a)
    return out


def _not_the_sender(mail: Mail, found: list[Finding], failed: list[str]) -> list[Finding]:
    """The scanned findings, less the notice's own addressee when someone else is named.

    A notice greets the sender it goes to ("kijitora@example.jp, hello"): that address names who
    is told, not who failed, when the text or an `X-Failed-Recipients:` header names another.
    """
    told = {a.lower() for a in find_addresses(mail.headers.get("To") or "")}
    if not told or not found:
        return found
    kept = [f for f in found if f.recipient.lower() not in told]
    return kept if len(kept) < len(found) and (kept or failed) else found


# Words that say a delivery failed, for a notice whose sender and subject do not (a carrier's
# "Subject: Mail" from no-reply@): with the failed message returned beside them, they are enough.
_FAILED_WORDS = re.compile(
    r"could not be delivered|undeliverable|delivery (?:has |to [^\n]{1,80} )?failed|(?:was|were) not delivered|"
    r"failed to deliver|unable to deliver|returned to sender|delivery failure",
    re.I,
)


def _original_recipients(mail: Mail) -> set[str]:
    """The To and Cc addresses of the returned original message (lower case); empty without one."""
    if mail.original is None:
        return set()
    headers = Headers(split_message(mail.original)[0])
    return {a.lower() for k in ("To", "Cc") for v in headers.get_all(k) for a in find_addresses(v)}


def _returned_failures(mail: Mail, report: str) -> list[Finding]:
    """A notice that returns the failed message and says, in words, that it could not be delivered
    to an address that message was sent to: a bounce, whoever signs it."""
    if _FAILED_WORDS.search(report[:4000]) is None:
        return []
    sent_to = _original_recipients(mail)
    if not sent_to:
        return []
    return [f for f in scan(report) if f.diagnostic and f.recipient.lower() in sent_to]


# A mailing list's refusal of a post, from the list's own address: the list is the recipient that
# failed. It refuses a sender that is not a member (reason/rejected.py has the words) or a message
# it has seen before, a loop (reason/systemerror.py).
_LIST_SENDER = re.compile(r"(?:^|[<\s])(?:owner-[^@\s<>]{1,64}|[^@\s<>]{1,64}-(?:admin|owner|request|bounces?))@", re.I)
_LIST_REFUSAL = re.compile(
    r"not (?:a )?member of (?:this|the) (?:mailing )?list|only (?:list )?(?:members|subscribers) (?:may|can|are "
    r"allowed to) post|not allowed to post|duplicated? message-id",
    re.I,
)
_ANGLED = re.compile(r"<([^\s<>@]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>")


def _list_refusal(mail: Mail) -> list[Finding]:
    """A list manager's "you are not a member of this mailing list <list@host>" notice, or its
    "Duplicated Message-ID in <list@host>" (the address named in the sentence is the list's)."""
    if _LIST_SENDER.search(mail.from_) is None:
        return []
    text = mail.text[:4000]
    m = _LIST_REFUSAL.search(text)
    if m is None:
        return []
    told = {a.lower() for a in find_addresses(mail.headers.get("To") or "")}
    line_end = text.find("\n\n", m.end())
    for a in _ANGLED.findall(text[m.start() : line_end if line_end >= 0 else len(text)]):
        rcpt = clean_address(a)
        if rcpt and rcpt.lower() not in told:
            return [Finding(recipient=rcpt, action="failed", diagnostic=squash(text[: line_end], 500))]
    return []


# A remote server's failure reply that names the address it refuses, anywhere in a line of a session
# log ("Sat 10:00:00: <-- 550 5.1.1 <a@b>... User unknown"). Read only when nothing else names a
# recipient, and never for the sender's own addresses (a reply can refuse the sender).
_REPLY_NAMING = re.compile(
    r"(?<![\d.])[45][0-7]\d[ -](?:[45]\.\d{1,3}\.\d{1,3}[ \t]+)?<([^\s<>@]{1,128}@[A-Za-z0-9][A-Za-z0-9.-]{0,253})>"
    r"(?:\.\.\.|:)[ \t]*(.{1,400})$",
    re.M,
)


def _replies_naming(mail: Mail, report: str) -> list[Finding]:
    senders = {a.lower() for k in ("To", "From") for a in find_addresses(mail.headers.get(k) or "")}
    out: list[Finding] = []
    for m in _REPLY_NAMING.finditer(report[:20000]):
        a = clean_address(m.group(1))
        if a and a.lower() not in senders and "sender" not in m.group(2).lower() \
                and all(f.recipient.lower() != a.lower() for f in out):
            out.append(complete(Finding(recipient=a), [m.group(0)]))
    return out


def parse(mail: Mail) -> list[Finding]:
    if not looks_like_bounce(mail):
        returned = _returned_failures(mail, cut_original(mail.text)[0]) if mail.original is not None else []
        return returned or _list_refusal(mail)
    report, _ = cut_original(mail.text)
    failed = _failed_recipients(mail)
    found = _not_the_sender(mail, [f for f in scan(report) if f.diagnostic], failed)
    if found:
        return found
    if _QUOTED.search(mail.text):
        # A bounce forwarded inline by a person: every line behind "> ". Read it unquoted.
        unquoted = _QUOTE.sub("", mail.text[:200000])
        report, _ = cut_original(unquoted)
        found = [f for f in scan(report) if f.diagnostic]
        if found:
            return found
    if failed:
        return [complete(Finding(recipient=a), [report[-2000:]]) for a in failed]
    found = _replies_naming(mail, report)
    if found:
        return found
    # A notice from a mail system that names no recipient but says why in words a reason knows
    # ("Message could not be delivered ... No valid recipients"): the recipient is the returned
    # original's To, which the engine fills in.
    text = squash(report, 2000)
    if _DAEMON.search(mail.from_) and _SUBJECT.search(mail.subject) and reason.by_text(text.lower()) is not None:
        return [complete(Finding(), [text])]
    if mail.dsn.strip() and mail.original is not None:
        # A delivery-status part with no recipient fields at all ("--- Delivery report unavailable
        # ---"): the report says a delivery failed and not why. The recipient is the returned
        # original's To (the engine fills it in); the reason stays undefined.
        return [Finding(action="failed")]
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
