"""Correcting logged bounces: a person's override, and re-classifying stored messages.

A bounce's reason changes in the log; the recipient's counted bounce (its earliest) is read
again so the counters move from the old code to the new; a suppression the bounce caused is
lifted, and the policy decides afresh on the corrected event. All in the caller's
transaction, so the counters always equal a recount of the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select, update

from ..bounces import BounceRecord, parse
from ..events import Event
from ..suppression.policy import Policy
from ..vocab import EventType, Reason, WebhookEvent, bounce_code_for, is_hard
from . import outbox, raw_messages, suppressions
from .db import now_ms
from .reactions import Landed, suppress
from .schema import activities, activity_counters, contacts, events, recipients, unmatched_bounces

# Reasons a bounce can be corrected to: those with a bounce code (not feedback, not delivered).
BOUNCE_REASONS = frozenset(r for r in Reason if bounce_code_for(r) is not None and r is not Reason.SUPPRESSED)


@dataclass(slots=True)
class Correction:
    message_id: int | None
    email: str
    activity_id: str | None
    old_reason: str | None
    old_code: str | None
    new_reason: str
    new_code: str
    suppression_lifted: bool = False
    applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "email": self.email, "activity_id": self.activity_id,
                "from": {"reason": self.old_reason, "bounce_code": self.old_code},
                "to": {"reason": self.new_reason, "bounce_code": self.new_code},
                "suppression_lifted": self.suppression_lifted, "applied": self.applied}


def correct_event(conn: Connection, account: int, link: Any, new_reason: Reason, policy: Policy) -> bool:
    """Give one logged bounce (``link``: a row of ``raw_messages.events_of``) a new reason.

    Returns whether a suppression it caused was lifted (and not made again by the policy).
    """
    code = bounce_code_for(new_reason)
    assert code is not None
    key = ((events.c.account_id == account) & (events.c.activity_num == link.activity_num)
           & (events.c.type == EventType.BOUNCE.value) & (events.c.occurred_at == link.occurred_at)
           & (events.c.idem == link.idem))
    conn.execute(update(events).where(key).values(reason=new_reason.value, bounce_code=code.value,
                                                  hard=is_hard(code)))
    _recount_recipient(conn, account, link.activity_id, link.activity_num, link.contact_num)

    caused = suppressions.caused_by(conn, account, link.activity_num, link.idem)
    for entry in caused:
        suppressions.remove(conn, account, entry.email)
    ev = Event(EventType.BOUNCE, link.activity_id, link.occurred_at, link.contact_id, reason=new_reason,
               bounce_code=code, hard=is_hard(code))
    again = {e.email for e in suppress(conn, account, policy,
                                       [Landed(ev, link.activity_num, link.contact_id, link.contact_num, link.idem)])}
    lifted = [e for e in caused if e.email not in again]
    for entry in lifted:
        outbox.enqueue_one(conn, account, WebhookEvent.SUPPRESSION_REMOVED, now_ms(),
                           {**outbox.suppression_data(entry), "removed_by": "correction"})
    return bool(lifted)


def _recount_recipient(conn: Connection, account: int, activity_id: str, activity_num: int, contact_num: int) -> None:
    """The recipient's counted bounce is its earliest (by time, then arrival): move the counters if its code changed."""
    first = conn.execute(select(events.c.bounce_code).where(
        events.c.account_id == account, events.c.activity_num == activity_num, events.c.contact_num == contact_num,
        events.c.type == EventType.BOUNCE.value,
    ).order_by(events.c.occurred_at, events.c.id).limit(1)).scalar()
    rkey = ((recipients.c.account_id == account) & (recipients.c.activity_num == activity_num)
            & (recipients.c.contact_num == contact_num))
    held = conn.execute(select(recipients.c.bounce_code).where(rkey)).scalar()
    new = first or "X"
    if held is None or held == new:
        return
    conn.execute(update(recipients).where(rkey).values(bounce_code=new))
    old_col, new_col = activity_counters.c["bounces_" + held.lower()], activity_counters.c["bounces_" + new.lower()]
    conn.execute(update(activity_counters).where(
        activity_counters.c.account_id == account, activity_counters.c.activity_id == activity_id,
    ).values({old_col: old_col - 1, new_col: new_col + 1, activity_counters.c.updated_at: now_ms()}))


def override(conn: Connection, account: int, message_id: int, new_reason: Reason,
             email: str | None = None) -> list[Correction]:
    """A person's verdict on one stored message's bounce (all of its bounces, or ``email``'s)."""
    policy = suppressions.policy_for(conn, account)
    out = [_by_person(conn, account, link, new_reason, policy, message_id)
           for link in raw_messages.events_of(conn, account, message_id)
           if link.type == EventType.BOUNCE.value and not (email and link.recipient != email.lower())]
    out += _correct_unmatched(conn, account, message_id, {(email or "").lower(): new_reason} if email else None,
                              new_reason, dry_run=False)
    return out


