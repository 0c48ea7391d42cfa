"""Accounts and their API credentials. Only a hash of a token is ever stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, insert, select

from ..vocab import Scope
from . import rawsql
from .db import now_ms
from .schema import accounts, api_tokens, instance

TOKEN_PREFIX = "mt_"


class UnknownAccount(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the account and the scopes of the token they showed."""

    account_id: int
    account_name: str
    scopes: frozenset[str]

    def can(self, scope: Scope | str) -> bool:
        return str(scope) in self.scopes or Scope.ADMIN.value in self.scopes


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_account(conn: Connection, name: str) -> int:
    existing = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).scalar()
    if existing is not None:
        return int(existing)
    result = conn.execute(insert(accounts).values(name=name, created_at=now_ms()))
    return int(result.inserted_primary_key[0])  # type: ignore[index]


def account_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).scalar()
    if found is None:
        raise UnknownAccount(name)
    return int(found)


def list_accounts(conn: Connection) -> list[tuple[int, str]]:
    return [(int(r.id), r.name) for r in conn.execute(select(accounts.c.id, accounts.c.name))]


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    known = {s.value for s in Scope}
    unknown = scopes - known
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
    if not scopes:
        raise ValueError("give at least one scope")
    return scopes


def create_token(conn: Connection, account: int, scopes: frozenset[str], name: str = "") -> str:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            account_id=account,
            token_hash=hash_token(token),
            name=name,
            scopes=",".join(sorted(scopes)),
            created_at=now_ms(),
        )
    )
    return token


def principal_for_token(conn: Connection, token: str) -> Principal | None:
    row = conn.execute(
        select(api_tokens.c.account_id, api_tokens.c.scopes, accounts.c.name)
        .join(accounts, accounts.c.id == api_tokens.c.account_id)
        .where(api_tokens.c.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    return Principal(int(row.account_id), row.name, frozenset(row.scopes.split(",")))


def allocate(conn: rawsql.Conn, account: int, sequence: str, n: int = 1) -> int:
    """Reserve ``n`` numbers of a per-account sequence; returns the first.

    The UPDATE also takes the account's row lock, which serialises writers of one account.
    Spelled out for the driver: every write pays for it, and building and compiling the
    statement each time cost ten times its run (630 against 65 us on SQLite, measured).
    """
    col = accounts.c[sequence].name  # only a column of the table: never a name from outside
    m = rawsql.mark(conn)
    sql = f"UPDATE accounts SET {col} = {col} + {m} WHERE id = {m} RETURNING {col}"
    if isinstance(conn, rawsql.Tx):
        last = rawsql.fetch(conn, sql, (n, account))[0][0]
    else:  # through SQLAlchemy, which begins its transaction first if it has not yet
        last = conn.exec_driver_sql(sql, (n, account)).scalar_one()
    return int(last) - n + 1


def instance_secret(conn: Connection) -> str:
    """The signing secret kept in the database when MAILTALLY_SECRET is not set."""
    found = conn.execute(select(instance.c.value).where(instance.c.key == "secret")).scalar()
    if found:
        return str(found)
    value = secrets.token_urlsafe(32)
    conn.execute(insert(instance).values(key="secret", value=value))
    return value


def signing_secret(conn: Connection, configured: str | None) -> str:
    """The instance's signing secret. A configured one (MAILTALLY_SECRET or MAILTALLY_SECRET_FILE)
    is never written to the database, and one stored there before is removed: whoever can read
    the database file must not be able to sign tokens, VERP addresses or cursors."""
    if configured:
        conn.execute(delete(instance).where(instance.c.key == "secret"))
        return configured
    return instance_secret(conn)


def count_accounts(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(accounts)).scalar_one())
