"""Correcting logged bounces: a person's override, and re-classifying stored messages.

A bounce's reason changes in the log, or, when today's engine no longer reads its message as a
bounce at all, the bounce leaves the log. The recipient's bounce state (its earliest bounce) is
folded again from the log and the counters move by the difference; a suppression the bounce
caused is lifted, and the policy decides afresh on the corrected event. Subscribers hear of
each suppression removed or added (``suppression.removed``, ``suppression.added``). All in the
caller's transaction, so the counters always equal a recount of the log.

Any logged bounce can be overridden: by its stored message (``override``), or by activity and
address (``override_recipient``) for bounces that came without one (provider webhooks, logs,
``/v1/events``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, delete, select, update

from ..bounces import BounceRecord, parse
from ..events import Event
from ..suppression.policy import DAY_MS, Fact, Policy, counts_as_soft
from ..vocab import BounceCode, EventType, Reason, WebhookEvent, bounce_code_for, is_hard
from . import alerts, outbox, raw_messages, suppressions
from .db import now_ms
from .reactions import SUPPRESSING, Landed, suppress
from .schema import activities, activity_counters, contacts, events, raw_message_events, recipients, unmatched_bounces

# Reasons a bounce can be corrected to: those with a bounce code (not feedback, not delivered), in the
# vocabulary's own order (vocab.Reason: the order of the docs' table, userunknown first).
BOUNCE_REASONS = tuple(r for r in Reason if bounce_code_for(r) is not None and r is not Reason.SUPPRESSED)


@dataclass(slots=True)
class Correction:
    message_id: int | None
    email: str
    activity_id: str | None
    old_reason: str | None
    old_code: str | None
    new_reason: str | None  # None: not a bounce any more, the event leaves the log
    new_code: str | None
    suppression_lifted: bool = False
    applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "email": self.email, "activity_id": self.activity_id,
                "from": {"reason": self.old_reason, "bounce_code": self.old_code},
                "to": {"reason": self.new_reason, "bounce_code": self.new_code},
                "removed": self.new_reason is None,
                "added": self.old_reason is None,  # a recipient the new reading finds, nothing logged before
                "suppression_lifted": self.suppression_lifted, "applied": self.applied}


def correct_event(conn: Connection, account: int, link: Any, new_reason: Reason | None, policy: Policy) -> bool:
    """Give one logged bounce (``link``: a row of ``raw_messages.events_of`` or ``bounces_of``) a
    new reason, or take it out of the log (``new_reason`` None).

    The suppression it caused is lifted, and so is a soft-bounce-threshold one that a later
    bounce made while counting this one; the address's entry is then made again from its log
    as the policy reads it now. Otherwise the policy decides on the corrected event, and on the
    later soft bounces it now counts for. Returns whether a suppression was lifted (and not
    made again).
    """
    key = ((events.c.account_id == account) & (events.c.activity_num == link.activity_num)
           & (events.c.type == EventType.BOUNCE.value) & (events.c.occurred_at == link.occurred_at)
           & (events.c.idem == link.idem))
    code = bounce_code_for(new_reason) if new_reason is not None else None
    if new_reason is None:
        conn.execute(delete(events).where(key))
        conn.execute(delete(raw_message_events).where(
            raw_message_events.c.account_id == account, raw_message_events.c.activity_num == link.activity_num,
            raw_message_events.c.type == EventType.BOUNCE.value, raw_message_events.c.idem == link.idem))
    else:
        assert code is not None
        conn.execute(update(events).where(key).values(reason=new_reason.value, bounce_code=code.value,
                                                      hard=is_hard(code)))
    _recount_recipient(conn, account, link.activity_id, link.activity_num, link.contact_num)

    email = str(link.recipient).lower()
    at = int(link.occurred_at)
    was_soft = counts_as_soft(policy, _fact(at, link.bounce_code, link.reason))
    now_soft = new_reason is not None and counts_as_soft(policy, _fact(at, code, new_reason))
    lifted = list(suppressions.caused_by(conn, account, link.activity_num, link.idem))
    revisit = was_soft and not now_soft and _counted_on(conn, account, policy, email, at, lifted)
    if revisit:
        lifted.append(revisit)
    for entry in lifted:
        suppressions.remove(conn, account, entry.email)
    if lifted:
        # The address's entry as the policy would have made it, had the log always read this
        # way: every bounce, complaint and opt-out of it decides again (the entry lifted may
        # have stood in the way of later ones, or replaced a weaker earlier one).
        again = suppress(conn, account, policy, _suppressing(conn, account, link.contact_num, link.contact_id, email),
                         live_at=now_ms())
    else:
        decide_on = []
        if new_reason is not None and code is not None:
            ev = Event(EventType.BOUNCE, link.activity_id, at, link.contact_id, reason=new_reason,
                       bounce_code=code, hard=is_hard(code))
            decide_on.append(Landed(ev, link.activity_num, link.contact_id, link.contact_num, link.idem, email))
        if now_soft and not was_soft:
            # The later soft bounces whose window reaches back to this one decide again.
            decide_on += _suppressing(conn, account, link.contact_num, link.contact_id, email,
                                      after=at, before=at + policy.soft_window_days * DAY_MS)
        again = suppress(conn, account, policy, decide_on)
    remade = {e.email: e.reason.value for e in again}
    gone = [e for e in lifted if e.email not in remade]
    t = now_ms()
    for entry in gone:
        outbox.enqueue_one(conn, account, WebhookEvent.SUPPRESSION_REMOVED, t,
                           {**outbox.suppression_data(entry), "removed_by": "correction"})
    before = {e.email: e.reason for e in lifted}
    for made in again:
        if before.get(made.email) != made.reason.value:
            outbox.enqueue_one(conn, account, WebhookEvent.SUPPRESSION_ADDED, made.suppressed_at,
                               {**outbox.suppression_data(made), "added_by": "correction"})
    return bool(gone)


def _fact(at: int, code: str | None, reason: str | None) -> Fact:
    return Fact(EventType.BOUNCE, at, BounceCode(code) if code else None, Reason(reason) if reason else None)


def _counted_on(conn: Connection, account: int, policy: Policy, email: str, at: int,
                lifted: Sequence[Any]) -> Any:
    """The address's live soft-bounce-threshold (or block) suppression that a bounce made in the
    soft window after ``at``, counting the bounce at ``at`` (None when there is none)."""
    if any(e.email == email for e in lifted):
        return None
    entry = suppressions.get(conn, account, email)
    if entry is None or entry.reason not in suppressions.WEAK or entry.activity_num is None:
        return None  # none, a hard one, or a person's (an import, the API): left alone
    return entry if at <= entry.suppressed_at < at + policy.soft_window_days * DAY_MS else None


def _suppressing(conn: Connection, account: int, contact_num: int, contact_id: str, email: str, *,
                 after: int | None = None, before: int | None = None) -> list[Landed]:
    """The contact's logged bounces, complaints and opt-outs (every activity; those strictly
    between ``after`` and ``before`` when given), as the policy sees landed events."""
    q = (select(events.c.activity_num, events.c.idem, events.c.type, events.c.occurred_at, events.c.reason,
                events.c.bounce_code, activities.c.id.label("activity_id"))
         .select_from(events.join(activities, (activities.c.account_id == events.c.account_id)
                                  & (activities.c.num_id == events.c.activity_num)))
         .where(events.c.account_id == account, events.c.contact_num == contact_num,
                events.c.type.in_([t.value for t in SUPPRESSING]))
         .order_by(events.c.occurred_at, events.c.id))
    if after is not None:
        q = q.where(events.c.occurred_at > after)
    if before is not None:
        q = q.where(events.c.occurred_at < before)
    out = []
    for r in conn.execute(q):
        fact = _fact(int(r.occurred_at), r.bounce_code, r.reason)
        ev = Event(EventType(r.type), r.activity_id, fact.occurred_at, contact_id, reason=fact.reason,
                   bounce_code=fact.bounce_code)
        out.append(Landed(ev, int(r.activity_num), contact_id, contact_num, int(r.idem), email))
    return out


def _state(sent_at: int | None, first_open_at: int | None, bounced_at: int | None, code: str | None) -> dict[str, int]:
    """The recipient's part of the bounce counters (``writer.STATE_COUNTERS``) in one state."""
    out = {"bounces": int(bounced_at is not None),
           "not_opened": int(sent_at is not None and first_open_at is None and bounced_at is None)}
    if code is not None:
        out["bounces_" + code.lower()] = 1
    return out