def _by_person(conn: Connection, account: int, link: Any, new_reason: Reason, policy: Policy,
               message_id: int | None) -> Correction:
    c = Correction(message_id, link.recipient, link.activity_id, link.reason, link.bounce_code, new_reason.value,
                   str(bounce_code_for(new_reason)))
    if (link.reason, link.bounce_code) != (c.new_reason, c.new_code):
        c.suppression_lifted = correct_event(conn, account, link, new_reason, policy)
        c.applied = True
    return c


def logged_bounce(conn: Connection, account: int, activity_num: int, occurred_at: int, idem: int) -> Any:
    """One logged bounce by its key, with what ``correct_event`` needs (None when there is none)."""
    q = (select(events.c.activity_num, events.c.contact_num, events.c.idem, events.c.occurred_at, events.c.type,
                events.c.reason, events.c.bounce_code, activities.c.id.label("activity_id"),
                contacts.c.id.label("contact_id"), contacts.c.email.label("recipient"))
         .select_from(events.join(activities, (activities.c.account_id == events.c.account_id)
                                  & (activities.c.num_id == events.c.activity_num))
                      .join(contacts, (contacts.c.account_id == events.c.account_id)
                            & (contacts.c.num_id == events.c.contact_num)))
         .where(events.c.account_id == account, events.c.activity_num == activity_num,
                events.c.type == EventType.BOUNCE.value, events.c.occurred_at == occurred_at,
                events.c.idem == idem))
    return conn.execute(q).first()


def override_event(conn: Connection, account: int, activity_num: int, occurred_at: int, idem: int,
                   new_reason: Reason) -> Correction | None:
    """A person's verdict on one logged bounce, whether or not a stored message came with it
    (the dashboard's bounce page); None when there is no such bounce."""
    link = logged_bounce(conn, account, activity_num, occurred_at, idem)
    if link is None:
        return None
    message_id = raw_messages.message_of_event(conn, account, activity_num, idem)
    return _by_person(conn, account, link, new_reason, suppressions.policy_for(conn, account), message_id)


def _correct_unmatched(conn: Connection, account: int, message_id: int, by_email: dict[str, Reason] | None,
                       default: Reason | None, dry_run: bool) -> list[Correction]:
    out = []
    for u in raw_messages.unmatched_of(conn, account, message_id):
        reason = (by_email or {}).get(u.recipient, default if by_email is None else None)
        if reason is None or reason.value == u.reason:
            continue
        code = bounce_code_for(reason)
        c = Correction(message_id, u.recipient, None, u.reason, u.bounce_code, reason.value,
                       code.value if code else "")
        if not dry_run:
            conn.execute(update(unmatched_bounces).where(
                unmatched_bounces.c.account_id == account, unmatched_bounces.c.id == u.id,
            ).values(reason=reason.value, bounce_code=code.value if code else None))
            c.applied = True
        out.append(c)
    return out


@dataclass(slots=True)
class Reclassified:
    messages: int = 0
    corrections: list[Correction] = field(default_factory=list)


def _pair(records: Sequence[BounceRecord], recipient: str) -> BounceRecord | None:
    found = [r for r in records if r.recipient.lower() == recipient]
    if found:
        return found[0]
    return records[0] if len(records) == 1 else None  # matched by VERP under another address


def reclassify(conn: Connection, account: int, message_ids: Sequence[int], *, dry_run: bool,
               only_reason: str | None = None) -> Reclassified:
    """Run today's engine over stored messages; correct the events whose reason it now reads differently."""
    policy = suppressions.policy_for(conn, account)
    result = Reclassified()
    for mid in message_ids:
        raw = raw_messages.body(conn, account, mid)
        if raw is None:
            continue
        result.messages += 1
        records = [r for r in parse(raw) if r.reason in BOUNCE_REASONS]
        if not records:
            continue
        for link in raw_messages.events_of(conn, account, mid):
            if link.type != EventType.BOUNCE.value or (only_reason and link.reason != only_reason):
                continue
            if link.reason == Reason.SUPPRESSED.value:
                continue
            record = _pair(records, link.recipient)
            if record is None or record.reason.value == link.reason:
                continue
            c = Correction(mid, link.recipient, link.activity_id, link.reason, link.bounce_code, record.reason.value,
                           str(bounce_code_for(record.reason)))
            if not dry_run:
                c.suppression_lifted = correct_event(conn, account, link, record.reason, policy)
                c.applied = True
            result.corrections.append(c)
        by_email = {r.recipient.lower(): r.reason for r in records}
        result.corrections += [c for c in _correct_unmatched(conn, account, mid, by_email, None, dry_run)
                               if not only_reason or c.old_reason == only_reason]
    return result
