"""Orchestration: which reader speaks for a message, then one record per recipient."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from mailtally.bounces import arf, fallback, lhost, reason, rfc3464, rfc3834
from mailtally.bounces.finding import Finding
from mailtally.bounces.message import Headers, Mail, decode_header_value
from mailtally.bounces.record import BounceRecord
from mailtally.bounces.smtp import find_address, squash
from mailtally.bounces.textscan import complete, cut_original
from mailtally.vocab import Reason, bounce_code_for, is_hard

MAX_NESTING = 3
_HEADER_START = re.compile(r"^[ \t]*[A-Za-z][A-Za-z0-9-]{0,60}:[ \t]", re.M)


def parse(raw: bytes, *, delivered: bool = False) -> list[BounceRecord]:
    """Records for every failed, auto-replied or complained-about recipient; [] for other mail.

    With `delivered=True`, also one record (reason `delivered`, no bounce code) per recipient a
    delivery report says was delivered; by default such a report yields nothing, so that
    ingestion never sees it. Never raises: a message this engine cannot read is, for its
    callers, not a bounce.
    """
    try:
        if not isinstance(raw, bytes | bytearray | memoryview):
            return []
        return _parse(bytes(raw), 0, delivered)
    except (RecursionError, MemoryError):
        return []
    except Exception:
        return []


def _parse(raw: bytes, depth: int, delivered: bool) -> list[BounceRecord]:
    mail = Mail(raw)
    findings = _findings(mail)
    if not findings and depth < MAX_NESTING and mail.nested and fallback.looks_like_bounce(mail):
        # A bounce of a bounce, or a bounce forwarded as an attachment: read the inner one.
        for inner in mail.nested[:2]:
            records = _parse(inner.encode("latin-1", "replace"), depth + 1, delivered)
            if records:
                return records
        return []
    if not findings:
        return []
    return _records(mail, findings, delivered)


def _findings(mail: Mail) -> list[Finding]:
    if arf.is_arf(mail):
        return arf.parse(mail)
    for probe in lhost.probes_for(mail):
        found = probe(mail)
        if found:
            return found
    found = rfc3464.parse(mail)
    if found:
        fallback.enrich(mail, found)
        return found
    found = rfc3834.parse(mail)
    if found:
        return found
    return fallback.parse(mail)


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per recipient: repeats (a DSN and its text, two attempts) fill each other's gaps."""
    by_rcpt: dict[str, Finding] = {}
    out: list[Finding] = []
    for f in findings:
        key = f.recipient.lower()
        prev = by_rcpt.get(key)
        if prev is None:
            by_rcpt[key] = f
            out.append(f)
            continue
        for name in ("status", "reply_code", "diagnostic", "command", "remote_mta", "reporting_mta", "action", "date",
                     "original_recipient"):
            if not getattr(prev, name) and getattr(f, name):
                setattr(prev, name, getattr(f, name))
    return out


def _isodate(value: str) -> datetime | None:
    """ISO 8601, as JSON notifications (Amazon SES) write their times: `2024-01-02T09:59:03.512Z`."""
    if not (value[:4].isdigit() and value[4:5] == "-"):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# Cached: every recipient of a message usually carries the same date, and parsing one costs ~6 µs.
@lru_cache(maxsize=64)
def _timestamp(value: str) -> datetime | None:
    if not value:
        return None
    value = value.split(";")[-1].strip()
    dt: datetime | None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        dt = _isodate(value)
    if dt is None:
        return None
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _original_headers(mail: Mail) -> Headers | None:
    text = mail.original
    if text is None:
        # The part after the marker ("" when there is none); the readers often cut the same text already.
        text = cut_original(mail.text)[1]
        if not text:
            return None
    m2 = _HEADER_START.search(text[:4000])
    if m2 is None:
        return None
    block = text[m2.start() :].split("\n\n", 1)[0][:64000]
    lines = [ln.strip() if not ln[:1].isspace() else ln for ln in block.split("\n")]
    return Headers("\n".join(lines))


def _records(mail: Mail, findings: list[Finding], delivered: bool) -> list[BounceRecord]:
    orig = _original_headers(mail)
    o_id = o_to = o_from = o_subject = ""
    o_x: dict[str, str] = {}
    if orig is not None:
        o_id = " ".join((orig.get("Message-ID") or "").split())
        o_to = decode_header_value(orig.get("To"))
        o_from = decode_header_value(orig.get("From"))
        o_subject = decode_header_value(orig.get("Subject"))
        for k, v in orig.items:
            if k[:2].lower() == "x-" and k not in o_x:
                o_x[k] = " ".join(str(v).split())
    bounce_date = mail.headers.get("Date", "") or ""
    out: list[BounceRecord] = []
    for f in _merge(findings):
        if not f.recipient and f.reason is not Reason.FEEDBACK:
            if f.reason is Reason.VACATION:
                continue
            f.recipient = find_address(o_to)
            if not f.recipient:
                continue
        if not f.diagnostic and f.reason is None:
            complete(f, [])
        r = reason.decide(f)
        if r is Reason.DELIVERED and not delivered:
            continue
        code = bounce_code_for(r)
        out.append(
            BounceRecord(
                recipient=f.recipient,
                reason=r,
                bounce_code=code,
                hard_bounce=is_hard(code),
                status=f.status,
                reply_code=f.reply_code,
                diagnostic=squash(f.diagnostic),
                command=f.command,
                remote_mta=f.remote_mta,
                reporting_mta=f.reporting_mta,
                action=f.action,
                timestamp=_timestamp(f.date or bounce_date),
                feedback_type=f.feedback_type,
                original_message_id=o_id,
                original_to=o_to,
                original_from=o_from,
                original_subject=o_subject,
                original_headers=o_x,
                original_recipient=f.original_recipient,
            )
        )
    return out
