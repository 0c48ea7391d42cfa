"""Provider webhook endpoints, the signature tokens they have seen, and finding sends in bulk."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from . import rawsql
from .db import now_ms
from .schema import webhook_endpoints, webhook_tokens


@dataclass(frozen=True, slots=True)
class Endpoint:
    account_id: int
    id: str
    provider: str
    secret: str
    options: dict[str, Any] = field(default_factory=dict)
    created_at: int = 0


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(int(row.account_id), row.id, row.provider, row.secret or "", dict(row.options or {}),
                    int(row.created_at))


def create_endpoint(conn: Connection, account: int, provider: str, secret: str, options: dict[str, Any]) -> Endpoint:
    endpoint = Endpoint(account, "wh" + secrets.token_urlsafe(18), provider, secret, options, now_ms())
    conn.execute(insert(webhook_endpoints).values(
        account_id=account, id=endpoint.id, provider=provider, secret=secret, options=options,
        created_at=endpoint.created_at))
    return endpoint


def endpoint_by_id(conn: Connection, endpoint_id: str) -> Endpoint | None:
    """The endpoint a provider's request names; its account comes with it."""
    row = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).first()
    return _endpoint(row) if row else None


def list_endpoints(conn: Connection, account: int) -> list[Endpoint]:
    rows = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.account_id == account)
                        .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id))
    return [_endpoint(r) for r in rows]


def delete_endpoint(conn: Connection, account: int, endpoint_id: str) -> bool:
    gone = conn.execute(delete(webhook_endpoints).where(
        webhook_endpoints.c.account_id == account, webhook_endpoints.c.id == endpoint_id)).rowcount
    conn.execute(delete(webhook_tokens).where(
        webhook_tokens.c.account_id == account, webhook_tokens.c.endpoint_id == endpoint_id))
    return bool(gone)


def update_options(conn: Connection, endpoint: Endpoint, options: dict[str, Any]) -> None:
    conn.execute(webhook_endpoints.update().where(
        webhook_endpoints.c.account_id == endpoint.account_id, webhook_endpoints.c.id == endpoint.id,
    ).values(options=options))


def remember_token(conn: Connection, endpoint: Endpoint, token: str, keep_ms: int) -> bool:
    """Record a signature token; False when it was seen before (a replay).

    Tokens older than ``keep_ms`` are forgotten: the timestamp check refuses those requests anyway.
    """
    now = now_ms()
    conn.execute(delete(webhook_tokens).where(
        webhook_tokens.c.account_id == endpoint.account_id, webhook_tokens.c.endpoint_id == endpoint.id,
        webhook_tokens.c.seen_at < now - keep_ms))
    added = rawsql.insert_new(conn, "webhook_tokens", ("account_id", "endpoint_id", "token", "seen_at"),
                              [(endpoint.account_id, endpoint.id, token, now)])
    return added == 1


@dataclass(frozen=True, slots=True)
class SendInfo:
    activity_id: str
    contact_id: str
    email: str


def sends_by_numbers(
    conn: Connection, account: int, pairs: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], SendInfo]:
    """The (activity, contact) each pair of numeric ids names, with the contact's address, in two queries."""
    pairs = set(pairs)
    if not pairs:
        return {}
    acts = {int(r[0]): r[1] for r in rawsql.select_in(
        conn, "SELECT num_id, id FROM activities WHERE account_id = {p} AND num_id IN ({in})", (account,),
        sorted({a for a, _ in pairs}))}
    people = {int(r[0]): (r[1], r[2]) for r in rawsql.select_in(
        conn, "SELECT num_id, id, email FROM contacts WHERE account_id = {p} AND num_id IN ({in})", (account,),
        sorted({c for _, c in pairs}))}
    out = {}
    for a, c in pairs:
        if a in acts and c in people:
            out[(a, c)] = SendInfo(acts[a], people[c][0], people[c][1])
    return out


def already_sent(conn: Connection, account: int, pairs: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
    """Which (activity, contact) pairs are recorded as sent."""
    by_activity: dict[int, list[int]] = {}
    for a, c in set(pairs):
        by_activity.setdefault(a, []).append(c)
    out: set[tuple[int, int]] = set()
    sql = ("SELECT contact_num FROM recipients WHERE account_id = {p} AND activity_num = {p} "
           "AND sent_at IS NOT NULL AND contact_num IN ({in})")
    for a, contacts in by_activity.items():
        out.update((a, int(r[0])) for r in rawsql.select_in(conn, sql, (account, a), sorted(contacts)))
    return out


def link_ids(conn: Connection, account: int, activity_ids: Iterable[str]) -> dict[tuple[str, str], str]:
    """``(activity_id, url) -> url_id`` for the links of these activities."""
    wanted = sorted(set(activity_ids))
    if not wanted:
        return {}
    sql = "SELECT activity_id, url, url_id FROM links WHERE account_id = {p} AND activity_id IN ({in})"
    return {(r[0], r[1]): r[2] for r in rawsql.select_in(conn, sql, (account,), wanted)}
