"""Outgoing webhooks' tables: subscriptions, the outbox, and the delivery log.

Deliveries are written here in the transaction of the events that cause them, so a crash
loses none and sends none for events that were rolled back. Each row keeps its ``msg_id``
(the ``webhook-id`` header) for every attempt, so a receiver can drop redeliveries.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, and_, delete, select, update

from ..timefmt import iso_ms
from ..vocab import EventType, WebhookDeliveryState, WebhookEvent
from .accounts import allocate
from .db import now_ms
from .schema import webhook_attempts, webhook_outbox, webhook_subscriptions

if TYPE_CHECKING:
    from .alerts import Fired
    from .reactions import Landed
    from .suppressions import Entry

# Which logged event types a subscription can ask for, under which name.
EVENT_NAMES: dict[EventType, WebhookEvent] = {
    EventType.BOUNCE: WebhookEvent.BOUNCE,
    EventType.ABUSE: WebhookEvent.COMPLAINT,
    EventType.OPTOUT: WebhookEvent.OPTOUT,
    EventType.FORWARD: WebhookEvent.FORWARD,
}

# Retry schedule after each failed attempt (seconds): quick at first, then hourly, for just
# over 24 hours in all, as Standard Webhooks suggests; then the delivery is marked failed.
RETRY_DELAYS = (5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 6 * 3600, 8 * 3600)
assert sum(RETRY_DELAYS) >= 24 * 3600


# -- subscriptions -------------------------------------------------------------------------


def create_subscription(conn: Connection, account: int, url: str, wanted: Sequence[WebhookEvent], secret: str,
                        description: str = "") -> Row[Any]:
    sid = str(uuid.uuid4())
    conn.execute(webhook_subscriptions.insert().values(
        account_id=account, id=sid, url=url, events=",".join(sorted(w.value for w in wanted)), secret=secret,
        description=description, enabled=True, created_at=now_ms()))
    row = get_subscription(conn, account, sid)
    assert row is not None
    return row


def get_subscription(conn: Connection, account: int, sid: str) -> Row[Any] | None:
    row: Row[Any] | None = conn.execute(select(webhook_subscriptions).where(
        webhook_subscriptions.c.account_id == account, webhook_subscriptions.c.id == sid)).first()
    return row


def list_subscriptions(conn: Connection, account: int) -> list[Row[Any]]:
    return list(conn.execute(select(webhook_subscriptions).where(webhook_subscriptions.c.account_id == account)
                             .order_by(webhook_subscriptions.c.created_at, webhook_subscriptions.c.id)))


def update_subscription(conn: Connection, account: int, sid: str, **values: Any) -> Row[Any] | None:
    if "events" in values:
        values["events"] = ",".join(sorted(w.value for w in values["events"]))
    conn.execute(update(webhook_subscriptions).where(
        webhook_subscriptions.c.account_id == account, webhook_subscriptions.c.id == sid).values(**values))
    return get_subscription(conn, account, sid)


def delete_subscription(conn: Connection, account: int, sid: str) -> bool:
    """Remove a subscription; its pending deliveries are dropped with it."""
    gone = conn.execute(delete(webhook_subscriptions).where(
        webhook_subscriptions.c.account_id == account, webhook_subscriptions.c.id == sid)).rowcount
    conn.execute(update(webhook_outbox).where(
        webhook_outbox.c.account_id == account, webhook_outbox.c.subscription_id == sid,
        webhook_outbox.c.state == WebhookDeliveryState.PENDING.value,
    ).values(state=WebhookDeliveryState.FAILED.value, last_error="subscription deleted"))
    return bool(gone)


def wanted_by(row: Row[Any]) -> frozenset[str]:
    return frozenset(row.events.split(",")) if row.events else frozenset()


# -- the outbox ----------------------------------------------------------------------------


def enqueue(conn: Connection, account: int, landed: Sequence[Landed], added: Sequence[Entry],
            fired: Sequence[Fired]) -> int:
    """Write the deliveries the landed events, new suppressions and fired alerts call for."""
    subs = [s for s in list_subscriptions(conn, account) if s.enabled]
    if not subs:
        return 0
    wanted = set().union(*(wanted_by(s) for s in subs))
    messages: list[tuple[WebhookEvent, int, dict[str, Any]]] = []
    chosen = [x for x in landed if (name := EVENT_NAMES.get(x.event.type)) is not None and name.value in wanted]
    for x in chosen:
        messages.append((EVENT_NAMES[x.event.type], x.event.occurred_at, _event_data(x)))
    if WebhookEvent.SUPPRESSION_ADDED.value in wanted:
        for e in added:
            messages.append((WebhookEvent.SUPPRESSION_ADDED, e.suppressed_at, suppression_data(e)))
    if WebhookEvent.ALERT_FIRED.value in wanted:
        for a in fired:
            messages.append((WebhookEvent.ALERT_FIRED, a.fired_at, {
                "alert_id": a.id, "activity_id": a.activity_id, "kind": a.kind.value, "rate": a.rate,
                "threshold": a.threshold, "sends": a.sends, "count": a.count}))
    return _write(conn, account, subs, messages)


def enqueue_one(conn: Connection, account: int, kind: WebhookEvent, at: int, data: dict[str, Any]) -> int:
    """One message outside the writer (a suppression removed through the API, say)."""
    subs = [s for s in list_subscriptions(conn, account) if s.enabled and kind.value in wanted_by(s)]
    return _write(conn, account, subs, [(kind, at, data)]) if subs else 0


def suppression_data(e: Any) -> dict[str, Any]:
    return {"email": e.email, "reason": str(e.reason), "suppressed_at": iso_ms(e.suppressed_at),
            "expires_at": iso_ms(e.expires_at) if e.expires_at is not None else None}


def _write(conn: Connection, account: int, subs: Sequence[Row[Any]],
           messages: list[tuple[WebhookEvent, int, dict[str, Any]]]) -> int:
    rows = []
    t = now_ms()
    for kind, at, data in messages:
        body = json.dumps({"type": kind.value, "timestamp": iso_ms(at), "data": data}, separators=(",", ":"))
        for s in subs:
            if kind.value in wanted_by(s):
                rows.append((s.id, kind.value, body))
    if not rows:
        return 0
    first = allocate(conn, account, "seq_event", len(rows))
    conn.execute(webhook_outbox.insert(), [
        {"account_id": account, "id": first + n, "subscription_id": sid, "msg_id": f"msg_{uuid.uuid4().hex}",
         "event_type": kind, "payload": body, "created_at": t, "state": WebhookDeliveryState.PENDING.value,
         "attempts": 0, "next_attempt_at": t}
        for n, (sid, kind, body) in enumerate(rows)])
    return len(rows)


def _event_data(x: Landed) -> dict[str, Any]:
    ev = x.event
    data: dict[str, Any] = {"activity_id": ev.activity_id, "contact_id": x.contact_id, "email": x.email,
                            "occurred_at": iso_ms(ev.occurred_at)}
    if ev.type is EventType.BOUNCE:
        data.update(reason=str(ev.reason) if ev.reason else None,
                    bounce_code=str(ev.bounce_code) if ev.bounce_code else None, hard_bounce=ev.hard,
                    status=ev.dsn_status, reply_code=ev.reply_code, diagnostic=ev.diagnostic)
    elif ev.type is EventType.OPTOUT:
        data.update(source=ev.optout_source, reason=ev.optout_reason)
    return data


def due(conn: Connection, now: int, limit: int) -> list[Row[Any]]:
    """Pending deliveries of every account whose time has come and that no worker holds."""
    return list(conn.execute(
        select(webhook_outbox).where(
            webhook_outbox.c.state == WebhookDeliveryState.PENDING.value,
            webhook_outbox.c.next_attempt_at <= now,
            (webhook_outbox.c.locked_until.is_(None)) | (webhook_outbox.c.locked_until < now))
        .order_by(webhook_outbox.c.next_attempt_at, webhook_outbox.c.id).limit(limit)))


def claim(conn: Connection, account: int, outbox_id: int, now: int, hold_ms: int) -> bool:
    """Take a delivery for ``hold_ms`` (another worker, or this one after a crash, waits that long)."""
    took = conn.execute(update(webhook_outbox).where(
        webhook_outbox.c.account_id == account, webhook_outbox.c.id == outbox_id,
        webhook_outbox.c.state == WebhookDeliveryState.PENDING.value,
        (webhook_outbox.c.locked_until.is_(None)) | (webhook_outbox.c.locked_until < now),
    ).values(locked_until=now + hold_ms)).rowcount
    return bool(took)


def record_attempt(conn: Connection, account: int, row: Row[Any], *, ok: bool, status: int | None,
                   error: str | None, duration_ms: int, now: int) -> None:
    attempt = int(row.attempts) + 1
    error = error[:2000] if error else None
    conn.execute(webhook_attempts.insert().values(account_id=account, outbox_id=row.id, attempt=attempt, at=now,
                                                  status=status, error=error, duration_ms=duration_ms))
    values: dict[str, Any] = {"attempts": attempt, "last_status": status, "last_error": error, "locked_until": None}
    if ok:
        values.update(state=WebhookDeliveryState.DELIVERED.value, delivered_at=now)
    elif attempt > len(RETRY_DELAYS):
        values.update(state=WebhookDeliveryState.FAILED.value)
    else:
        values.update(next_attempt_at=now + RETRY_DELAYS[attempt - 1] * 1000)
    conn.execute(update(webhook_outbox).where(webhook_outbox.c.account_id == account,
                                              webhook_outbox.c.id == row.id).values(**values))


def deliveries(conn: Connection, account: int, *, subscription_id: str | None = None, state: str | None = None,
               before: int | None = None, limit: int = 100) -> list[Row[Any]]:
    """The delivery log, newest first (keyset on id)."""
    q = select(webhook_outbox).where(webhook_outbox.c.account_id == account)
    if subscription_id:
        q = q.where(webhook_outbox.c.subscription_id == subscription_id)
    if state:
        q = q.where(webhook_outbox.c.state == state)
    if before is not None:
        q = q.where(webhook_outbox.c.id < before)
    return list(conn.execute(q.order_by(webhook_outbox.c.id.desc()).limit(limit)))


def get_delivery(conn: Connection, account: int, outbox_id: int) -> Row[Any] | None:
    row: Row[Any] | None = conn.execute(select(webhook_outbox).where(
        webhook_outbox.c.account_id == account, webhook_outbox.c.id == outbox_id)).first()
    return row


def attempts_of(conn: Connection, account: int, outbox_id: int) -> list[Row[Any]]:
    return list(conn.execute(select(webhook_attempts).where(
        and_(webhook_attempts.c.account_id == account, webhook_attempts.c.outbox_id == outbox_id))
        .order_by(webhook_attempts.c.attempt)))


def redeliver(conn: Connection, account: int, outbox_id: int) -> Row[Any] | None:
    """Try a delivery again now (a failed one too), with the same ``webhook-id``."""
    conn.execute(update(webhook_outbox).where(webhook_outbox.c.account_id == account, webhook_outbox.c.id == outbox_id)
                 .values(state=WebhookDeliveryState.PENDING.value, next_attempt_at=now_ms(), locked_until=None))
    return get_delivery(conn, account, outbox_id)


