"""Alerts: the rules per account, and the alerts fired (tables and queries).

An alert fires once per (activity, kind): while its row is live (not re-armed) the rule is
not evaluated again for that activity. Re-arming lets it fire again on the next event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, select, update

from ..alerts.rules import Rule, fires, measure, rules_from
from ..vocab import AlertKind, EventType
from .accounts import allocate
from .db import now_ms
from .schema import COUNTER_COLUMNS, account_policies, activity_counters, alerts
from .suppressions import _save_settings

if TYPE_CHECKING:
    from .reactions import Landed

# Only these can raise a rate; a batch of sends, opens or clicks is not evaluated.
RAISES = frozenset({EventType.BOUNCE, EventType.ABUSE, EventType.OPTOUT})


@dataclass(frozen=True, slots=True)
class Fired:
    id: int
    activity_id: str
    kind: AlertKind
    rate: float
    threshold: float
    sends: int
    count: int
    fired_at: int


def rules_for(conn: Connection, account: int) -> dict[AlertKind, Rule]:
    stored = conn.execute(select(account_policies.c.alerts).where(account_policies.c.account_id == account)).scalar()
    return rules_from(stored)


def save_rules(conn: Connection, account: int, rules: dict[AlertKind, Rule]) -> None:
    _save_settings(conn, account, alerts={k.value: r.to_dict() for k, r in rules.items()})


def evaluate(conn: Connection, account: int, landed: Sequence[Landed],
             rules: dict[AlertKind, Rule] | None = None) -> list[Fired]:
    """Fire the rules the landed events make true (``rules``: the account's, when already read)."""
    touched = sorted({x.event.activity_id for x in landed if x.event.type in RAISES})
    return _evaluate(conn, account, touched, rules, clear=False)[0] if touched else []


def follow(conn: Connection, account: int, activity_ids: Iterable[str]) -> tuple[list[Fired], list[int]]:
    """After a correction moved these activities' counters: each rule is evaluated again, so a
    rule now true fires (subscribers hear ``alert.fired``), and a live alert whose condition no
    longer holds is re-armed (``rearmed_by`` "correction"). Returns (fired, re-armed ids)."""
    touched = sorted(set(activity_ids))
    if not touched:
        return [], []
    fired, cleared = _evaluate(conn, account, touched, None, clear=True)
    if fired:
        from . import outbox

        outbox.enqueue(conn, account, (), (), fired)
    return fired, cleared


def _evaluate(conn: Connection, account: int, touched: Sequence[str], rules: dict[AlertKind, Rule] | None,
              clear: bool) -> tuple[list[Fired], list[int]]:
    rules = {k: r for k, r in (rules if rules is not None else rules_for(conn, account)).items() if r.enabled}
    if not rules:
        return [], []
    live = {(r.activity_id, r.kind): int(r.id) for r in conn.execute(
        select(alerts.c.id, alerts.c.activity_id, alerts.c.kind).where(
            alerts.c.account_id == account, alerts.c.activity_id.in_(touched), alerts.c.rearmed_at.is_(None)))}
    counters = {r.activity_id: r._mapping for r in conn.execute(
        select(activity_counters).where(activity_counters.c.account_id == account,
                                        activity_counters.c.activity_id.in_(touched)))}
    fired: list[Fired] = []
    cleared: list[int] = []
    t = now_ms()
    for activity_id in touched:
        c = counters.get(activity_id)
        if c is None:
            continue
        values = {k: int(c[k]) for k in COUNTER_COLUMNS}
        for kind, rule in rules.items():
            rate = fires(kind, rule, values)
            held = live.get((activity_id, kind.value))
            if held is not None:
                if clear and rate is None:
                    cleared.append(held)
                continue
            if rate is None:
                continue
            n, sends = measure(kind, values)
            alert = Fired(allocate(conn, account, "seq_event"), activity_id, kind, round(rate, 4), rule.threshold,
                          sends, n, t)
            conn.execute(alerts.insert().values(
                account_id=account, id=alert.id, activity_id=activity_id, kind=kind.value, rate=alert.rate,
                threshold=alert.threshold, sends=sends, count=n, fired_at=t))
            fired.append(alert)
    if cleared:
        conn.execute(update(alerts).where(alerts.c.account_id == account, alerts.c.id.in_(cleared))
                     .values(rearmed_at=t, rearmed_by="correction"))
    return fired, cleared


def page(conn: Connection, account: int, *, activity_id: str | None = None, live_only: bool = False,
         before: int | None = None, limit: int = 100) -> list[Row[Any]]:
    """Alerts, newest first (keyset on id)."""
    q = select(alerts).where(alerts.c.account_id == account)
    if activity_id:
        q = q.where(alerts.c.activity_id == activity_id)
    if live_only:
        q = q.where(alerts.c.rearmed_at.is_(None))
    if before is not None:
        q = q.where(alerts.c.id < before)
    return list(conn.execute(q.order_by(alerts.c.id.desc()).limit(limit)))


def rearm(conn: Connection, account: int, alert_id: int) -> Row[Any] | None:
    """Let the alert's rule fire again for its activity; returns the alert (None when unknown)."""
    key = (alerts.c.account_id == account) & (alerts.c.id == alert_id)
    row: Row[Any] | None = conn.execute(select(alerts).where(key)).first()
    if row is not None and row.rearmed_at is None:
        conn.execute(update(alerts).where(key).values(rearmed_at=now_ms(), rearmed_by="person"))
        row = conn.execute(select(alerts).where(key)).first()
    return row