def _recount_recipient(conn: Connection, account: int, activity_id: str, activity_num: int, contact_num: int) -> None:
    """Fold the recipient's bounce again from the log (its earliest, by time then arrival) and
    move the activity's counters by the difference."""
    first = conn.execute(select(events.c.occurred_at, events.c.bounce_code).where(
        events.c.account_id == account, events.c.activity_num == activity_num, events.c.contact_num == contact_num,
        events.c.type == EventType.BOUNCE.value,
    ).order_by(events.c.occurred_at, events.c.id).limit(1)).first()
    rkey = ((recipients.c.account_id == account) & (recipients.c.activity_num == activity_num)
            & (recipients.c.contact_num == contact_num))
    held = conn.execute(select(recipients.c.sent_at, recipients.c.first_open_at, recipients.c.bounced_at,
                               recipients.c.bounce_code).where(rkey)).first()
    if held is None:
        return
    new_at, new_code = (int(first.occurred_at), first.bounce_code or "X") if first is not None else (None, None)
    if (held.bounced_at, held.bounce_code) == (new_at, new_code):
        return
    conn.execute(update(recipients).where(rkey).values(bounced_at=new_at, bounce_code=new_code))
    old = _state(held.sent_at, held.first_open_at, held.bounced_at, held.bounce_code)
    new = _state(held.sent_at, held.first_open_at, new_at, new_code)
    moves = {k: new.get(k, 0) - old.get(k, 0) for k in old.keys() | new.keys()}
    values: dict[Any, Any] = {activity_counters.c[k]: activity_counters.c[k] + d for k, d in moves.items() if d}
    if values:
        values[activity_counters.c.updated_at] = now_ms()
        conn.execute(update(activity_counters).where(
            activity_counters.c.account_id == account, activity_counters.c.activity_id == activity_id,
        ).values(values))


