"""Provider events into Events of the sends they belong to, in the caller's transaction.

The send is found by, in order: our signed id (``mailtally_id``) the sender attached; a token
in the Message-ID; the recipient's most recent send of the account. A bounce or complaint
that matches nothing is kept as unmatched; other events that match nothing are only counted.
Each event's idempotency key is the provider's own event id, so a redelivery counts nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection

from ...events import Event
from ...store import hits, matching
from ...store import webhooks as store
from ...store.db import now_ms
from ...store.writer import write_events
from ...tracking.device import read_agent
from ...verp import SendRef, read_token
from ...vocab import (
    DeviceType,
    EventType,
    MachineCounting,
    ProviderEventKind,
    Reason,
    Verdict,
    VerdictWhy,
    bounce_code_for,
    counts_for_vendors,
    is_hard,
)
from .base import ProviderEvent, classify

log = logging.getLogger("mailtally.webhooks")
K = ProviderEventKind

# What each kind of provider event is in the tally; None: acknowledged, not recorded.
EVENT_TYPE: dict[ProviderEventKind, EventType | None] = {
    K.SENT: EventType.SEND,
    K.REJECTED: EventType.BOUNCE,
    K.DELIVERED: EventType.DELIVERY,
    K.DEFERRED: EventType.DEFERRAL,
    K.BOUNCED: EventType.BOUNCE,
    K.COMPLAINED: EventType.ABUSE,
    K.UNSUBSCRIBED: EventType.OPTOUT,
    K.OPENED: EventType.OPEN,
    K.CLICKED: EventType.CLICK,
    K.SUBSCRIBED: None,
    K.UNKNOWN: None,
}
# Matched only by our own id: the most recent send to an address is no evidence of a new send.
BY_TOKEN_ONLY = frozenset({K.SENT})
KEPT_UNMATCHED = frozenset({K.BOUNCED, K.REJECTED, K.COMPLAINED})


@dataclass(slots=True)
class Recorded:
    received: int = 0
    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "recorded": self.recorded, "duplicates": self.duplicates,
                "unmatched": self.unmatched, "ignored": self.ignored}


def _key(provider: str, event_id: str) -> str:
    return "wh" + hashlib.blake2b(f"{provider}|{event_id}".encode(), digest_size=20).hexdigest()


@lru_cache(maxsize=65536)
def _token(secret: bytes, value: str) -> SendRef | None:
    """``read_token``, remembered: a message's deliveries, opens and clicks carry the same id, and a
    signed token means the same thing every time."""
    return read_token(secret, value)


def _ref(secret: bytes, account: int, ev: ProviderEvent) -> SendRef | None:
    for value in (ev.mailtally_id, ev.message_id):
        if value and (ref := _token(secret, value)) is not None and ref.account_id == account:
            return ref
    return None


def record(conn: Connection, account: int, secret: bytes, provider: str, events: list[ProviderEvent]) -> Recorded:
    """Record ``events`` for ``account``; call inside a write transaction. Replaying changes nothing.

    Set-based: the sends our ids name, the recipients' latest sends and the links are each read
    in a statement or two for the whole batch, never one event at a time.
    """
    result = Recorded(received=len(events))
    wanted: list[tuple[ProviderEvent, EventType, SendRef | None]] = []
    kinds = EVENT_TYPE
    for ev in events:
        etype = kinds[ev.kind]
        if etype is None:
            result.ignored += 1
            log.info("%s webhook: %s event %r for %s acknowledged, not recorded", provider, ev.kind,
                     ev.provider_kind, ev.recipient)
        else:
            wanted.append((ev, etype, _ref(secret, account, ev)))
    sends = store.sends_by_numbers(conn, account, {(r.activity_num, r.contact_num) for _, _, r in wanted if r})
    # A provider's "sent" for a send already recorded adds nothing (the sends report lists the log's sends).
    sent = store.already_sent(conn, account, {(r.activity_num, r.contact_num) for ev, _, r in wanted
                                              if r is not None and ev.kind in BY_TOKEN_ONLY})

    # found: (event, type, activity id, contact id, matched by our id)
    found: list[tuple[ProviderEvent, EventType, str, str, bool]] = []
    by_recipient: list[tuple[ProviderEvent, EventType]] = []
    for ev, etype, hit in wanted:
        if hit is not None:
            info = sends.get((hit.activity_num, hit.contact_num))
            # One id names one recipient: trust it alone, or for the address it names.
            if info is not None and (ev.recipients_in_message == 1 or info.email == ev.recipient
                                     or info.email in ev.alternates):
                ev.recipient = info.email
                if ev.kind in BY_TOKEN_ONLY:
                    pair = (hit.activity_num, hit.contact_num)
                    if pair in sent:
                        result.duplicates += 1
                        continue
                    sent.add(pair)
                found.append((ev, etype, info.activity_id, info.contact_id, True))
                continue
        if ev.kind not in BY_TOKEN_ONLY and ev.recipient:
            by_recipient.append((ev, etype))
        else:
            _not_found(conn, account, provider, ev, result)
    if by_recipient:
        recent = matching.latest_sends_to(conn, account, {ev.recipient for ev, _ in by_recipient})
        for ev, etype in by_recipient:
            send = recent.get(ev.recipient)
            if send is None:
                _not_found(conn, account, provider, ev, result)
            else:
                found.append((ev, etype, *send, False))

    links = store.link_ids(conn, account, {a for ev, t, a, *_ in found if t is EventType.CLICK and ev.url})
    policy = hits.counting(conn, account) if any(ev.machine is not None for ev, *_ in found) else None
    batch = [_event(provider, ev, etype, activity, contact, links, policy, mine)
             for ev, etype, activity, contact, mine in found]
    if batch:
        written = write_events(conn, account, batch)
        result.recorded += written.accepted
        result.duplicates += written.duplicates
    return result


def _bounce(ev: ProviderEvent) -> tuple[Reason, str, str]:
    if ev.kind is K.COMPLAINED:
        return Reason.FEEDBACK, ev.status, ev.reply_code
    diagnostic = "" if ev.own_words else _neutral(ev.diagnostic, ev.recipient)
    return classify(ev.status, ev.reply_code, diagnostic, ev.provider_reason)


_NEUTRAL_LOCAL = "x"  # a local part no reason's pattern reads


def _neutral(diagnostic: str, recipient: str) -> str:
    """The diagnostic with the recipient's own address as ``x@<its domain>``: the verdict does not
    depend on whose mailbox it was, and the same words for every recipient are then one verdict,
    remembered (``classify``'s cache), instead of one reading of the engine per recipient."""
    low = diagnostic.lower()
    if not recipient or "@" not in recipient or recipient not in low:
        return diagnostic
    neutral = _NEUTRAL_LOCAL + recipient[recipient.rindex("@"):]
    if len(low) != len(diagnostic):  # lower-casing moved the offsets (rare letters): by pattern, compiled each time
        return re.sub(re.escape(recipient), lambda _: neutral, diagnostic, flags=re.IGNORECASE)
    parts: list[str] = []
    at = 0
    found = low.find(recipient)
    while found >= 0:
        parts += (diagnostic[at:found], neutral)
        at = found + len(recipient)
        found = low.find(recipient, at)
    parts.append(diagnostic[at:])
    return "".join(parts)


@lru_cache(maxsize=4096)
def _device(user_agent: str) -> DeviceType:
    return read_agent(user_agent).device


def _event(provider: str, ev: ProviderEvent, etype: EventType, activity: str, contact: str,
           links: dict[tuple[str, str], str], policy: tuple[MachineCounting, MachineCounting] | None,
           mine: bool) -> Event:
    out = Event(etype, activity, ev.occurred_at, contact, idempotency_key=_key(provider, ev.event_id))
    if mine:
        # Found by our id: a redelivery names the same send, type and time, so the log's own key
        # (activity, type, time, idem) refuses it, and the event needs no row in event_keys. The
        # idem is the keyed one, so events recorded before under the key are refused alike.
        out.hit_id, out.idempotency_key = out.idem(), None
    if etype is EventType.BOUNCE:
        reason, status, reply = _bounce(ev)
        code = bounce_code_for(reason)
        out.reason, out.bounce_code, out.hard = reason, code, is_hard(code)
        out.dsn_status, out.reply_code = status[:16] or None, reply[:8] or None
    elif etype is EventType.DELIVERY or etype is EventType.DEFERRAL:
        out.dsn_status = ev.status[:16] or None
        out.reply_code = ev.reply_code[:8] or None
    elif etype is EventType.OPEN or etype is EventType.CLICK:
        out.device_type = ev.device or (_device(ev.user_agent) if ev.user_agent else DeviceType.NONE)
        out.user_agent = ev.user_agent
        if etype is EventType.CLICK and ev.url:
            out.url_id = links.get((activity, ev.url))
        if ev.machine is not None and policy is not None:
            # The provider's own machine flag (SendGrid's sg_machine_open, Brevo's proxy opens): a proxy's open.
            verdict, why = (Verdict.MACHINE, VerdictWhy.PROVIDER_PROXY) if ev.machine else \
                (Verdict.HUMAN, VerdictWhy.NO_SIGNAL)
            out.verdict, out.verdict_why = verdict, why
            out.counted = counts_for_vendors(verdict, why, policy[1] if etype is EventType.CLICK else policy[0])
    elif etype is EventType.OPTOUT:
        out.optout_source = f"{provider} webhook"[:64]
        out.optout_reason = ev.optout_reason
    if etype is not EventType.OPEN and etype is not EventType.CLICK and etype is not EventType.SEND:
        out.diagnostic = ev.diagnostic or None
        out.remote_mta = ev.remote_mta[:255] or None
    return out


def _not_found(conn: Connection, account: int, provider: str, ev: ProviderEvent, result: Recorded) -> None:
    """An event of no send we know: a bounce or complaint is kept as unmatched, the rest only counted."""
    if ev.kind in KEPT_UNMATCHED:
        _keep_unmatched(conn, account, provider, ev, result)
    else:
        result.unmatched += 1


def _keep_unmatched(conn: Connection, account: int, provider: str, ev: ProviderEvent, result: Recorded) -> None:
    reason, status, reply = _bounce(ev)
    code = bounce_code_for(reason)
    kept = matching.keep_unmatched(conn, account, {
        "message_key": _key(provider, ev.event_id)[:64], "recipient": ev.recipient[:320], "received_at": now_ms(),
        "reason": reason.value, "bounce_code": code.value if code else None, "dsn_status": status[:16] or None,
        "reply_code": reply[:8] or None, "diagnostic": ev.diagnostic or None, "remote_mta": ev.remote_mta[:255] or None,
        "original_message_id": (ev.message_id or ev.provider_message_id or "")[:998] or None,
        "original_subject": None,
    })
    if kept:
        result.unmatched += 1
    else:
        result.duplicates += 1
