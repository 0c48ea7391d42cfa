"""What follows from events as they land, in their transaction: one call from the writer.

- the suppression policy (``suppression.policy``) puts addresses on the list;
- a send to a suppressed address is recorded as a bounce, reason ``suppressed``, code S;
- alert rules (``alerts.rules``) are evaluated on the activities the batch touched;
- outgoing webhook deliveries are written to the outbox.

Every source goes through ``write_events``, so every source gets all of this.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection

from ..events import Event
from ..suppression.policy import DAY_MS, RESETS, Fact, Policy, counts_as_soft, decide
from ..vocab import BounceCode, EventType, Reason, SuppressionReason
from . import rawsql, staging, suppressions
from .suppressions import Entry

if TYPE_CHECKING:
    from .writer import WriteResult

SUPPRESSING = frozenset({EventType.BOUNCE, EventType.ABUSE, EventType.OPTOUT})  # what the policy reads
_ACTING = SUPPRESSING | {EventType.FORWARD}  # what the policy, alerts and the outbox look at
_ACTING_IN = ", ".join(f"'{t.value}'" for t in sorted(_ACTING))


class Landed(NamedTuple):
    """An event the log did not hold before, with its references resolved."""

    event: Event
    activity_num: int
    contact_id: str
    contact_num: int
    idem: int
    email: str  # the contact's address, as the suppression list and webhooks name it


# The staged (accepted) events the later steps act on: bounces, complaints, opt-outs, forwards,
# a few in a hundred, with each one's address (the contact row the stage resolved). Sends,
# opens and clicks (most of a batch) stay in the database.
_ACTING_SQL = (
    "SELECT s.n, s.activity_num, s.contact_num, s.idem, c.email FROM mt_stage s "
    + staging.left_join_one("contacts", "c", "c.account_id = {p} AND c.num_id = s.contact_num")
    + f" WHERE s.type IN ({_ACTING_IN}) ORDER BY s.n"
)
# The staged sends to addresses suppressed at the send's time, found by a probe per send; or,
# when the account's list is shorter than the batch's sends, by a probe per entry of the list
# (its contact by address, then the contact's sends in the stage: ``{nums}``, the activities).
_HELD_SENDS_SQL = (
    "SELECT s.n, s.activity_num, s.idem FROM mt_stage s "
    + staging.left_join_one("contacts", "c", "c.account_id = {p} AND c.num_id = s.contact_num") + " "
    + staging.left_join_one("suppressions", "x", "x.account_id = {p} AND x.email = c.email")
    + f" WHERE s.type = '{EventType.SEND.value}' AND x.suppressed_at <= s.occurred_at "
    "AND (x.expires_at IS NULL OR x.expires_at > s.occurred_at) ORDER BY s.n"
)
_HELD_BY_LIST_SQL = (
    "SELECT s.n, s.activity_num, s.idem FROM suppressions x "
    + staging.join_each("contacts", "c", "c.account_id = {p} AND c.email = x.email") + " "
    + staging.join_each("mt_stage", "s", f"s.activity_num IN ({{nums}}) AND s.contact_num = c.num_id "
                        f"AND s.type = '{EventType.SEND.value}'")
    + " WHERE x.account_id = {p} AND x.suppressed_at <= s.occurred_at "
    "AND (x.expires_at IS NULL OR x.expires_at > s.occurred_at) ORDER BY s.n"
)


def react(conn: Connection, account: int, result: WriteResult) -> None:
    """What follows from the batch ``write_events`` just recorded (its events still in ``mt_stage``)."""
    dialect = conn.dialect.name
    acting = []
    for n, a, c, i, email in rawsql.fetch(conn, staging.expand(_ACTING_SQL, dialect), (account,)):
        ev, contact_id = result.event(int(n))
        acting.append(Landed(ev, int(a), contact_id, int(c), int(i), email))
    held = []
    sends = sum(result._sends.values())
    # An entry of the list costs more to look at than a send (measured: 3x on SQLite, 1.5x on PostgreSQL).
    weight = 3 if dialect == "sqlite" else 1.5
    listed = suppressions.count_up_to(conn, account, int(sends / weight) + 1) if sends else 0
    if listed:
        sql = _HELD_SENDS_SQL if listed * weight > sends else \
            _HELD_BY_LIST_SQL.replace("{nums}", ", ".join(str(int(a)) for a in sorted(result._sends)))
        held = [(int(n), int(a), int(i)) for n, a, i in
                rawsql.fetch(conn, staging.expand(sql, dialect), (account, account))]
    if not acting and not held:
        return
    # Read everything from mt_stage above: recording the held sends' bounces stages again.
    from . import alerts, outbox

    # The account's settings, read once for the batch (policy and alert rules share a row).
    policy, rules = suppressions.settings_for(conn, account) if acting else (None, None)
    added = suppress(conn, account, policy, acting) \
        if policy is not None and any(x.event.type in SUPPRESSING for x in acting) else []
    _suppressed_sends(conn, account, result, held)
    fired = alerts.evaluate(conn, account, acting, rules) if rules is not None else []
    if added or fired or any(x.event.type in outbox.EVENT_NAMES for x in acting):
        outbox.enqueue(conn, account, acting, added, fired)


def _fact(ev: Event) -> Fact:
    code, reason = ev.bounce_code, ev.reason  # members already, unless a caller gave their values
    return Fact(ev.type, ev.occurred_at,
                code if code is None or type(code) is BounceCode else BounceCode(code) if code else None,
                reason if reason is None or type(reason) is Reason else Reason(reason) if reason else None)


def suppress(conn: Connection, account: int, policy: Policy, landed: Sequence[Landed],
             live_at: int | None = None) -> list[Entry]:
    """Apply the policy to the landed events; returns the entries added or changed. With
    ``live_at``, verdicts whose suppression has expired by then make no entry."""
    candidates = [(x, _fact(x.event)) for x in landed if x.event.type in SUPPRESSING]
    if not candidates:
        return []
    soft = [(x, f) for x, f in candidates if counts_as_soft(policy, f)]
    history = _history(conn, account, policy, soft) if soft else {}
    verdicts = []
    for x, f in candidates:
        verdict = decide(policy, f, history.get(x.contact_num, ()))
        if verdict is not None:
            verdicts.append((x, verdict))
    if not verdicts:
        return []
    verdicts.sort(key=lambda xv: xv[0].event.occurred_at)
    entries = [Entry(x.email, v.reason, x.event.occurred_at, v.expires_at, x.activity_num, x.idem)
               for x, v in verdicts
               if x.email and (live_at is None or v.expires_at is None or v.expires_at > live_at)]
    return suppressions.add(conn, account, entries)


def _history(conn: Connection, account: int, policy: Policy,
             soft: list[tuple[Landed, Fact]]) -> dict[int, list[Fact]]:
    """Each soft-bouncing contact's bounces and resets in the window (the log holds this batch already)."""
    since = min(f.occurred_at for _, f in soft) - policy.soft_window_days * DAY_MS
    until = max(f.occurred_at for _, f in soft)
    types = ",".join(f"'{t.value}'" for t in (EventType.BOUNCE, *sorted(RESETS)))
    sql = ("SELECT contact_num, type, occurred_at, bounce_code, reason FROM events WHERE account_id = {p} "
           f"AND occurred_at > {{p}} AND occurred_at <= {{p}} AND type IN ({types}) AND contact_num IN ({{in}})")
    out: dict[int, list[Fact]] = defaultdict(list)
    nums = sorted({x.contact_num for x, _ in soft})
    for num, kind, at, code, reason in rawsql.select_in(conn, sql, (account, since, until), nums):
        out[int(num)].append(Fact(EventType(kind), int(at), BounceCode(code) if code else None,
                                  Reason(reason) if reason else None))
    return out


def _suppressed_sends(conn: Connection, account: int, result: WriteResult,
                     held: Sequence[tuple[int, int, int]]) -> None:
    """Sends to suppressed addresses are kept, and reported as bounces: reason suppressed, code S."""
    bounces = []
    for n, activity_num, idem in held:
        send, contact_id = result.event(n)
        bounces.append(Event(
            EventType.BOUNCE, send.activity_id, send.occurred_at, contact_id, reason=Reason.SUPPRESSED,
            bounce_code=BounceCode.SUSPENDED, hard=True, diagnostic="address is on the suppression list",
            idempotency_key=f"suppressed:{activity_num}:{idem}",
        ))
    if bounces:
        from .writer import write_events

        write_events(conn, account, bounces)


__all__ = ["Landed", "SuppressionReason", "react", "suppress"]
