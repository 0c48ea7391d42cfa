"""Postfix and Exim log lines into bounce events (and deferrals for a contact's history).

A delivery line names only a queue id and a recipient. The send is found through the
queue id: the ``message-id=`` (Postfix cleanup) or ``id=`` (Exim arrival) of the message, or
its VERP sender, carries our signed token; failing that, the recipient's most recent send;
failing that, a bounce is kept as unmatched. The reason comes from the ``dsn=`` status and
the remote reply by `bounces.classify`, the same judge as for bounce messages.

`LogReader` is pure (lines in, records out, with the queue state it must remember);
`record` writes a batch of records inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection

from ..bounces.replies import Reply, reply_reason, split_reply
from ..events import Event
from ..store import matching
from ..store import sources as source_state
from ..store.db import now_ms
from ..store.writer import write_events
from ..verp import read_token
from ..vocab import EventType, Reason, bounce_code_for, is_hard

FORMATS = ("auto", "postfix", "exim")

_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                        "Dec"), 1)}
# `Feb  2 12:34:56 host postfix/smtp[12345]: ` (RFC 3164) or `2024-02-02T12:34:56.123+01:00 host postfix/smtp[1]: `
_POSTFIX = re.compile(
    r"(?P<ts>(?P<mon>[A-Z][a-z]{2}) {1,2}(?P<day>\d{1,2}) (?P<hms>\d\d:\d\d:\d\d)"
    r"|(?P<iso>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:?\d\d)?))"
    r" \S{1,255} [\w.-]{1,64}/(?P<svc>[\w.-]{1,32})(?:\[\d{1,10}\])?: (?P<qid>[0-9A-Za-z]{5,20}): (?P<msg>.*)"
)
_DELIVERY = re.compile(
    r"to=<(?P<to>[^>]{0,320})>,(?: orig_to=<[^>]{0,320}>,)? relay=(?P<relay>[^,]{0,300}),"
    r".*? (?:dsn=(?P<dsn>\d\.\d{1,3}\.\d{1,3}), )?status=(?P<status>sent|deferred|bounced|expired|undeliverable)"
    r"(?:, returned to sender)?(?: \((?P<text>.*)\))?$"
)
_MESSAGE_ID = re.compile(r"(?:resent-)?message-id=<?(?P<mid>[^>\s]{0,998})>?")
_FROM = re.compile(r"from=<(?P<from>[^>]{0,320})>, (?:size=|status=expired)")
# Exim: `2011-05-31 17:08:25 [+0200] [[pid]] 1QRQYT-00033F-G2 ** rest` (ids of Exim >= 4.97 are longer)
_EXIM = re.compile(
    r"(?P<date>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?)(?: (?P<tz>[+-]\d{4}))?(?: \[\d{1,10}\])?"
    r" (?P<id>[0-9A-Za-z]{6}-[0-9A-Za-z]{6,11}-[0-9A-Za-z]{2,4}) (?P<flag><=|=>|->|\*>|\*\*|==) (?P<rest>.*)"
)
_EXIM_MID = re.compile(r" id=(?P<mid>\S{1,998})")
_TOKENISH = re.compile(r"mt[a-z2-7]{16,60}", re.IGNORECASE)
_MAX_QUEUE = 200_000


@dataclass(slots=True)
class LogRecord:
    kind: str  # "bounce", "deferral", "delivery", or "ref" (a queue id carries this token text)
    at: int  # UTC milliseconds
    queue_id: str
    recipient: str = ""
    status: str = ""
    text: str = ""
    relay: str = ""
    expired: bool = False


@dataclass(slots=True)
class LogReader:
    """Reads lines one at a time, remembering per queue id what later lines need."""

    format: str = "auto"
    now: float = field(default_factory=time.time)
    refs: OrderedDict[str, str] = field(default_factory=OrderedDict)
    deferred: OrderedDict[str, dict[str, LogRecord]] = field(default_factory=OrderedDict)
    # Queue ids whose message this reader saw arrive: a delivery of one not in `refs` is not ours.
    # A delivery of a queue id it never saw (queued before a restart) may be: `record` asks the store.
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _year_cache: dict[tuple[int, int], int] = field(default_factory=dict)
    _times: dict[str, int] = field(default_factory=dict)  # timestamp text -> ms: a log repeats each second
    _pending: list[LogRecord] = field(default_factory=list)

    def read(self, line: str) -> LogRecord | None:
        """The record one line makes, if any (see `take_pending` for the rare line that makes more)."""
        exim = self.format == "exim" or (self.format == "auto" and line[4:5] == "-" and line[10:11] == " ")
        return self._exim(line) if exim else self._postfix(line)

    def read_all(self, lines: Iterable[str]) -> list[LogRecord]:
        out = []
        for line in lines:
            rec = self.read(line)
            if rec is not None:
                out.append(rec)
                if self._pending:
                    out.extend(self.take_pending())
        return out

    # -- Postfix --------------------------------------------------------------------------------
    def _postfix(self, line: str) -> LogRecord | None:
        if not ("status=" in line or "message-id=" in line or "from=<" in line or ": removed" in line):
            return None
        m = _POSTFIX.match(line)
        if m is None:
            return None
        qid, msg = m.group("qid", "msg")
        if msg.startswith("to=<"):
            d = _DELIVERY.match(msg)
            if d is None:
                return None
            status = d.group("status")
            rec = LogRecord("", self._when(m), qid, d.group("to").lower(), d.group("dsn") or "", d.group("text") or "",
                            d.group("relay"))
            if status == "sent":
                if qid not in self.refs and qid in self.seen:
                    return None
                rec.kind = "delivery"
            elif status == "deferred":
                rec.kind = "deferral"
                self._remember_deferral(qid, rec)
            else:  # bounced, expired, undeliverable
                rec.kind, rec.expired = "bounce", status == "expired"
                self.deferred.get(qid, {}).pop(rec.recipient, None)
            return rec
        if msg == "removed":
            self.refs.pop(qid, None)
            self.deferred.pop(qid, None)
            self.seen.pop(qid, None)
            return None
        if msg.startswith(("message-id=", "resent-message-id=")):
            self._saw(qid)
            mid = _MESSAGE_ID.match(msg)
            return self._ref(qid, mid.group("mid") if mid else "", m)
        f = _FROM.match(msg)
        if f is None:
            return None
        if "status=expired" in msg:
            # The message expired as a whole: each recipient still deferred bounces now, as expired.
            waiting = self.deferred.pop(qid, {})
            at = self._when(m)
            if not waiting:
                # Deferred before a restart (or never seen deferred): its recipients are not known here.
                # Our mail names its one recipient in its token (this line's VERP sender, or the queue id's
                # earlier lines, kept in the store): `record` finds it through the queue id.
                whole = LogRecord("bounce", at, qid, expired=True)
                ref = self._ref(qid, f.group("from"), at)
                if ref is None:
                    return whole
                self._pending = [whole]
                return ref
            first, *rest = waiting.values()
            self._pending = [LogRecord("bounce", at, qid, r.recipient, r.status, r.text, r.relay, True)
                             for r in rest]
            return LogRecord("bounce", at, qid, first.recipient, first.status, first.text, first.relay, True)
        self._saw(qid)
        return self._ref(qid, f.group("from"), m)

    def take_pending(self) -> list[LogRecord]:
        """Records beyond the one `read` returned (the other recipients of an expired message)."""
        out, self._pending = self._pending, []
        return out

    def _remember_deferral(self, qid: str, rec: LogRecord) -> None:
        waiting = self.deferred.get(qid)
        if waiting is None:
            waiting = self.deferred[qid] = {}
            if len(self.deferred) > _MAX_QUEUE:
                self.deferred.popitem(last=False)
        waiting[rec.recipient] = rec

    def _saw(self, qid: str) -> None:
        if qid not in self.seen:
            self.seen[qid] = None
            if len(self.seen) > _MAX_QUEUE:
                self.seen.popitem(last=False)

    def _ref(self, qid: str, text: str, when: re.Match[str] | int) -> LogRecord | None:
        if not text or _TOKENISH.search(text) is None:
            return None
        self.refs[qid] = text
        if len(self.refs) > _MAX_QUEUE:
            self.refs.popitem(last=False)
        return LogRecord("ref", when if isinstance(when, int) else self._when(when), qid, text=text)

    def _when(self, m: re.Match[str]) -> int:
        ts = m.group("ts")
        found = self._times.get(ts)
        if found is None:
            found = self._times_of(m)
            if len(self._times) > 4096:
                self._times.clear()
            self._times[ts] = found
        return found

    def _times_of(self, m: re.Match[str]) -> int:
        mon_name, day_text, hms, iso = m.group("mon", "day", "hms", "iso")
        if iso:
            return _iso_ms(iso)
        mon, day = _MONTHS.get(mon_name, 1), int(day_text)
        year = self._year(mon, day)
        h, mi, s = (int(x) for x in hms.split(":"))
        try:
            # Syslog writes the machine's local time without a year or zone: read it as local time.
            return int(datetime(year, mon, day, h, mi, s).timestamp() * 1000)
        except ValueError:
            return int(self.now * 1000)

    def _year(self, mon: int, day: int) -> int:
        """RFC 3164 has no year: this year, unless that date is more than a day ahead (then last year)."""
        found = self._year_cache.get((mon, day))
        if found is None:
            now = datetime.fromtimestamp(self.now)
            found = now.year
            try:
                if (datetime(found, mon, day) - now).total_seconds() > 86_400:
                    found -= 1
            except ValueError:  # 29 February of a year that has none
                found -= 1
            self._year_cache[(mon, day)] = found
        return found

    # -- Exim -----------------------------------------------------------------------------------
    def _exim(self, line: str) -> LogRecord | None:
        m = _EXIM.match(line)
        if m is None:
            return None
        flag, rest, qid = m.group("flag"), m.group("rest"), m.group("id")
        at = _iso_ms(m.group("date").replace(" ", "T") + (m.group("tz") or ""))
        if flag == "<=":
            self._saw(qid)
            sender = rest.split(" ", 1)[0]
            mid = _EXIM_MID.search(rest)
            text = " ".join(x for x in (sender, mid.group("mid") if mid else "") if x)
            return self._ref(qid, text, at)
        if flag not in ("**", "==", "=>"):
            return None
        recipient = rest.split(" ", 1)[0].strip("<>:").lower()
        head, sep, text = rest.partition(": ")
        if flag == "=>":
            if qid not in self.refs and qid in self.seen:
                return None
            return LogRecord("delivery", at, qid, recipient, "", "", _field(head, "H="))
        relay = _field(rest, "H=")
        kind = "bounce" if flag == "**" else "deferral"
        return LogRecord(kind, at, qid, recipient, "", text if sep else rest, relay)


def _field(text: str, name: str) -> str:
    i = text.find(" " + name)
    return text[i + len(name) + 1:].split(" ", 1)[0] if i >= 0 else ""


def _iso_ms(text: str) -> int:
    t = text.replace("Z", "+00:00")
    if len(t) > 5 and t[-5] in "+-" and t[-3] != ":":
        t = t[:-2] + ":" + t[-2:]
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        return now_ms()
    return int(dt.timestamp() * 1000)  # without a zone: the machine's local time, as the MTA wrote it


@dataclass(slots=True)
class Counts:
    lines: int = 0
    bounces: int = 0
    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0
    deferrals: int = 0
    deliveries: int = 0
    without_send: int = 0  # deferrals and deliveries of mail we cannot tie to a send: not kept

    def add(self, other: Counts) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _key(*parts: str) -> str:
    return "l" + hashlib.blake2b("|".join(parts).encode(), digest_size=20).hexdigest()


def _host(relay: str) -> str:
    host = relay.split("[", 1)[0]
    return "" if host in ("none", "local", "") else host[:255]


def record(conn: Connection, account: int, secret: bytes, source: str, records: list[LogRecord],
           refs: dict[str, str] | None = None) -> Counts:
    """Write a batch inside the caller's transaction; replaying the same lines records nothing twice.

    Set-based: the queue ids, sends and contacts the whole batch needs are read in a few
    statements per 500, not one lookup per line (`refs` is what the reader still remembers).
    """
    counts = Counts()
    events: list[Event] = []
    sends = _Sends(conn, account, secret, source, records, refs if refs is not None else {})
    for rec in records:
        if rec.kind == "ref":
            continue
        found = sends.of(rec)
        if found is _NOT_OURS:  # a delivery of mail that carried no token of ours
            continue
        send = found if isinstance(found, tuple) else None
        day = datetime.fromtimestamp(rec.at / 1000).strftime("%Y-%m-%d")
        if rec.kind == "bounce":
            counts.bounces += 1
            reply = split_reply(rec.text)
            status = rec.status or reply.status
            reason = Reason.EXPIRED if rec.expired else reply_reason(
                Reply(reply.reply_code, status, reply.diagnostic, reply.command), rec.recipient, _host(rec.relay))
            if reason is Reason.DELIVERED:
                reason = Reason.UNDEFINED
            code = bounce_code_for(reason)
            if send is None:
                if matching.keep_unmatched(conn, account, {
                    "message_key": _key("log", rec.queue_id, day)[:32], "recipient": rec.recipient[:320],
                    "received_at": now_ms(), "reason": reason.value, "bounce_code": code.value if code else None,
                    "dsn_status": status[:16] or None, "reply_code": reply.reply_code[:8] or None,
                    "diagnostic": rec.text[:4000] or None, "remote_mta": _host(rec.relay) or None,
                    "original_message_id": None, "original_subject": None,
                }):
                    counts.unmatched += 1
                else:
                    counts.duplicates += 1
                continue
            events.append(Event(
                EventType.BOUNCE, send[0], rec.at, send[1], reason=reason, bounce_code=code,
                hard=is_hard(code) if code else None, dsn_status=status[:16] or None,
                reply_code=reply.reply_code[:8] or None, diagnostic=rec.text[:4000] or None,
                remote_mta=_host(rec.relay) or None, idempotency_key=_key("bounce", rec.queue_id, rec.recipient, day),
            ))
            continue
        etype = EventType.DEFERRAL if rec.kind == "deferral" else EventType.DELIVERY
        if etype is EventType.DEFERRAL:
            counts.deferrals += 1
        else:
            counts.deliveries += 1
        if send is None:
            counts.without_send += 1
            continue
        said = split_reply(rec.text)
        events.append(Event(
            etype, send[0], rec.at, send[1], dsn_status=(rec.status or said.status)[:16] or None,
            reply_code=said.reply_code[:8] or None, diagnostic=rec.text[:4000] or None,
            remote_mta=_host(rec.relay) or None,
            idempotency_key=_key(rec.kind, rec.queue_id, rec.recipient, str(rec.at)),
        ))
    if events:
        written = write_events(conn, account, events)
        counts.recorded += written.accepted
        counts.duplicates += written.duplicates
    return counts


_NOT_OURS = object()


class _Sends:
    """The send of each record of a batch: through its queue id's token, else the recipient's latest send.

    Everything the batch needs is read up front: the tokens of queue ids the reader no longer
    remembers (from before a restart), the sends and contacts those tokens name, and the latest
    send of each recipient left over. The batch's own token lines are stored for later batches.
    """

    def __init__(self, conn: Connection, account: int, secret: bytes, source: str, records: list[LogRecord],
                 refs: dict[str, str]) -> None:
        ours: dict[str, tuple[str, int]] = {}
        self.tokens: dict[str, tuple[int, int] | None] = {}
        for rec in records:
            if rec.kind == "ref":
                ref = read_token(secret, rec.text)
                if ref is not None and ref.account_id == account:
                    ours[rec.queue_id] = (rec.text, rec.at)
                    if refs.get(rec.queue_id, rec.text) == rec.text:
                        self.tokens[rec.queue_id] = (ref.activity_num, ref.contact_num)
        if ours:
            source_state.remember_queue_refs(conn, source, ours)
        texts = {q: t for q, (t, _) in ours.items()}
        asked = {r.queue_id for r in records if r.kind != "ref" and r.queue_id not in refs and r.queue_id not in texts}
        stored = source_state.queue_refs(conn, source, asked) if asked else {}
        for rec in records:
            qid = rec.queue_id
            if rec.kind == "ref" or qid in self.tokens:
                continue
            text = refs.get(qid) or texts.get(qid) or stored.get(qid)
            ref = read_token(secret, text) if text else None
            self.tokens[qid] = (ref.activity_num, ref.contact_num) if ref and ref.account_id == account else None
        self.numbered = matching.sends_by_numbers(conn, account, {t for t in self.tokens.values() if t})
        self.had_text = {q for q in self.tokens if q in refs or q in texts or q in stored}
        leftover = {r.recipient for r in records if r.kind in ("bounce", "deferral") and r.recipient
                    and self._by_token(r) is None}
        self.latest = matching.latest_sends_to(conn, account, leftover) if leftover else {}

    def _by_token(self, rec: LogRecord) -> matching.Send | None:
        token = self.tokens.get(rec.queue_id)
        found = self.numbered.get(token) if token else None
        if found is not None and found[2] == rec.recipient:
            return found[0], found[1]
        return None

    def of(self, rec: LogRecord) -> matching.Send | object | None:
        if not rec.recipient:  # a whole message expired whose recipients this reader never saw deferred
            token = self.tokens.get(rec.queue_id)
            named = self.numbered.get(token) if token else None
            if named is None:
                return _NOT_OURS
            rec.recipient = named[2]  # so its key is the one a per-recipient line of it makes
            return named[0], named[1]
        send = self._by_token(rec)
        if send is not None:
            return send
        if rec.kind == "delivery":
            # Only deliveries of our mail are kept: one whose queue id carried no token is not ours.
            return None if rec.queue_id in self.had_text else _NOT_OURS
        return self.latest.get(rec.recipient) if rec.recipient else None
