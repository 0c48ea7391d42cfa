"""The raw bounce messages received, kept so they can be read again and re-classified.

Each message is stored once per account (keyed by the SHA-256 of its bytes), zlib-compressed,
cut to a size cap, and linked to the events and unmatched bounces it produced. Every source
gets this through ``ingest.bounce_messages.ingest_messages``; nothing else writes here.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, func, select, update

from . import rawsql
from .accounts import allocate
from .db import now_ms
from .schema import activities, contacts, events, raw_message_events, raw_messages, unmatched_bounces

# Defaults for the settings ``raw_message_max_bytes`` and ``raw_message_retention_days``.
MAX_STORED_BYTES = 1024 * 1024  # the headers and the DSN parts come first; a returned original's bulk rarely matters
RETENTION_DAYS = 90  # long enough to re-classify a quarter's bounces after an engine update
DAY_MS = 86_400_000

# Columns read when listing or showing a message (never the body).
META = (raw_messages.c.id, raw_messages.c.sha256, raw_messages.c.received_at, raw_messages.c.source,
        raw_messages.c.envelope_to, raw_messages.c.size, raw_messages.c.truncated, raw_messages.c.records)


@dataclass(frozen=True, slots=True)
class Kept:
    id: int
    new: bool  # False when this account already held the same bytes


@dataclass(frozen=True, slots=True)
class Link:
    """One logged event a message produced, by the log's key."""

    activity_num: int
    idem: int
    type: str
    occurred_at: int
    contact_num: int
    recipient: str


def content_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def keep(conn: Connection, account: int, raw: bytes, *, source: str, envelope_to: str | None = None,
         cap: int = MAX_STORED_BYTES, received_at: int | None = None) -> Kept:
    """Store ``raw`` unless this account already has it; inside the caller's transaction."""
    return keep_many(conn, account, [(raw, envelope_to, 0)], source=source, cap=cap, received_at=received_at)[0]


def keep_many(conn: Connection, account: int, messages: Sequence[tuple[bytes, str | None, int]], *, source: str,
              cap: int = MAX_STORED_BYTES, received_at: int | None = None) -> list[Kept]:
    """Store each ``(raw, envelope_to, records)`` this account does not hold yet, in one look-up
    and one ``executemany``; inside the caller's transaction. The same bytes twice are stored once
    (the second is ``Kept(id, False)``); ``records`` is how many bounce records the message gave."""
    digests = [content_hash(raw) for raw, _, _ in messages]
    found = _by_hashes(conn, account, set(digests))
    fresh: dict[str, int] = {}  # digest -> index of its first message, for those not stored yet
    for i, digest in enumerate(digests):
        if digest not in found:
            fresh.setdefault(digest, i)
    if fresh:
        first = allocate(conn, account, "seq_event", len(fresh))  # also the account's write lock
        at = received_at or now_ms()
        rows = []
        for k, (digest, i) in enumerate(fresh.items()):
            raw, envelope_to, records = messages[i]
            rows.append((account, first + k, digest, at, source[:32], envelope_to[:320] if envelope_to else None,
                         len(raw), len(raw) > cap, records, zlib.compress(raw[:cap], 1)))
        inserted = rawsql.insert_new(
            conn, "raw_messages",
            ("account_id", "id", "sha256", "received_at", "source", "envelope_to", "size", "truncated", "records",
             "body"), rows)
        if inserted == len(rows):
            new = {digest: first + k for k, digest in enumerate(fresh)}
        else:  # another transaction stored some of the same bytes between our look-up and insert
            new = {}
            again = _by_hashes(conn, account, set(fresh))
            for k, digest in enumerate(fresh):
                if again.get(digest) == first + k:
                    new[digest] = first + k
                else:
                    found[digest] = again[digest]
    else:
        new = {}
    ids = found | new
    return [Kept(ids[digest], digest in new and fresh[digest] == i) for i, digest in enumerate(digests)]


def _by_hashes(conn: Connection, account: int, digests: set[str]) -> dict[str, int]:
    if not digests:
        return {}
    sql = "SELECT sha256, id FROM raw_messages WHERE account_id = {p} AND sha256 IN ({in})"
    return {str(d): int(i) for d, i in rawsql.select_in(conn, sql, (account,), sorted(digests))}


def link_events(conn: Connection, account: int, message_id: int, links: Sequence[Link]) -> None:
    """Record which events ``message_id`` produced (again is harmless)."""
    link_many(conn, account, [(message_id, x) for x in links])


def link_many(conn: Connection, account: int, links: Sequence[tuple[int, Link]]) -> None:
    """`link_events` for many messages at once: ``(message id, link)`` pairs, one ``executemany``."""
    rawsql.insert_new(
        conn, "raw_message_events",
        ("account_id", "raw_message_id", "activity_num", "idem", "type", "occurred_at", "contact_num", "recipient"),
        [(account, message_id, x.activity_num, x.idem, x.type, x.occurred_at, x.contact_num, x.recipient[:320])
         for message_id, x in links],
    )