def bounces_of(conn: Connection, account: int, activity_id: str, email: str) -> list[Row[Any]]:
    """The logged bounces of one recipient of one activity, shaped as ``raw_messages.events_of`` rows."""
    q = (select(events.c.activity_num, events.c.contact_num, events.c.idem, contacts.c.email.label("recipient"),
                activities.c.id.label("activity_id"), contacts.c.id.label("contact_id"), events.c.type,
                events.c.occurred_at, events.c.reason, events.c.bounce_code)
         .select_from(events.join(activities, (activities.c.account_id == events.c.account_id)
                                  & (activities.c.num_id == events.c.activity_num))
                      .join(contacts, (contacts.c.account_id == events.c.account_id)
                            & (contacts.c.num_id == events.c.contact_num)))
         .where(events.c.account_id == account, activities.c.id == activity_id, contacts.c.email == email.lower(),
                events.c.type == EventType.BOUNCE.value)
         .order_by(events.c.occurred_at, events.c.id))
    return list(conn.execute(q))


def override_recipient(conn: Connection, account: int, activity_id: str, email: str,
                       new_reason: Reason) -> list[Correction]:
    """A person's verdict on a recipient's bounces in one activity, stored message or not (a
    provider's webhook, a log line, ``/v1/events``); a suppressed send's bounce is left alone."""
    policy = suppressions.policy_for(conn, account)
    out = []
    for link in bounces_of(conn, account, activity_id, email):
        if link.reason == Reason.SUPPRESSED.value:
            continue
        c = Correction(raw_messages.message_of_event(conn, account, link.activity_num, link.idem), link.recipient,
                       link.activity_id, link.reason, link.bounce_code, new_reason.value,
                       str(bounce_code_for(new_reason)))
        if (link.reason, link.bounce_code) != (c.new_reason, c.new_code):
            c.suppression_lifted = correct_event(conn, account, link, new_reason, policy)
            c.applied = True
        out.append(c)
    return _alerts_follow(conn, account, out)


