"""POST /v1/events: idempotent, all-or-nothing, bounded, and scoped to the caller's account."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from .conftest import Account, make_account
from .support.scenario import campaign_with_activity, post_events, seed_004


def stats(http: httpx.Client, account: Account, activity: str) -> dict[str, Any]:
    r = http.get(f"/v1/activities/{activity}/stats", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_replaying_a_batch_records_nothing_twice(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    batch = seed_004(activity)
    first = post_events(http, account.headers, batch)
    before = stats(http, account, activity)
    again = post_events(http, account.headers, batch)
    assert again == {"received": 31, "accepted": 0, "duplicates": 31, "contacts_created": 0}
    assert first["accepted"] == 31
    assert stats(http, account, activity)["counts"] == before["counts"]


def test_explicit_idempotency_keys(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    open_ = {"type": "open", "activity_id": activity, "email": "a@example.com", "occurred_at": "2024-01-01T00:00:00Z"}
    send = {"type": "send", "activity_id": activity, "email": "a@example.com", "occurred_at": "2024-01-01T00:00:00Z"}
    post_events(http, account.headers, [send])
    # Two opens at the same instant are two opens when their keys differ...
    r = post_events(http, account.headers, [{**open_, "idempotency_key": "k1"}, {**open_, "idempotency_key": "k2"}])
    assert r["accepted"] == 2
    # ...and a replayed key is accepted and not counted again, even with other content.
    r = post_events(http, account.headers, [{**open_, "idempotency_key": "k1", "device_type": "mobile"}])
    assert r == {"received": 1, "accepted": 0, "duplicates": 1, "contacts_created": 0}
    counts = stats(http, account, activity)["counts"]
    assert counts["opens_all"] == 2 and counts["opens"] == 1


def test_one_bad_item_rejects_the_whole_batch(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    batch = seed_004(activity)
    batch[3] = {**batch[3], "occurred_at": "yesterday"}
    batch[20] = {**batch[20], "type": "teleport"}
    batch[25] = {**batch[25], "device_type": "toaster"}
    r = http.post("/v1/events", json=batch, headers=account.headers)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_events"
    assert "nothing was recorded" in err["message"]
    assert {(d["index"], d["field"]) for d in err["details"]} == {
        (3, "occurred_at"), (20, "type"), (25, "device_type")}
    assert stats(http, account, activity)["counts"]["sends"] == 0
    # A batch naming an activity that does not exist is refused whole too.
    ghost = {**batch[0], "activity_id": "00000000-0000-4000-8000-000000000000"}
    r = http.post("/v1/events", json=[seed_004(activity)[0], ghost], headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["index"] == 1
    assert stats(http, account, activity)["counts"]["sends"] == 0


def test_ndjson_body(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    body = b"\n".join(orjson.dumps(e) for e in seed_004(activity)) + b"\n\n"
    r = http.post("/v1/events", content=body,
                  headers={**account.headers, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 31
    r = http.post("/v1/events", content=b'{"type": "send"}\n{not json',
                  headers={**account.headers, "Content-Type": "application/x-ndjson"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_body"
    assert "line 2" in r.json()["error"]["message"]


def test_oversized_batch_is_413(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    one = {"type": "send", "activity_id": activity, "email": "x@example.com", "occurred_at": 1}
    r = http.post("/v1/events", json=[one] * 2001, headers=account.headers)  # the test server allows 2000
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "batch_too_large"
    assert stats(http, account, activity)["counts"]["sends"] == 0


def test_auth_and_scopes(http: httpx.Client, account: Account, engine: Any) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    batch = seed_004(activity)[:1]
    assert http.post("/v1/events", json=batch).status_code == 401
    assert http.post("/v1/events", json=batch, headers={"Authorization": "Bearer nope"}).status_code == 401
    from mailtally.vocab import Scope

    reader = make_account(engine, (Scope.CAMPAIGN_DATA,))
    r = http.post("/v1/events", json=batch, headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


def test_another_accounts_activity_is_invisible(http: httpx.Client, account: Account, other_account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    post_events(http, account.headers, seed_004(activity))
    # The other account can neither read nor write to it: it does not exist for them.
    assert http.get(f"/v1/activities/{activity}/stats", headers=other_account.headers).status_code == 404
    r = http.post("/v1/events", json=seed_004(activity)[:1], headers=other_account.headers)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "activity_id"
    assert stats(http, account, activity)["counts"]["sends"] == 15


def test_malformed_json_and_wrong_shapes(http: httpx.Client, account: Account) -> None:
    r = http.post("/v1/events", content=b"[{", headers={**account.headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_body"
    r = http.post("/v1/events", json=[1, "two"], headers=account.headers)
    assert r.status_code == 400 and len(r.json()["error"]["details"]) == 2
    r = http.post("/v1/events", json=[], headers=account.headers)
    assert r.status_code == 200 and r.json()["accepted"] == 0


def test_nul_characters_are_refused_everywhere(http: httpx.Client, account: Account) -> None:
    """PostgreSQL cannot store NUL in text: refuse it up front, never a 500."""
    _, activity = campaign_with_activity(http, account.headers)
    r = http.post("/v1/events", json=[{"type": "bounce", "activity_id": activity, "email": "a@example.com",
                                       "occurred_at": 1, "reason": "blocked", "diagnostic": "bad\x00text"}],
                  headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "diagnostic"
    r = http.post("/v1/campaigns", json={"name": "a\x00b"}, headers=account.headers)
    assert r.status_code == 400 and r.json()["error"]["details"][0]["field"] == "name"
    r = http.post("/v1/contacts", json={"email": "x@example.com", "custom_fields": {"k": "v\x00"}},
                  headers=account.headers)
    assert r.status_code == 400
    # In a URL, each dialect answers in its own error shape.
    assert http.get("/v1/campaigns?after=%00", headers=account.headers).json()["error"]["code"] == "bad_request"
    r = http.get(f"/v3/reports/email_reports/{activity}/tracking/bounces?next=%00", headers=account.headers)
    assert r.status_code == 400 and isinstance(r.json(), list) and r.json()[0]["error_key"]
    r = http.get("/emailapi/v2/reports/event/bounce?email=a%00@b.example",
                 headers={"Authorization": f"Zoho-oauthtoken {account.token}"})
    assert r.status_code == 400


def test_deliveries_and_deferrals_are_history_not_counts(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    who = {"activity_id": activity, "email": "d@example.com"}
    post_events(http, account.headers, [
        {"type": "send", **who, "occurred_at": "2024-01-01T00:00:00Z"},
        {"type": "deferral", **who, "occurred_at": "2024-01-01T00:01:00Z", "status": "4.2.2",
         "diagnostic": "452 4.2.2 Mailbox full, try again later"},
        {"type": "delivery", **who, "occurred_at": "2024-01-01T00:30:00Z", "remote_mta": "mx.example.com"},
    ])
    counts = stats(http, account, activity)["counts"]
    assert counts["sends"] == 1
    assert counts["bounces"] == 0 and counts["not_opened"] == 1
    again = post_events(http, account.headers, [
        {"type": "delivery", **who, "occurred_at": "2024-01-01T00:30:00Z", "remote_mta": "mx.example.com"}])
    assert again["duplicates"] == 1


def test_bounce_given_as_the_smtp_reply(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    base = {"type": "bounce", "activity_id": activity, "occurred_at": "2024-05-01T12:01:00Z"}
    r = http.post("/v1/events", headers=account.headers, json=[
        {"type": "send", "activity_id": activity, "email": "gone@example.org", "occurred_at": "2024-05-01T12:00:00Z"},
        {**base, "email": "gone@example.org",
         "smtp_reply": "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"},
    ])
    assert r.status_code == 200, r.text
    counts = http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]
    assert counts["bounces_b"] == 1
    bad = http.post("/v1/events", headers=account.headers, json=[
        {**base, "email": "fine@example.org", "smtp_reply": "250 2.0.0 Ok"},
        {"type": "open", "activity_id": activity, "email": "fine@example.org", "occurred_at": 1, "smtp_reply": "x"},
    ])
    assert bad.status_code == 400
    assert [(d["index"], d["field"]) for d in bad.json()["error"]["details"]] == [(0, "smtp_reply"), (1, "smtp_reply")]
