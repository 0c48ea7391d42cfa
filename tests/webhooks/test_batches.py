"""Large provider batches: set-based lookups, one engine reading per distinct diagnostic, events
found by our id deduplicated by the log's own key (and those recorded under their key before),
and the garbage collector back on after every request."""

from __future__ import annotations

import gc
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine, text

from mailtally.events import Event
from mailtally.ingest.webhooks import sendgrid
from mailtally.ingest.webhooks.base import classify
from mailtally.ingest.webhooks.recording import _key, record
from mailtally.store import catalog
from mailtally.store.db import writing
from mailtally.store.writer import write_events
from mailtally.vocab import EventType

from ..conftest import TEST_SECRET, Account
from .support import SendGridKeys, counts, endpoint, logged, sends


def sg(event: str, email: str, n: int, mailtally_id: str | None = None, **fields: Any) -> dict[str, Any]:
    out = {"email": email, "timestamp": 1709287200 + n, "event": event, "sg_event_id": f"batch-{event}-{n}-{email}",
           "sg_message_id": f"m{n}.filter0001", **fields}
    if mailtally_id:
        out["mailtally_id"] = mailtally_id
    return out


def post(http: httpx.Client, path: str, keys: SendGridKeys, events: list[dict[str, Any]]) -> httpx.Response:
    body = orjson.dumps(events)
    return http.post(path, content=body, headers=keys.sign(body))


def test_bounce_verdicts_are_read_once_per_diagnostic_whoever_the_recipient(
        http: httpx.Client, engine: Engine, account: Account) -> None:
    emails = [f"r{i}@gone.example" for i in range(40)]
    s = sends(http, engine, account, emails)
    keys = SendGridKeys()
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    # As mail servers write it: each recipient's own address inside the same words.
    batch = [sg("bounce", x.email, i, x.mailtally_id, status="5.1.1", type="bounce",
                reason=f"550 5.1.1 <{x.email.upper()}>... User unknown") for i, x in enumerate(s)]
    classify.cache_clear()
    r = post(http, path, keys, batch)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 40
    assert classify.cache_info().misses == 1  # one reading of the engine for the 40
    assert set(logged(engine, account, s[0].activity_id)) == {("send", None, None), ("bounce", "userunknown", "B")}
    # What is stored is each recipient's own diagnostic, untouched.
    with engine.connect() as conn:
        kept = {row[0] for row in conn.execute(text(
            "SELECT diagnostic FROM events WHERE account_id = :a AND type = 'bounce'"), {"a": account.id})}
    assert kept == {f"550 5.1.1 <{e.upper()}>... User unknown" for e in emails}


def test_events_without_our_id_find_their_sends_in_statements_per_batch_not_per_event(
        http: httpx.Client, engine: Engine, account: Account) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("statements are counted with SQLite's trace callback")
    emails = [f"p{i}@many.example" for i in range(60)]
    sends(http, engine, account, emails)
    keys = SendGridKeys()
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    endpoint_id = path.rsplit("/", 1)[1]

    def statements(n: int, first: int) -> int:
        """SQL statements recording ``n`` opens found by recipient alone takes (the writer's excluded)."""
        body = orjson.dumps([sg("open", e, first + i, useragent="Mozilla/5.0") for i, e in enumerate(emails[:n])])
        events = sendgrid.receive(_request(endpoint_id, engine, body, keys)).events
        seen: list[str] = []
        import mailtally.ingest.webhooks.recording as recording

        real = recording.write_events
        with writing(engine) as conn:
            raw = conn.connection.dbapi_connection
            raw.set_trace_callback(seen.append)  # type: ignore[union-attr]
            written: list[int] = []

            def stop_counting(*args: Any, **kwargs: Any) -> Any:
                raw.set_trace_callback(None)  # type: ignore[union-attr]
                written.append(len(args[2]))
                return real(*args, **kwargs)

            recording.write_events = stop_counting  # type: ignore[assignment]
            try:
                result = record(conn, account.id, TEST_SECRET.encode(), "sendgrid", events)
            finally:
                recording.write_events = real  # type: ignore[assignment]
                raw.set_trace_callback(None)  # type: ignore[union-attr]
        assert result.recorded == n and written == [n]
        return len(seen)

    assert statements(5, 1000) == statements(60, 2000)


def _request(endpoint_id: str, engine: Engine, body: bytes, keys: SendGridKeys) -> Any:
    import time

    from mailtally.config import Settings
    from mailtally.ingest.webhooks.base import HookRequest
    from mailtally.store import webhooks as store

    with engine.connect() as conn:
        ep = store.endpoint_by_id(conn, endpoint_id)
    assert ep is not None
    headers = {k.lower(): v for k, v in keys.sign(body).items()}
    return HookRequest(ep, body, headers, Settings(secret=TEST_SECRET), time.time())


def test_redelivered_events_count_nothing_found_by_id_by_recipient_or_recorded_under_their_key_before(
        http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@r.example", "bob@r.example", "cy@r.example"])
    keys = SendGridKeys()
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    by_id = sg("open", s[0].email, 1, s[0].mailtally_id, useragent="Mozilla/5.0", sg_machine_open=False)
    by_recipient = sg("click", s[1].email, 2, url="https://shop.example/sale", useragent="Mozilla/5.0")
    earlier = sg("open", s[2].email, 3, s[2].mailtally_id, useragent="Mozilla/5.0")
    # ``earlier`` as this module recorded events before: under the provider's key, with a row in event_keys.
    with engine.connect() as conn:
        contact = catalog.contact_by_email(conn, account.id, s[2].email)
    assert contact is not None
    with writing(engine) as conn:
        assert write_events(conn, account.id, [Event(
            EventType.OPEN, s[2].activity_id, earlier["timestamp"] * 1000, contact.id,
            idempotency_key=_key("sendgrid", earlier["sg_event_id"]))]).accepted == 1
    first = post(http, path, keys, [by_id, by_recipient, earlier])
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 3, "recorded": 2, "duplicates": 1, "unmatched": 0, "ignored": 0}
    before = counts(http, account, s[0].activity_id)
    # SendGrid's retry: the same events, signed anew (another request), and the same events again in
    # a batch of other ones.
    again = post(http, path, keys, [by_id, by_recipient, earlier])
    assert again.json() == {"received": 3, "recorded": 0, "duplicates": 3, "unmatched": 0, "ignored": 0}
    mixed = post(http, path, keys, [earlier, sg("open", s[1].email, 4, s[1].mailtally_id), by_id, by_recipient])
    assert mixed.json()["recorded"] == 1 and mixed.json()["duplicates"] == 3
    after = counts(http, account, s[0].activity_id)
    assert after["opens_all"] == before["opens_all"] + 1 and after["clicks"] == before["clicks"] == 1


def test_the_collector_is_back_on_after_every_request(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["gc@g.example"])
    keys = SendGridKeys()
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    assert gc.isenabled()
    assert post(http, path, keys, [sg("open", s[0].email, 1, s[0].mailtally_id)]).status_code == 200
    assert gc.isenabled()
    body = b"[{]"
    assert http.post(path, content=body, headers=keys.sign(body)).status_code == 400
    assert gc.isenabled()
    assert http.post(path, content=body, headers=SendGridKeys().sign(body)).status_code == 403
    assert post(http, path, keys, [{"event": "open"}]).status_code == 400
    assert gc.isenabled()
