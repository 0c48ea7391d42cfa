"""Raw bounce messages into bounce (and complaint) events of the sends they belong to; and
messages to List-Unsubscribe's ``mailto:`` address (``unsubscribe+<token>@...``) into opt-outs.

The send is found by, in order: a signed VERP token in the address the bounce was sent to;
a token in the returned original's ``X-Mailtally-Id`` header or Message-ID; the
recipient's most recent send. A bounce that matches nothing is kept as unmatched.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from sqlalchemy import Connection

from ..bounces import BounceRecord, parse
from ..bounces.message import no_surrogates
from ..events import Event
from ..store import corrections, matching, raw_messages
from ..store.db import now_ms
from ..store.writer import write_events
from ..timefmt import datetime_ms, in_range, iso_ms
from ..verp import TOKEN_HEADER, SendRef, read_token, unsubscribe_ref
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


def _bounce_headers(raw: bytes) -> tuple[list[str], int | None, str | None]:
    head = BytesHeaderParser(policy=compat32).parsebytes(raw[:256 * 1024], headersonly=True)
    addresses = [addr for h in DELIVERY_HEADERS for _, addr in getaddresses(head.get_all(h) or []) if addr]
    when = None
    date = head.get("Date")
    try:
        if date:
            dt = parsedate_to_datetime(str(date))
            when = datetime_ms(dt if dt.tzinfo else dt.replace(tzinfo=UTC))
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    return addresses, when, _text(" ".join(str(date).split()), 200) if date else None


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
    """Store, parse and record one message inside the caller's transaction.

    The raw message is kept (``store.raw_messages``, at most ``keep_bytes`` of it) whatever it
    turns out to be, so a later engine can re-read it. Re-ingesting changes nothing.
    """
    result = Ingested(message_key(raw))
    kept = raw_messages.keep(conn, account, raw, source=source, envelope_to=envelope_to, cap=keep_bytes)
    result.raw_message_id = kept.id
    addresses, date, result.message_date = _bounce_headers(raw)
    if envelope_to:
        addresses.insert(0, envelope_to)
    received = now_ms()
    # Sent to List-Unsubscribe's mailto: address: an opt-out, whatever the message says.
    optout = next((ref for a in addresses if (ref := unsubscribe_ref(secret, a)) and ref.account_id == account), None)
    if optout is not None:
        _unsubscribe(conn, account, optout, result, kept.id, date, received)
        return result
    records = parse(raw)
    if kept.new and records:
        raw_messages.set_records(conn, account, kept.id, len(records))
    if not records:
        return result
    _record(conn, account, secret, records, len(records), addresses, date, received, kept.id, result)
    return result


def _record(conn: Connection, account: int, secret: bytes, records: Sequence[BounceRecord], n_records: int,
            addresses: list[str], date: int | None, received: int, kept_id: int, result: Ingested) -> list[Event]:
    """The events of ``records`` (of one message of ``n_records``) for the sends they belong to,
    through the writer; those that match no send are kept as unmatched. Returns the events."""
    verp = next((ref for a in addresses if (ref := read_token(secret, a)) and ref.account_id == account), None)
    events: list[Event] = []
    for record in records:
        outcome = Outcome(record, event_type=_event_type(record))
        result.outcomes.append(outcome)
        found = _find_send(conn, account, secret, record, verp, n_records)
        if found is None:
            if matching.keep_unmatched(conn, account, {
                "message_key": result.message_key, "recipient": _text(record.recipient.lower(), 320) or "",
                "received_at": received, "reason": record.reason.value,
                "bounce_code": record.bounce_code.value if record.bounce_code else None,
                "dsn_status": _text(record.status, 16), "reply_code": _text(record.reply_code, 8),
                "diagnostic": _text(record.diagnostic, 4000), "remote_mta": _text(record.remote_mta, 255),
                "original_message_id": _text(record.original_message_id, 998),
                "original_subject": _text(record.original_subject, 998),
                "raw_message_id": kept_id,
            }):
                result.unmatched_new += 1
            else:
                result.duplicates += 1
            continue
        outcome.matched_by, (outcome.activity_id, outcome.contact_id) = found[0], found[1]
        at = outcome.occurred_at = event_time(record, date, received)
        key = "b" + hashlib.blake2b(f"{result.message_key}|{record.recipient.lower()}".encode(),
                                    digest_size=20).hexdigest()
        events.append(Event(
            outcome.event_type or EventType.BOUNCE, outcome.activity_id, at, outcome.contact_id,
            reason=record.reason if outcome.event_type is EventType.BOUNCE else None,
            bounce_code=record.bounce_code if outcome.event_type is EventType.BOUNCE else None,
            hard=record.hard_bounce if outcome.event_type is EventType.BOUNCE else None,
            dsn_status=_text(record.status, 16), reply_code=_text(record.reply_code, 8),
            diagnostic=_text(record.diagnostic, 4000), remote_mta=_text(record.remote_mta, 255),
            optout_source="Feedback loop" if outcome.event_type is EventType.OPTOUT else None,
            idempotency_key=key,
        ))
    if events:
        written = write_events(conn, account, events)
        result.recorded += written.accepted
        result.duplicates += written.duplicates
        raw_messages.link_events(conn, account, kept_id, _links(conn, account, events))
    return events


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
        n_records = len(parse(raw))
        if dry_run:
            result.corrections += [_added(mid, r, None, applied=False) for r in records]
            continue
        done = Ingested(str(meta.sha256)[:32], mid)
        _record(conn, account, secret, records, n_records, addresses, date, int(meta.received_at), mid, done)
        result.corrections += [_added(mid, o.record, o.activity_id, applied=True) for o in done.outcomes]
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


def _find_send(
    conn: Connection, account: int, secret: bytes, record: BounceRecord, verp: SendRef | None, n_records: int
) -> tuple[str, matching.Send] | None:
    if verp is not None:
        send = matching.send_by_numbers(conn, account, verp.activity_num, verp.contact_num)
        # One envelope address names one recipient: trust it alone, or for the address it names.
        if send and (n_records == 1 or _email_of(conn, account, send) == record.recipient.lower()):
            return "verp", send
    header = record.original_headers.get(TOKEN_HEADER) or next(
        (v for k, v in record.original_headers.items() if k.lower() == TOKEN_HEADER.lower()), None)
    for how, text in (("header", header), ("message_id", record.original_message_id)):
        if text and (ref := read_token(secret, text)) and ref.account_id == account:
            send = matching.send_by_numbers(conn, account, ref.activity_num, ref.contact_num)
            if send:
                return how, send
    recipient = record.recipient.replace("\x00", "")
    if recipient:
        send = matching.latest_send_to(conn, account, recipient)
        if send:
            return "recent_send", send
    return None


def _email_of(conn: Connection, account: int, send: matching.Send) -> str | None:
    from ..store.catalog import get_contact

    row = get_contact(conn, account, send[1])
    return row.email if row else None
