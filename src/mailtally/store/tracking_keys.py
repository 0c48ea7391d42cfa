"""The tracking key ring, kept in the ``instance`` table.

Rows ``tracking_key:<id>`` hold a random salt; each key is derived from the instance secret
and its salt, so the database alone cannot sign. Key 0 needs no row. Rotating adds a key that
signs from then on; the old ones keep verifying until retired.
"""

from __future__ import annotations

import base64
import secrets

from sqlalchemy import Connection, delete, insert, select

from ..tracking.tokens import KeyRing, derive_key
from .schema import instance

_PREFIX = "tracking_key:"


def _salts(conn: Connection) -> dict[int, bytes]:
    rows = conn.execute(select(instance.c.key, instance.c.value).where(instance.c.key.like(_PREFIX + "%")))
    out = {0: b""}
    for key, value in rows:
        out[int(key[len(_PREFIX):])] = base64.urlsafe_b64decode(value)
    return out


def load_keyring(conn: Connection, secret: bytes) -> KeyRing:
    return KeyRing({kid: derive_key(secret, salt) for kid, salt in _salts(conn).items()})


def key_ids(conn: Connection) -> list[int]:
    return sorted(_salts(conn))


def rotate(conn: Connection) -> int:
    """A new signing key; returns its id."""
    kid = max(_salts(conn)) + 1
    conn.execute(insert(instance).values(key=f"{_PREFIX}{kid}",
                                         value=base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()))
    return kid


def retire(conn: Connection, kid: int) -> bool:
    """Forget an old key: tokens it signed stop verifying. The signing key cannot be retired."""
    if kid == max(_salts(conn)):
        raise ValueError(f"key {kid} signs new tokens; rotate first")
    if kid == 0:
        raise ValueError("key 0 is derived from the instance secret and cannot be retired")
    return bool(conn.execute(delete(instance).where(instance.c.key == f"{_PREFIX}{kid}")).rowcount)