def get(conn: Connection, account: int, message_id: int) -> Row[Any] | None:
    q: Any = select(*META).where(raw_messages.c.account_id == account, raw_messages.c.id == message_id)
    return conn.execute(q).first()


def body(conn: Connection, account: int, message_id: int) -> bytes | None:
    """The stored bytes (the first ``cap`` of them when ``truncated``)."""
    packed = conn.execute(select(raw_messages.c.body).where(
        raw_messages.c.account_id == account, raw_messages.c.id == message_id)).scalar()
    return zlib.decompress(packed) if packed is not None else None


def list_messages(conn: Connection, account: int, before_id: int | None, limit: int) -> list[Row[Any]]:
    """Stored messages, newest first (keyset on id)."""
    q = select(*META).where(raw_messages.c.account_id == account)
    if before_id is not None:
        q = q.where(raw_messages.c.id < before_id)
    return list(conn.execute(q.order_by(raw_messages.c.id.desc()).limit(limit)))


def _event_join() -> Any:
    link = raw_message_events
    return link.join(events, and_(
        events.c.account_id == link.c.account_id, events.c.activity_num == link.c.activity_num,
        events.c.type == link.c.type, events.c.occurred_at == link.c.occurred_at, events.c.idem == link.c.idem,
    )).join(activities, and_(activities.c.account_id == link.c.account_id,
                             activities.c.num_id == link.c.activity_num)
            ).join(contacts, and_(contacts.c.account_id == link.c.account_id,
                                  contacts.c.num_id == link.c.contact_num))


def events_of(conn: Connection, account: int, message_id: int) -> list[Row[Any]]:
    """The logged events a message produced, as the log holds them now (after any correction)."""
    link = raw_message_events
    q = (select(link.c.raw_message_id, link.c.activity_num, link.c.contact_num, link.c.idem, link.c.recipient,
                activities.c.id.label("activity_id"), contacts.c.id.label("contact_id"), events.c.type,
                events.c.occurred_at, events.c.reason, events.c.bounce_code, events.c.hard, events.c.dsn_status,
                events.c.reply_code, events.c.diagnostic, events.c.remote_mta)
         .select_from(_event_join())
         .where(link.c.account_id == account, link.c.raw_message_id == message_id)
         .order_by(link.c.recipient, link.c.idem))
    return list(conn.execute(q))


def unmatched_of(conn: Connection, account: int, message_id: int) -> list[Row[Any]]:
    return list(conn.execute(select(unmatched_bounces).where(
        unmatched_bounces.c.account_id == account, unmatched_bounces.c.raw_message_id == message_id,
    ).order_by(unmatched_bounces.c.id)))


def message_of_event(conn: Connection, account: int, activity_num: int, idem: int) -> int | None:
    """The stored message a logged event came from, if any (the dashboard's drill-down)."""
    found = conn.execute(select(raw_message_events.c.raw_message_id).where(
        raw_message_events.c.account_id == account, raw_message_events.c.activity_num == activity_num,
        raw_message_events.c.idem == idem)).scalar()
    return int(found) if found is not None else None


def count(conn: Connection, account: int) -> int:
    return int(conn.execute(select(func.count()).select_from(raw_messages)
                            .where(raw_messages.c.account_id == account)).scalar_one())


def prune(conn: Connection, retention_days: int, now: int | None = None, account: int | None = None) -> int:
    """Delete messages older than the retention period; their events and unmatched rows stay."""
    cutoff = (now or now_ms()) - retention_days * DAY_MS
    old = select(raw_messages.c.account_id, raw_messages.c.id).where(raw_messages.c.received_at < cutoff)
    if account is not None:
        old = old.where(raw_messages.c.account_id == account)
    gone = [(int(a), int(i)) for a, i in conn.execute(old)]
    for acc, mid in gone:
        conn.execute(delete(raw_message_events).where(raw_message_events.c.account_id == acc,
                                                      raw_message_events.c.raw_message_id == mid))
        conn.execute(update(unmatched_bounces).where(unmatched_bounces.c.account_id == acc,
                                                     unmatched_bounces.c.raw_message_id == mid)
                     .values(raw_message_id=None))
        conn.execute(delete(raw_messages).where(raw_messages.c.account_id == acc, raw_messages.c.id == mid))
    return len(gone)


def ids(conn: Connection, account: int, *, since: int | None = None, until: int | None = None,
        after_id: int = 0, limit: int = 100) -> list[int]:
    """Stored message ids in order from ``after_id`` (keyset), received in [since, until)."""
    q = select(raw_messages.c.id).where(raw_messages.c.account_id == account, raw_messages.c.id > after_id)
    if since is not None:
        q = q.where(raw_messages.c.received_at >= since)
    if until is not None:
        q = q.where(raw_messages.c.received_at < until)
    return [int(i) for i in conn.execute(q.order_by(raw_messages.c.id).limit(limit)).scalars()]