def _alerts_follow(conn: Connection, account: int, done: list[Correction]) -> list[Correction]:
    """The alert rules of the activities whose counters the corrections moved, evaluated again."""
    alerts.follow(conn, account, {c.activity_id for c in done if c.applied and c.activity_id})
    return done


def override(conn: Connection, account: int, message_id: int, new_reason: Reason,
             email: str | None = None) -> list[Correction]:
    """A person's verdict on one stored message's bounce (all of its bounces, or ``email``'s)."""
    policy = suppressions.policy_for(conn, account)
    out = [_by_person(conn, account, link, new_reason, policy, message_id)
           for link in raw_messages.events_of(conn, account, message_id)
           if link.type == EventType.BOUNCE.value and not (email and link.recipient != email.lower())]
    out += _correct_unmatched(conn, account, message_id, {(email or "").lower(): new_reason} if email else None,
                              new_reason, dry_run=False)
    return _alerts_follow(conn, account, out)


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
    c = _by_person(conn, account, link, new_reason, suppressions.policy_for(conn, account), message_id)
    _alerts_follow(conn, account, [c])
    return c


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


def _drop_unmatched(conn: Connection, account: int, message_id: int, dry_run: bool) -> list[Correction]:
    """The unmatched bounces of a message that is no longer read as a bounce: they go."""
    out = []
    for u in raw_messages.unmatched_of(conn, account, message_id):
        c = Correction(message_id, u.recipient, None, u.reason, u.bounce_code, None, None)
        if not dry_run:
            conn.execute(delete(unmatched_bounces).where(unmatched_bounces.c.account_id == account,
                                                         unmatched_bounces.c.id == u.id))
            c.applied = True
        out.append(c)
    return out


@dataclass(slots=True)
class Reclassified:
    messages: int = 0
    corrections: list[Correction] = field(default_factory=list)
    # Per message, the bounces today's engine reads for recipients it logged nothing for (no
    # event, no unmatched row): ``ingest.bounce_messages.reclassify`` records them.
    found: dict[int, list[BounceRecord]] = field(default_factory=dict)


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
        every = parse(raw)
        records = [r for r in every if r.reason in BOUNCE_REASONS]
        links = raw_messages.events_of(conn, account, mid)
        accounted: set[int] = set()  # the records paired with what the message logged
        for link in links:
            if link.type != EventType.BOUNCE.value:
                continue
            record = _pair(records, link.recipient) if records else None
            if record is not None:
                accounted.add(id(record))
            if (only_reason and link.reason != only_reason) or link.reason == Reason.SUPPRESSED.value:
                continue
            # No bounce in the message any more (a false positive of an older engine): the event goes.
            if records and (record is None or record.reason.value == link.reason):
                continue
            reason = record.reason if record is not None else None
            c = Correction(mid, link.recipient, link.activity_id, link.reason, link.bounce_code,
                           reason.value if reason else None, str(bounce_code_for(reason)) if reason else None)
            if not dry_run:
                c.suppression_lifted = correct_event(conn, account, link, reason, policy)
                c.applied = True
            result.corrections.append(c)
        unmatched = raw_messages.unmatched_of(conn, account, mid)
        if not only_reason:  # a filter on the logged reason: nothing was logged for these
            known = {str(x.recipient).lower() for x in links} | {str(u.recipient).lower() for u in unmatched}
            new = [r for r in every if id(r) not in accounted and r.recipient.lower() not in known]
            if new:
                result.found[mid] = new
        if not records:
            result.corrections += [c for c in _drop_unmatched(conn, account, mid, dry_run)
                                   if not only_reason or c.old_reason == only_reason]
            continue
        by_email = {r.recipient.lower(): r.reason for r in records}
        result.corrections += [c for c in _correct_unmatched(conn, account, mid, by_email, None, dry_run)
                               if not only_reason or c.old_reason == only_reason]
    if not dry_run:
        _alerts_follow(conn, account, result.corrections)
    return result
