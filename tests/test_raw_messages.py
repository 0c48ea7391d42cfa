"""Raw bounce messages kept: compressed, once per content, capped, linked, viewable, pruned."""

from __future__ import annotations

import zlib

import httpx
from sqlalchemy import Engine, select

from mailtally.store import raw_messages
from mailtally.store.schema import raw_messages as raw_table

from .conftest import Account
from .support.mail import ORDINARY, dsn
from .support.scenario import campaign_with_activity, post_events

RFC822 = {"Content-Type": "message/rfc822"}


def post(http: httpx.Client, account: Account, raw: bytes) -> dict[str, object]:
    r = http.post("/v1/bounces", content=raw, headers={**account.headers, **RFC822})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_posted_message_is_kept_once_and_shown_with_its_events(
    http: httpx.Client, account: Account, other_account: Account, engine: Engine
) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    post_events(http, account.headers, [{"type": "send", "activity_id": activity, "email": "kept@remote.example",
                                         "occurred_at": "2024-03-01T10:00:00Z"}])
    raw = dsn("kept@remote.example")
    first = post(http, account, raw)
    again = post(http, account, raw)
    assert isinstance(first["id"], int) and again["id"] == first["id"]

    assert http.get(f"/v1/bounces/{first['id']}/raw", headers=account.headers).content == raw
    shown = http.get(f"/v1/bounces/{first['id']}", headers=account.headers).json()
    assert shown["size"] == len(raw) and shown["truncated"] is False and shown["records"] == 1
    assert [p["recipient"] for p in shown["parsed"]] == ["kept@remote.example"]
    assert [(e["activity_id"], e["email"], e["type"], e["bounce_code"]) for e in shown["events"]] == [
        (activity, "kept@remote.example", "bounce", "B")]
    listed = http.get("/v1/bounces", headers=account.headers).json()["bounces"]
    assert [m["id"] for m in listed] == [first["id"]]

    # Stored compressed, not as sent.
    with engine.connect() as conn:
        packed = conn.execute(select(raw_table.c.body).where(raw_table.c.account_id == account.id)).scalar_one()
    assert packed != raw and zlib.decompress(packed) == raw and len(packed) < len(raw)

    # Another account sees none of it, and storing the same bytes there is its own message.
    assert http.get(f"/v1/bounces/{first['id']}", headers=other_account.headers).status_code == 404
    assert http.get(f"/v1/bounces/{first['id']}/raw", headers=other_account.headers).status_code == 404
    assert http.get("/v1/bounces", headers=other_account.headers).json()["bounces"] == []


def test_unmatched_and_ordinary_messages_are_kept_too(http: httpx.Client, account: Account) -> None:
    body = post(http, account, dsn("nobody-sent@remote.example"))
    shown = http.get(f"/v1/bounces/{body['id']}", headers=account.headers).json()
    assert shown["events"] == [] and [u["recipient"] for u in shown["unmatched"]] == ["nobody-sent@remote.example"]
    plain = post(http, account, ORDINARY)
    assert plain["is_bounce"] is False
    shown = http.get(f"/v1/bounces/{plain['id']}", headers=account.headers).json()
    assert shown["records"] == 0 and shown["parsed"] == []


def test_bad_ids_get_the_v1_error_shape(http: httpx.Client, account: Account) -> None:
    for path in ("/v1/bounces/999999999", "/v1/bounces/abc", "/v1/bounces/0/raw", "/v1/bounces/-1"):
        r = http.get(path, headers=account.headers)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert "error" in r.json() and "code" in r.json()["error"]
    assert http.get("/v1/bounces/1", headers={}).status_code == 401


def test_size_cap_and_retention(engine: Engine, account: Account) -> None:
    big = b"Subject: big\r\n\r\n" + b"0123456789" * 1000
    with engine.begin() as conn:
        kept = raw_messages.keep(conn, account.id, big, source="test", cap=1000, received_at=1_000)
        recent = raw_messages.keep(conn, account.id, b"Subject: new\r\n\r\nx", source="test")
    with engine.connect() as conn:
        row = raw_messages.get(conn, account.id, kept.id)
        assert row is not None and row.truncated and row.size == len(big)
        assert raw_messages.body(conn, account.id, kept.id) == big[:1000]
    with engine.begin() as conn:
        assert raw_messages.prune(conn, retention_days=90, account=account.id) == 1
    with engine.connect() as conn:
        assert raw_messages.get(conn, account.id, kept.id) is None
        assert raw_messages.get(conn, account.id, recent.id) is not None
