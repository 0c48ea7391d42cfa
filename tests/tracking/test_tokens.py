"""Tracking tokens: signed, opaque, kind-bound, and still valid after a key rotation."""

from __future__ import annotations

import base64

from mailtally.store.db import open_engine, writing
from mailtally.store.migrate import upgrade
from mailtally.store.tracking_keys import key_ids, load_keyring, retire, rotate
from mailtally.tracking.tokens import HitRef, KeyRing, Kind, derive_key

SECRET = b"instance-secret"
RING = KeyRing({0: derive_key(SECRET, b"")})


def test_round_trip_and_no_address() -> None:
    ref = HitRef(Kind.CLICK, 7, 12, 345678, "4")
    token = RING.sign(ref)
    assert RING.verify(token, Kind.CLICK) == ref
    assert "@" not in token and "example" not in token
    assert RING.verify(token, Kind.OPEN) is None  # a click token is no pixel or unsubscribe token
    assert RING.verify(RING.sign(HitRef(Kind.OPEN, 7, 12, 9)), Kind.OPEN) == HitRef(Kind.OPEN, 7, 12, 9)


def test_forged_truncated_and_junk() -> None:
    token = RING.sign(HitRef(Kind.UNSUBSCRIBE, 1, 2, 3))
    for bad in (token[:-1], token[:-4], token[1:], token + "A", token.replace(token[5], "A" if token[5] != "A"
                else "B"), "", "x" * 1000, "%00", "../../etc", token + "=", "AAAA"):
        assert RING.verify(bad, Kind.UNSUBSCRIBE) is None, bad
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i in range(len(token)):  # any one character changed, the last one's spare bits included
        for c in alphabet:
            if c != token[i]:
                assert RING.verify(token[:i] + c + token[i + 1:], Kind.UNSUBSCRIBE) is None, (i, c)
    other = KeyRing({0: derive_key(b"another-instance", b"")})
    assert other.verify(token, Kind.UNSUBSCRIBE) is None
    # A token altered to name another account keeps no valid signature.
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[2] ^= 1
    assert RING.verify(base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode(), Kind.UNSUBSCRIBE) is None


def test_rotation_keeps_old_tokens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = open_engine(f"sqlite:///{tmp_path / 'k.db'}")
    upgrade(engine)
    with writing(engine) as conn:
        before = load_keyring(conn, SECRET)
        old = before.sign(HitRef(Kind.OPEN, 1, 2, 3))
        assert rotate(conn) == 1
        after = load_keyring(conn, SECRET)
    new = after.sign(HitRef(Kind.OPEN, 1, 2, 3))
    assert after.key_id(old) == 0 and after.key_id(new) == 1
    assert after.verify(old, Kind.OPEN) == after.verify(new, Kind.OPEN) == HitRef(Kind.OPEN, 1, 2, 3)
    assert before.verify(new, Kind.OPEN) is None  # a process that has not reloaded does not know key 1 yet
    with writing(engine) as conn:
        rotate(conn)
        assert retire(conn, 1)
        ring = load_keyring(conn, SECRET)
        assert key_ids(conn) == [0, 2]
    assert ring.verify(new, Kind.OPEN) is None and ring.verify(old, Kind.OPEN) is not None
    # Keys derive from the instance secret: the same database with another secret verifies nothing.
    with engine.connect() as conn:
        assert load_keyring(conn, b"other").verify(old, Kind.OPEN) is None
