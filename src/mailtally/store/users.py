"""Dashboard users: an address and an argon2 hash of a password, in one account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Select, insert, select, update

from .accounts import UnknownAccount, account_id
from .db import now_ms
from .schema import accounts, users

_hasher = PasswordHasher()
MIN_PASSWORD = 10
# Verified when the address is unknown, so a wrong address costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class UserExists(ValueError):
    pass


class WeakPassword(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    account_id: int
    account_name: str
    email: str
    session_epoch: int


def normalise_email(email: str) -> str:
    return email.strip().lower()


def create_user(conn: Connection, account_name: str, email: str, password: str) -> User:
    """Raises UnknownAccount, UserExists or WeakPassword."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 320:
        raise ValueError(f"{email!r} is not an email address")
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD} characters")
    acc = account_id(conn, account_name)
    if conn.execute(select(users.c.account_id).where(users.c.email == email)).first() is not None:
        raise UserExists(f"a user {email} exists")
    conn.execute(insert(users).values(account_id=acc, email=email, password_hash=_hasher.hash(password),
                                      session_epoch=0, created_at=now_ms()))
    return User(acc, account_name, email, 0)


def set_password(conn: Connection, email: str, password: str) -> bool:
    """A new password; ends the user's sessions. False when there is no such user."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD} characters")
    result = conn.execute(update(users).where(users.c.email == normalise_email(email)).values(
        password_hash=_hasher.hash(password), session_epoch=users.c.session_epoch + 1))
    return bool(result.rowcount)


def _select() -> Select[Any]:
    return select(users.c.account_id, accounts.c.name, users.c.email, users.c.session_epoch,
                  users.c.password_hash).join(accounts, accounts.c.id == users.c.account_id)


def authenticate(conn: Connection, email: str, password: str) -> User | None:
    """The user whose address and password these are, or None."""
    row = conn.execute(_select().where(users.c.email == normalise_email(email))).first()
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if row is None:
        return None
    conn.execute(update(users).where(users.c.account_id == row.account_id, users.c.email == row.email)
                 .values(last_login_at=now_ms()))
    return User(int(row.account_id), row.name, row.email, int(row.session_epoch))


def get_user(conn: Connection, account: int, email: str) -> User | None:
    row = conn.execute(_select().where(users.c.account_id == account, users.c.email == email)).first()
    return User(int(row.account_id), row.name, row.email, int(row.session_epoch)) if row else None


def end_sessions(conn: Connection, account: int, email: str) -> None:
    conn.execute(update(users).where(users.c.account_id == account, users.c.email == email)
                 .values(session_epoch=users.c.session_epoch + 1))


def list_users(conn: Connection, account_name: str) -> list[str]:
    acc = account_id(conn, account_name)
    return list(conn.execute(select(users.c.email).where(users.c.account_id == acc).order_by(users.c.email)).scalars())


__all__ = ["UnknownAccount", "User", "UserExists", "WeakPassword", "authenticate", "create_user", "end_sessions",
           "get_user", "list_users", "set_password"]
