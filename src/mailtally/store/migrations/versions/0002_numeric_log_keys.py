"""The log keyed by (activity, type, time, idem); activities and contacts by numeric id.

Databases 0001 made before this change hold ``events`` and ``recipients`` keyed by UUIDs
and a text idempotency key. They are rebuilt here with every row kept, and each old key
becomes the hash the writer now computes, so replaying an old event still counts nothing.
A database 0001 made afterwards already has the new shape and is left alone.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from alembic import op

from mailtally.events import Event
from mailtally.store import partitions, schema
from mailtally.vocab import BounceCode, DeviceType, EventType, Reason

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_INDEXES = {
    "events": ("ix_events_activity", "ix_events_contact", "ix_events_bounce_time"),
    "recipients": ("ix_recipients_sent", "ix_recipients_opened"),
}
COPIED = ("device_type", "url_id", "reason", "bounce_code", "hard", "dsn_status", "reply_code", "diagnostic",
          "remote_mta", "optout_source", "optout_reason")
BATCH = 5000


def upgrade() -> None:
    bind = op.get_bind()
    if "idem_key" not in {c["name"] for c in sa.inspect(bind).get_columns("events")}:
        return
    postgres = bind.dialect.name == "postgresql"
    for old, indexes in OLD_INDEXES.items():
        for name in indexes:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        op.execute(f"ALTER TABLE {old} RENAME TO {old}_v1")
        if postgres:
            op.execute(f"ALTER TABLE {old}_v1 RENAME CONSTRAINT {old}_pkey TO {old}_v1_pkey")
    for table in (schema.events, schema.event_keys, schema.recipients):
        table.create(bind, checkfirst=True)
    if partitions.is_partitioned(bind):  # today's log is by month (0010): its months first
        partitions.ensure_edges(bind)
        partitions.ensure_months(bind, partitions.months_in(bind, "events_v1"))
    _copy_events(bind)
    state = ", ".join(c.name for c in schema.recipients.c if c.name not in ("account_id", "activity_num",
                                                                              "contact_num"))
    op.execute(
        f"INSERT INTO recipients (account_id, activity_num, contact_num, {state}) "
        f"SELECT r.account_id, a.num_id, c.num_id, {', '.join('r.' + s.strip() for s in state.split(','))} "
        "FROM recipients_v1 r "
        "JOIN activities a ON a.account_id = r.account_id AND a.id = r.activity_id "
        "JOIN contacts c ON c.account_id = r.account_id AND c.id = r.contact_id"
    )
    op.execute("DROP TABLE events_v1")
    op.execute("DROP TABLE recipients_v1")


def _copy_events(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text(
        "SELECT e.account_id, e.id, e.activity_id, a.num_id AS activity_num, e.contact_id, "
        "c.num_id AS contact_num, c.email, e.type, e.occurred_at, e.idem_key, "
        f"{', '.join('e.' + c for c in COPIED)} FROM events_v1 e "
        "JOIN activities a ON a.account_id = e.account_id AND a.id = e.activity_id "
        "JOIN contacts c ON c.account_id = e.account_id AND c.id = e.contact_id ORDER BY e.account_id, e.id"
    )).mappings()
    events, keys = [], []
    for r in rows:
        idem, caller_key = _idem(r)
        events.append({"account_id": r["account_id"], "activity_num": r["activity_num"], "type": r["type"],
                       "occurred_at": r["occurred_at"], "idem": idem, "id": r["id"],
                       "contact_num": r["contact_num"], **{c: r[c] for c in COPIED}})
        if caller_key:
            keys.append({"account_id": r["account_id"], "key_hash": idem})
        if len(events) >= BATCH:
            _flush(bind, events, keys)
    _flush(bind, events, keys)


def _flush(bind: sa.Connection, events: list[dict[str, Any]], keys: list[dict[str, Any]]) -> None:
    if events:
        bind.execute(schema.events.insert(), events)
    if keys:
        bind.execute(schema.event_keys.insert(), keys)
    events.clear()
    keys.clear()


def _idem(r: Any) -> tuple[int, bool]:
    """The new hash of an old event; True when its old key was the caller's own.

    An old derived key was the time in hex and a hash of the event naming the contact by id,
    or by ``@address`` when it came in by address: whichever reproduces it says how the
    event arrived, and the new hash is derived the same way.
    """
    for contact_id, email in _ways_in(r):
        if _old_key(r, contact_id, email) == r["idem_key"]:
            return _event(r, contact_id, email).idem(), False
    return _event(r, r["contact_id"], None, key=r["idem_key"]).idem(), True


def _ways_in(r: Any) -> Iterator[tuple[str | None, str | None]]:
    yield r["contact_id"], None
    yield None, r["email"]


def _old_key(r: Any, contact_id: str | None, email: str | None) -> str:
    who = contact_id or f"@{(email or '').lower()}"
    raw = (f"{r['type']}|{r['activity_id']}|{who}|{r['occurred_at']}|{r['device_type'] or ''}|"
           f"{r['url_id'] or ''}|{r['bounce_code'] or ''}|{r['reason'] or ''}")
    return f"{r['occurred_at']:012x}" + hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


def _event(r: Any, contact_id: str | None, email: str | None, key: str | None = None) -> Event:
    return Event(
        EventType(r["type"]), r["activity_id"], r["occurred_at"], contact_id, email=email,
        device_type=DeviceType(r["device_type"]) if r["device_type"] else None, url_id=r["url_id"],
        reason=Reason(r["reason"]) if r["reason"] else None,
        bounce_code=BounceCode(r["bounce_code"]) if r["bounce_code"] else None, idempotency_key=key,
    )


def downgrade() -> None:
    raise NotImplementedError("the log's old shape is not restored; restore a backup instead")
