"""The suppression list and the per-account policy: tables and queries.

What suppresses is decided in ``suppression.policy``; this module only keeps the list.
Addresses are stored lower-cased. An entry whose ``expires_at`` has passed is ignored by every
query and replaced by the next suppression of the address.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, delete, or_, select

from ..alerts.rules import Rule, rules_from
from ..suppression.policy import Policy, PolicyError
from ..vocab import AlertKind, SuppressionReason, WebhookEvent
from . import outbox, rawsql
from .db import now_ms
from .schema import account_policies, instance, suppressions

# Values per IN list: SQLite since 3.32 takes 32,766 variables; fewer statements, less overhead.
BIG_CHUNK = 10_000

# Reasons an automatic suppression may replace: the weaker, temporary ones.
WEAK = frozenset({SuppressionReason.SOFT_BOUNCE.value, SuppressionReason.BLOCK.value})


@dataclass(frozen=True, slots=True)
class Entry:
    email: str
    reason: SuppressionReason
    suppressed_at: int
    expires_at: int | None = None
    activity_num: int | None = None  # the event that caused it, by the log's key
    idem: int | None = None
    note: str | None = None


COLUMNS = ("account_id", "email", "reason", "suppressed_at", "created_at", "expires_at", "activity_num", "idem",
           "note")


def _active(now: int) -> Any:
    return or_(suppressions.c.expires_at.is_(None), suppressions.c.expires_at > now)


def add(conn: Connection, account: int, entries: Sequence[Entry], *, replace: bool = False,
        now: int | None = None) -> list[Entry]:
    """Put ``entries`` on the list; returns those that were added or changed.

    An automatic suppression (``replace=False``) leaves a live entry alone unless that entry is
    a weaker, temporary one and the new one is not; a person's (``replace=True``: the API, an
    import) overwrites it.
    """
    if not entries:
        return []
    t = now or now_ms()
    emails = sorted({e.email.lower() for e in entries})
    sql = "SELECT email, reason, expires_at FROM suppressions WHERE account_id = {p} AND email IN ({in})"
    stored = {r[0]: (str(r[1]), r[2]) for r in rawsql.select_in(conn, sql, (account,), emails, chunk=BIG_CHUNK)}
    state = dict(stored)  # the (reason, expires_at) each address has, as the batch goes on
    changed_by: dict[str, Entry] = {}
    for e in entries:
        email = e.email.lower()
        old = state.get(email)
        if old is not None and not replace:
            live = old[1] is None or old[1] > t
            if live and not (old[0] in WEAK and e.reason.value not in WEAK):
                continue
        changed_by[email] = Entry(email, e.reason, e.suppressed_at, e.expires_at, e.activity_num, e.idem, e.note)
        state[email] = (e.reason.value, e.expires_at)
    changed = list(changed_by.values())
    if not changed:
        return []
    gone = [c.email for c in changed if c.email in stored]
    for i in range(0, len(gone), rawsql.CHUNK):
        conn.execute(delete(suppressions).where(suppressions.c.account_id == account,
                                                suppressions.c.email.in_(gone[i:i + rawsql.CHUNK])))
    rawsql.insert_many(conn, "suppressions", COLUMNS, [
        (account, c.email, c.reason.value, c.suppressed_at, t, c.expires_at, c.activity_num, c.idem, c.note)
        for c in changed])
    return changed


def remove(conn: Connection, account: int, email: str) -> Row[Any] | None:
    """Take an address off the list; returns the entry it had (None when it had none)."""
    row = get(conn, account, email, include_expired=True)
    if row is not None:
        conn.execute(delete(suppressions).where(suppressions.c.account_id == account,
                                                suppressions.c.email == email.lower()))
    return row


def put_by_person(conn: Connection, account: int, entry: Entry) -> Row[Any]:
    """A person suppresses an address (API or dashboard): it replaces any entry the address had,
    and subscribers hear of it. Returns the stored entry."""
    add(conn, account, [entry], replace=True, now=entry.suppressed_at)
    outbox.enqueue_one(conn, account, WebhookEvent.SUPPRESSION_ADDED, entry.suppressed_at,
                       outbox.suppression_data(entry))
    row = get(conn, account, entry.email, include_expired=True)
    assert row is not None
    return row


def remove_by_person(conn: Connection, account: int, email: str, removed_by: str) -> Row[Any] | None:
    """A person takes an address off the list (``removed_by``: "api", "dashboard"); subscribers
    hear of it. Returns the entry it had, None when it had none (and nothing is sent)."""
    gone = remove(conn, account, email)
    if gone is not None:
        outbox.enqueue_one(conn, account, WebhookEvent.SUPPRESSION_REMOVED, now_ms(),
                           {**outbox.suppression_data(gone), "removed_by": removed_by})
    return gone


def get(conn: Connection, account: int, email: str, *, include_expired: bool = False) -> Row[Any] | None:
    q = select(suppressions).where(suppressions.c.account_id == account, suppressions.c.email == email.lower())
    if not include_expired:
        q = q.where(_active(now_ms()))
    row: Row[Any] | None = conn.execute(q).first()
    return row


def page(conn: Connection, account: int, *, reason: str | None = None, search: str | None = None,
         after: str | None = None, limit: int = 100) -> list[Row[Any]]:
    """Live entries in address order from ``after`` (keyset); ``search`` matches part of the address."""
    q = select(suppressions).where(suppressions.c.account_id == account, _active(now_ms()))
    if reason:
        q = q.where(suppressions.c.reason == reason)
    if search:
        escaped = search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        q = q.where(suppressions.c.email.like(f"%{escaped}%", escape="\\"))
    if after is not None:
        q = q.where(suppressions.c.email > after)
    return list(conn.execute(q.order_by(suppressions.c.email).limit(limit)))


def every(conn: Connection, account: int, batch: int = 5000) -> Iterator[Row[Any]]:
    """Every live entry, in address order (the export)."""
    after: str | None = None
    while True:
        rows = page(conn, account, after=after, limit=batch)
        yield from rows
        if len(rows) < batch:
            return
        after = rows[-1].email


def check(conn: Connection, account: int, emails: Iterable[str]) -> list[tuple[str, str, int, int | None]]:
    """The live entries among ``emails``: (email, reason, suppressed_at, expires_at)."""
    wanted = sorted({e.lower() for e in emails})
    t = now_ms()
    out: list[tuple[str, str, int, int | None]] = []
    if not wanted:
        return out
    if conn.dialect.name == "postgresql":
        # One round trip with the whole list as an array.
        cursor = conn.connection.cursor()
        try:
            cursor.execute("SELECT email, reason, suppressed_at, expires_at FROM suppressions "
                           "WHERE account_id = %s AND email = ANY(%s) AND (expires_at IS NULL OR expires_at > %s)",
                           (account, wanted, t))
            out = [(r[0], r[1], int(r[2]), r[3]) for r in cursor.fetchall()]
        finally:
            cursor.close()
        return out
    sql = ("SELECT email, reason, suppressed_at, expires_at FROM suppressions WHERE account_id = {p} "
           "AND (expires_at IS NULL OR expires_at > {p}) AND email IN ({in})")
    for r in rawsql.select_in(conn, sql, (account, t), wanted, chunk=BIG_CHUNK):
        out.append((r[0], r[1], int(r[2]), r[3]))
    return out


def suppressed_contacts(
    conn: Connection, account: int, contact_nums: Sequence[int]
) -> dict[int, tuple[int, int | None]]:
    """Contacts (by number) whose address is suppressed: (suppressed_at, expires_at)."""
    if not contact_nums:
        return {}
    sql = ("SELECT c.num_id, s.suppressed_at, s.expires_at FROM suppressions s JOIN contacts c "
           "ON c.account_id = s.account_id AND c.email = s.email "
           "WHERE s.account_id = {p} AND c.num_id IN ({in})")
    nums = sorted(set(contact_nums))
    return {int(r[0]): (int(r[1]), r[2]) for r in rawsql.select_in(conn, sql, (account,), nums, chunk=BIG_CHUNK)}


def count_up_to(conn: Connection, account: int, limit: int) -> int:
    """How many entries the account has (expired ones too), counting no further than ``limit``:
    a walk of the key's first ``limit`` entries, whatever the list's size."""
    m = rawsql.mark(conn)
    return int(conn.exec_driver_sql(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM suppressions WHERE account_id = {m} LIMIT {m}) x",
        (account, limit)).scalar_one())


def caused_by(conn: Connection, account: int, activity_num: int, idem: int) -> list[Row[Any]]:
    return list(conn.execute(select(suppressions).where(
        suppressions.c.account_id == account, suppressions.c.activity_num == activity_num,
        suppressions.c.idem == idem)))


# -- the policy: the instance's default, each account's changes ---------------------------

INSTANCE_POLICY_KEY = "suppression_policy"


def instance_policy(conn: Connection) -> Policy:
    """The instance-wide default: the built-in one with the ``[suppression]`` table of the
    config ``serve`` started with (``set_instance_policy``)."""
    stored = conn.execute(select(instance.c.value).where(instance.c.key == INSTANCE_POLICY_KEY)).scalar()
    return Policy.from_dict(json.loads(stored)) if stored else Policy()


def set_instance_policy(conn: Connection, changes: Mapping[str, Any] | None) -> Policy:
    """Store the instance-wide default (``None``: the built-in one); raises ``PolicyError``.

    Kept in the database, so every process (API workers, the CLI, the bounce sources) applies
    the same default whatever it was started with.
    """
    policy = Policy.from_dict(changes or {})
    conn.execute(delete(instance).where(instance.c.key == INSTANCE_POLICY_KEY))
    if changes:
        conn.execute(instance.insert().values(key=INSTANCE_POLICY_KEY, value=json.dumps(dict(changes))))
    return policy


def _account_changes(conn: Connection, account: int) -> dict[str, Any]:
    stored = conn.execute(select(account_policies.c.suppression).where(
        account_policies.c.account_id == account)).scalar()
    return dict(stored) if stored else {}


def policy_for(conn: Connection, account: int) -> Policy:
    """The account's policy: the instance default with the fields the account changed."""
    return Policy.from_dict(_account_changes(conn, account), instance_policy(conn))


