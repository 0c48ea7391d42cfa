"""Raw bounce messages into bounce (and complaint) events of the sends they belong to; and
messages to List-Unsubscribe's ``mailto:`` address (``unsubscribe+<token>@...``) into opt-outs.

The send is found by, in order: a signed VERP token in the address the bounce was sent to;
a token in the returned original's ``X-Mailtally-Id`` header or Message-ID; the
recipient's most recent send. A bounce that matches nothing is kept as unmatched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import getaddresses, parsedate_to_datetime

from sqlalchemy import Connection

from ..bounces import BounceRecord, parse
from ..bounces.message import no_surrogates
from ..events import Event
from ..store import corrections, matching, raw_messages
from ..store.db import now_ms
from ..store.writer import write_events
from ..timefmt import datetime_ms, in_range, iso_ms
from ..verp import TOKEN_HEADER, SendRef, has_token, read_token, unsubscribe_ref
from ..vocab import EventType, OptoutSource, Reason
from .tracking import optout_event

# Headers in which a bounce names the address it was delivered to (the VERP address).
DELIVERY_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass(slots=True)
class Outcome:
    record: BounceRecord
    matched_by: str | None = None  # "verp", "header", "message_id", "recent_send"
    activity_id: str | None = None
    contact_id: str | None = None
    event_type: EventType | None = None
    occurred_at: int | None = None  # the time recorded (the record keeps the time the message states)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """A message to List-Unsubscribe's mailto: address, and the opt-out it made."""

    activity_id: str
    contact_id: str
    occurred_at: int
    recorded: bool  # False: this recipient had opted out of this activity already

    def to_dict(self) -> dict[str, object]:
        return {"activity_id": self.activity_id, "contact_id": self.contact_id,
                "occurred_at": iso_ms(self.occurred_at), "recorded": self.recorded}


@dataclass(slots=True)
class Ingested:
    message_key: str
    raw_message_id: int = 0  # the stored message (``store.raw_messages``)
    outcomes: list[Outcome] = field(default_factory=list)
    recorded: int = 0
    duplicates: int = 0
    unmatched_new: int = 0
    message_date: str | None = None  # the Date header as the message wrote it
    unsubscribe: Unsubscribe | None = None  # sent to an unsubscribe+<token> address: not a bounce


def _text(value: str, limit: int) -> str | None:
    """Stored form of text read from a message: bounded, without NULs or lone surrogates
    (binary junk happens)."""
    return no_surrogates(value.replace("\x00", ""))[:limit] or None


def message_key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:32]


def _event_type(record: BounceRecord) -> EventType:
    if record.reason is Reason.FEEDBACK:
        return EventType.OPTOUT if record.feedback_type.lower() == "opt-out" else EventType.ABUSE
    return EventType.BOUNCE


_HEADER_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+):")  # the email package's: printable, no colon or space
_WANTED = frozenset(h.lower() for h in (*DELIVERY_HEADERS, "Date"))


def header_fields(raw: bytes, wanted: frozenset[str] = _WANTED, limit: int = 256 * 1024) -> dict[str, list[str]]:
    """The values of the ``wanted`` (lower-case) header fields, as ``email``'s compat32 parser
    reads them (``get_all``), from the header lines alone: the parser, given the whole
    message, splits its body into lines too, and builds every field; this reads to the first
    empty line (or the first line that is no header), at most ``limit`` bytes."""
    out: dict[str, list[str]] = {}
    current: list[bytes] | None = None
    lines = raw[:limit].splitlines(keepends=True)
    if lines and lines[0].startswith(b"From "):  # an mbox's envelope line
        lines = lines[1:]
    name = ""
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            out.setdefault(name, []).append(_field_value(current))
            current = None
        m = _HEADER_NAME.match(line)
        if m is None:  # an empty line ends the header; any other line does too (a defect)
            break
        name = m[1].decode("ascii").lower()
        if name in wanted:
            current = [line[m.end():]]
    if current is not None:
        out.setdefault(name, []).append(_field_value(current))
    return out


def _field_value(lines: list[bytes]) -> str:
    # compat32: the first line's leading blanks dropped, continuation lines kept as they are,
    # the last line end removed; bytes that are not ASCII kept as surrogates.
    text = b"".join(lines).decode("ascii", "surrogateescape")
    return text.lstrip(" \t").rstrip("\r\n")


