"""The generic RFC 3464 layer: delivery-status fields, wherever they appear in the message.

Works on text so that a DSN labelled text/plain, or pasted inline in the body, reads the same
as a proper message/delivery-status part.
"""

from __future__ import annotations

import re

from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Mail
from mailtally.bounces.smtp import clean_address, find_reply_code, find_status, squash

_FIELD = re.compile(
    r"^[ \t]*(final-recipient|original-recipient|x-actual-recipient|action|status|diagnostic-code|"
    r"remote-mta|reporting-mta|received-from-mta|arrival-date|last-attempt-date|x-postfix-sender|"
    r"x-original-message-id|will-retry-until)[ \t]*:[ \t]*(.*)$",
    re.I | re.M,
)
_CONT = re.compile(r"^[ \t]+\S")
_HAS_DSN = re.compile(r"^[ \t]*(?:final|original)-recipient[ \t]*:", re.I | re.M)


def has_dsn_fields(text: str) -> bool:
    return bool(text) and _HAS_DSN.search(text) is not None


def _typed(value: str) -> tuple[str, str]:
    """`smtp; 550 ...` to ("SMTP", "550 ..."); values without a type keep an empty type."""
    if ";" in value:
        t, _, rest = value.partition(";")
        t = t.strip()
        if t and " " not in t and len(t) < 20:
            return t.upper(), rest.strip()
    return "", value.strip()


_RECIPIENT_FIELDS = ("final-recipient", "original-recipient", "x-actual-recipient")


def _as_written(value: str) -> str:
    """An address the DSN names that is no valid address (`user@#example.net`): often the very
    reason it bounced, so it is reported as written, when it has a local part and a dotted domain."""
    v = value.strip().strip("<>").strip()
    local, at, domain = v.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>@,;\"" for c in local + domain):
        return ""
    return v if len(v) <= 254 else ""


def read_fields(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """Per-message fields and one dict of fields per recipient, in order of appearance."""
    message: dict[str, str] = {}
    recipients: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    lines = text.split("\n")
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        i += 1
        if ":" not in line:
            continue
        m = _FIELD.match(line)
        if m is None:
            continue
        name = m.group(1).lower()
        value = m.group(2)
        # Continuation lines: folded fields; Diagnostic-Code often runs on for several lines.
        while i < n and _CONT.match(lines[i]) and not _FIELD.match(lines[i]):
            value += " " + lines[i].strip()
            i += 1
        value = value.strip()
        if name in ("final-recipient", "original-recipient", "x-actual-recipient"):
            if name == "final-recipient":
                if current is None or "final-recipient" in current:
                    current = {}
                    recipients.append(current)
            elif current is None or name in current or (
                "final-recipient" in current and "action" in current
            ):
                current = {}
                recipients.append(current)
            current.setdefault(name, value)
            continue
        if current is None:
            message.setdefault(name, value)
        else:
            current.setdefault(name, value)
    return message, recipients


def findings_from_fields(text: str) -> list[Finding]:
    """Findings from every recipient block of the DSN text that names a recipient."""
    message, blocks = read_fields(text)
    out: list[Finding] = []
    for b in blocks:
        rcpt = ""
        for key in _RECIPIENT_FIELDS:
            if key in b:
                rcpt = clean_address(_typed(b[key])[1] or b[key]) or _as_written(_typed(b[key])[1])
                if rcpt:
                    break
        if not rcpt:
            continue
        f = Finding(recipient=rcpt)
        orig = clean_address(_typed(b.get("original-recipient", ""))[1])
        if orig and orig.lower() != rcpt.lower():
            f.original_recipient = orig
        f.action = b.get("action", "").split()[0].lower() if b.get("action", "").split() else ""
        f.status = find_status(b.get("status", ""))
        dtype, diag = _typed(b.get("diagnostic-code", ""))
        if f.status.endswith(".0.0") and diag:
            # A class-only Status beside a remote answer that names its own code: the answer's is surer.
            named = find_status(diag)
            if named and named[0] == f.status[0] and not named.endswith(".0.0"):
                f.status = named
        if not dtype and any(_typed(b.get(k, ""))[1].lstrip('"').startswith("|") for k in _RECIPIENT_FIELDS):
            dtype = "X-UNIX"  # delivered to a program ("|procmail ..."): its failure is a mailer's, as X-Unix says
        f.diagnostic_type = dtype
        f.diagnostic = squash(diag)
        f.reply_code = find_reply_code(diag[:8]) if diag else ""
        if not f.status and diag:
            f.status = find_status(diag)
        f.remote_mta = _typed(b.get("remote-mta", ""))[1]
        f.reporting_mta = _typed(b.get("reporting-mta", message.get("reporting-mta", "")))[1]
        f.date = b.get("last-attempt-date") or b.get("arrival-date") or message.get("arrival-date", "")
        out.append(f)
    return out


def parse(mail: Mail) -> list[Finding]:
    """Findings from the message/delivery-status part, or from DSN fields found in the body."""
    if mail.dsn and has_dsn_fields(mail.dsn):
        found = findings_from_fields(mail.dsn)
        if found:
            return found
    if has_dsn_fields(mail.text):
        return findings_from_fields(mail.text)
    return []