def settings_for(conn: Connection, account: int) -> tuple[Policy, dict[AlertKind, Rule]]:
    """The account's policy and its alert rules (``alerts.rules``), from one read of its row:
    what the writer's step needs once per batch."""
    row = conn.execute(select(account_policies.c.suppression, account_policies.c.alerts).where(
        account_policies.c.account_id == account)).first()
    changes = dict(row.suppression) if row is not None and row.suppression else {}
    return (Policy.from_dict(changes, instance_policy(conn)),
            rules_from(row.alerts if row is not None else None))


def save_policy(conn: Connection, account: int, policy: Policy) -> None:
    """Fix every field of the account's policy (none follows the instance default any more)."""
    _save_settings(conn, account, suppression=policy.to_dict())


def change_policy(conn: Connection, account: int, changes: Mapping[str, Any]) -> Policy:
    """Change some of the account's fields (``None`` for a field: back to the instance default);
    returns the policy now in force. Raises ``PolicyError`` and changes nothing on a bad field."""
    mine = _account_changes(conn, account)
    for key, value in changes.items():
        if value is None:
            if key not in Policy.__dataclass_fields__:
                raise PolicyError(key, "is not a policy field")
            mine.pop(key, None)
        else:
            mine[key] = value
    policy = Policy.from_dict(mine, instance_policy(conn))
    if changes:
        _save_settings(conn, account, suppression=mine)
    return policy


def _save_settings(conn: Connection, account: int, **values: Any) -> None:
    t = now_ms()
    key = account_policies.c.account_id == account
    if conn.execute(select(account_policies.c.account_id).where(key)).first() is None:
        conn.execute(account_policies.insert().values(account_id=account, updated_at=t, **values))
    else:
        conn.execute(account_policies.update().where(key).values(updated_at=t, **values))


def import_rows(conn: Connection, account: int, rows: Sequence[Any], chunk: int = 5000,
                progress: Any = None) -> int:
    """Write parsed CSV rows (``suppression.csvfile.Row``) over the list; one transaction is the caller's."""
    t = now_ms()
    n = 0
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        n += len(add(conn, account, [Entry(r.email, r.reason, r.suppressed_at or t, r.expires_at, note=r.note)
                                     for r in part], replace=True, now=t))
        if progress is not None:
            progress(len(part))
    return n