def _bounce_headers(raw: bytes) -> tuple[list[str], int | None, str | None]:
    fields = header_fields(raw)
    # Only an address holding a token can name a send (``verp.read_token``): the others are not
    # parsed at all.
    addresses = [addr for h in DELIVERY_HEADERS for value in fields.get(h.lower(), ()) if has_token(value)
                 for _, addr in getaddresses([value]) if addr]
    when = None
    dates = fields.get("date")
    date = dates[0] if dates else None
    try:
        if date:
            dt = parsedate_to_datetime(date)
            when = datetime_ms(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    return addresses, when, _text(" ".join(date.split()), 200) if date else None


SKEW_MS = 86_400_000  # how far ahead of its receipt a message's own date may be


def event_time(record: BounceRecord, date: int | None, received: int) -> int:
    """When the bounce happened: the time the message states, or the time of receipt when it
    states none, one outside the time range, or one more than a day after its own receipt (a
    message's dates are whatever its sender wrote). The record keeps the stated time."""
    at = datetime_ms(record.timestamp) if record.timestamp else date
    if at is None or not in_range(at) or at > received + SKEW_MS:
        return received
    return at


def ingest_message(
    conn: Connection, account: int, secret: bytes, raw: bytes, envelope_to: str | None = None, *,
    source: str = "api", keep_bytes: int = raw_messages.MAX_STORED_BYTES,
) -> Ingested:
    """Store, parse and record one message inside the caller's transaction (`ingest_messages`)."""
    return ingest_messages(conn, account, secret, [(raw, envelope_to)], source=source, keep_bytes=keep_bytes)[0]


@dataclass(slots=True)
class _Read:
    """What a message says, read before anything is looked up (pure)."""

    result: Ingested
    records: list[BounceRecord]  # those to record
    date: int | None
    verp: SendRef | None = None
    optout: SendRef | None = None
    n_records: int = 0  # how many the message has (a VERP address names one recipient)
    received: int = 0


def _read(secret: bytes, account: int, raw: bytes, envelope_to: str | None) -> _Read:
    result = Ingested(message_key(raw))
    addresses, date, result.message_date = _bounce_headers(raw)
    if envelope_to:
        addresses.insert(0, envelope_to)
    # Sent to List-Unsubscribe's mailto: address: an opt-out, whatever the message says.
    optout = next((ref for a in addresses if (ref := unsubscribe_ref(secret, a)) and ref.account_id == account), None)
    if optout is not None:
        return _Read(result, [], date, optout=optout)
    records = parse(raw)
    verp = next((ref for a in addresses if (ref := read_token(secret, a)) and ref.account_id == account),
                None) if records else None
    return _Read(result, records, date, verp, n_records=len(records))


def ingest_messages(
    conn: Connection, account: int, secret: bytes, messages: Sequence[tuple[bytes, str | None]], *,
    source: str = "api", keep_bytes: int = raw_messages.MAX_STORED_BYTES,
) -> list[Ingested]:
    """Store, parse and record ``(raw, envelope_to)`` messages inside the caller's transaction.

    Set-based: the raw messages go in with one look-up and one ``executemany``, the sends of the
    whole group are found in a few statements, and all their events go through one
    ``write_events`` call; so a group costs a few statements, not a dozen per message. Each raw
    message is kept (``store.raw_messages``, at most ``keep_bytes`` of it) whatever it turns
    out to be, so a later engine can re-read it. Re-ingesting changes nothing.
    """
    read = [_read(secret, account, raw, envelope_to) for raw, envelope_to in messages]
    kept = raw_messages.keep_many(conn, account, [(raw, envelope_to, len(r.records)) for (raw, envelope_to), r
                                                  in zip(messages, read, strict=True)], source=source, cap=keep_bytes)
    received = now_ms()
    for r, k in zip(read, kept, strict=True):
        r.result.raw_message_id, r.received = k.id, received
        if r.optout is not None:  # rare: one at a time
            _unsubscribe(conn, account, r.optout, r.result, k.id, r.date, received)
    _record(conn, account, secret, read)
    return [r.result for r in read]


def _record(conn: Connection, account: int, secret: bytes, read: Sequence[_Read]) -> None:
    """The events of the messages' records for the sends they belong to, through one
    ``write_events``; those that match no send are kept as unmatched."""
    sends = _find_sends(conn, account, secret, read)
    events: list[Event] = []
    owners: list[tuple[_Read, raw_messages.Link]] = []  # each event's message, and its link
    unmatched: list[tuple[_Read, dict[str, object]]] = []
    for r, found_sends in zip(read, sends, strict=True):
        result = r.result
        for record, found in zip(r.records, found_sends, strict=True):
            outcome = Outcome(record, event_type=_event_type(record))
            result.outcomes.append(outcome)
            if found is None:
                unmatched.append((r, {
                    "message_key": result.message_key, "recipient": _text(record.recipient.lower(), 320) or "",
                    "received_at": r.received, "reason": record.reason.value,
                    "bounce_code": record.bounce_code.value if record.bounce_code else None,
                    "dsn_status": _text(record.status, 16), "reply_code": _text(record.reply_code, 8),
                    "diagnostic": _text(record.diagnostic, 4000), "remote_mta": _text(record.remote_mta, 255),
                    "original_message_id": _text(record.original_message_id, 998),
                    "original_subject": _text(record.original_subject, 998),
                    "raw_message_id": result.raw_message_id,
                }))
                continue
            how, send = found
            outcome.matched_by, outcome.activity_id, outcome.contact_id = how, send.activity_id, send.contact_id
            at = outcome.occurred_at = event_time(record, r.date, r.received)
            key = "b" + hashlib.blake2b(f"{result.message_key}|{record.recipient.lower()}".encode(),
                                        digest_size=20).hexdigest()
            bounce = outcome.event_type is EventType.BOUNCE
            ev = Event(
                outcome.event_type or EventType.BOUNCE, send.activity_id, at, send.contact_id,
                reason=record.reason if bounce else None,
                bounce_code=record.bounce_code if bounce else None,
                hard=record.hard_bounce if bounce else None,
                dsn_status=_text(record.status, 16), reply_code=_text(record.reply_code, 8),
                diagnostic=_text(record.diagnostic, 4000), remote_mta=_text(record.remote_mta, 255),
                optout_source="Feedback loop" if outcome.event_type is EventType.OPTOUT else None,
                idempotency_key=key,
            )
            events.append(ev)
            owners.append((r, raw_messages.Link(send.activity_num, ev.idem(), ev.type.value, at, send.contact_num,
                                                send.email)))
    for (r, _), stored in zip(unmatched, matching.keep_unmatched_many(conn, account, [v for _, v in unmatched]),
                              strict=True):
        if stored:
            r.result.unmatched_new += 1
        else:
            r.result.duplicates += 1
    if events:
        written = write_events(conn, account, events)
        accepted = {x.batch_index for x in written.new_events}
        for n, (r, _) in enumerate(owners):
            if n in accepted:
                r.result.recorded += 1
            else:
                r.result.duplicates += 1
        raw_messages.link_many(conn, account, [(r.result.raw_message_id, link) for r, link in owners])


_Send = matching.SendRow


def _find_sends(conn: Connection, account: int, secret: bytes,
                read: Sequence[_Read]) -> list[list[tuple[str, _Send] | None]]:
    """The send each record of a group of messages belongs to, looked up together: the sends
    their tokens name in one go, then the remaining recipients' most recent sends in another."""
    tokens: dict[str, SendRef | None] = {}

    def token(text: str | None) -> SendRef | None:
        if not text:
            return None
        if text not in tokens:
            ref = read_token(secret, text)
            tokens[text] = ref if ref is not None and ref.account_id == account else None
        return tokens[text]

    quoted = [[(how, token(text)) for how, text in _quoted(record)] for r in read for record in r.records]
    pairs = {(r.verp.activity_num, r.verp.contact_num) for r in read if r.verp is not None}
    pairs.update((ref.activity_num, ref.contact_num) for refs in quoted for _, ref in refs if ref is not None)
    numbered = {k: _Send(a, c, k[0], k[1], e)
                for k, (a, c, e) in matching.sends_by_numbers(conn, account, pairs).items()} if pairs else {}
    found: list[list[tuple[str, _Send] | None]] = []
    left: list[tuple[list[tuple[str, _Send] | None], int, str]] = []
    n = 0
    for r in read:
        mine: list[tuple[str, _Send] | None] = []
        for record in r.records:
            refs, n = quoted[n], n + 1
            mine.append(_by_token(record, r.verp, r.n_records, refs, numbered))
            recipient = record.recipient.replace("\x00", "")
            if mine[-1] is None and recipient:
                left.append((mine, len(mine) - 1, recipient.lower()))
        found.append(mine)
    if left:
        latest = matching.latest_sends(conn, account, {e for _, _, e in left})
        for mine, i, email in left:
            if (x := latest.get(email)) is not None:
                mine[i] = ("recent_send", x)
    return found


def _quoted(record: BounceRecord) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
    """Where the returned original may carry our token: its X-Mailtally-Id header, its Message-ID."""
    header = record.original_headers.get(TOKEN_HEADER) or next(
        (v for k, v in record.original_headers.items() if k.lower() == TOKEN_HEADER.lower()), None)
    return ("header", header), ("message_id", record.original_message_id)


def _by_token(record: BounceRecord, verp: SendRef | None, n_records: int, refs: list[tuple[str, SendRef | None]],
              numbered: dict[tuple[int, int], _Send]) -> tuple[str, _Send] | None:
    if verp is not None:
        send = numbered.get((verp.activity_num, verp.contact_num))
        # One envelope address names one recipient: trust it alone, or for the address it names.
        if send and (n_records == 1 or send.email == record.recipient.lower()):
            return "verp", send
    for how, ref in refs:
        if ref is not None and (send := numbered.get((ref.activity_num, ref.contact_num))):
            return how, send
    return None


def reclassify(conn: Connection, account: int, secret: bytes, message_ids: Sequence[int], *, dry_run: bool,
               only_reason: str | None = None) -> corrections.Reclassified:
    """Today's engine over stored messages, inside the caller's transaction: what they logged is
    corrected (``store.corrections.reclassify``), and a recipient the new reading finds that
    nothing was logged for gets its event as ``ingest_message`` would have made it: matched to
    its send and recorded through the writer (counters, suppressions, alerts and webhooks
    follow), or kept as unmatched. ``dry_run`` lists those as changes and records nothing."""
    result = corrections.reclassify(conn, account, message_ids, dry_run=dry_run, only_reason=only_reason)
    for mid, records in result.found.items():
        raw = raw_messages.body(conn, account, mid)
        meta = raw_messages.get(conn, account, mid)
        if raw is None or meta is None:
            continue
        addresses, date, _ = _bounce_headers(raw)
        if meta.envelope_to:
            addresses.insert(0, meta.envelope_to)
        if any((ref := unsubscribe_ref(secret, a)) and ref.account_id == account for a in addresses):
            continue  # an opt-out by mail: it was never read as a bounce
        if dry_run:
            result.corrections += [_added(mid, r, None, applied=False) for r in records]
            continue
        verp = next((ref for a in addresses if (ref := read_token(secret, a)) and ref.account_id == account), None)
        done = _Read(Ingested(str(meta.sha256)[:32], mid), list(records), date, verp, n_records=len(parse(raw)),
                     received=int(meta.received_at))
        _record(conn, account, secret, [done])
        result.corrections += [_added(mid, o.record, o.activity_id, applied=True) for o in done.result.outcomes]
    return result


def _added(message_id: int, record: BounceRecord, activity_id: str | None, applied: bool) -> corrections.Correction:
    """A recipient found anew, as a change: from nothing to the reason read."""
    code = record.bounce_code.value if record.bounce_code else None
    return corrections.Correction(message_id, record.recipient.lower(), activity_id, None, None,
                                  record.reason.value, code, applied=applied)


def _unsubscribe(conn: Connection, account: int, ref: SendRef, result: Ingested, raw_message_id: int,
                 date: int | None, received: int) -> None:
    """Record the opt-out a message to ``unsubscribe+<token>@...`` asks for: once per recipient
    and activity, however many times it is sent and whichever other way (one-click, the page)
    the recipient also used."""
    at = date if date is not None and in_range(date) and date <= received + SKEW_MS else received
    event = optout_event(conn, account, ref.activity_num, ref.contact_num, OptoutSource.MAILTO, None, at)
    if event is None:
        return  # signed, but for an activity or contact that is not there (any more)
    written = write_events(conn, account, [event])
    result.recorded += written.accepted
    result.duplicates += written.duplicates
    result.unsubscribe = Unsubscribe(event.activity_id, event.contact_id or "", at, bool(written.accepted))
    if written.accepted:
        raw_messages.link_events(conn, account, raw_message_id, _links(conn, account, [event]))


def _links(conn: Connection, account: int, events: list[Event]) -> list[raw_messages.Link]:
    from ..store.catalog import get_contact

    links = []
    for ev in events:
        nums = matching.numbers_of(conn, account, ev.activity_id, ev.contact_id or "")
        contact = get_contact(conn, account, ev.contact_id or "")
        if nums and contact:
            links.append(raw_messages.Link(nums[0], ev.idem(), ev.type.value, ev.occurred_at, nums[1],
                                           contact.email))
    return links
