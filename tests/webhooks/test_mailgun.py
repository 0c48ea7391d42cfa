"""Mailgun webhooks: HMAC-signed event-data, tokens refused when shown twice, every event type."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import orjson
from sqlalchemy import Engine

from ..conftest import Account
from .support import counts, endpoint, logged, mailgun_body, now, sends

KEY = "key-" + secrets.token_hex(16)
JSON = {"Content-Type": "application/json"}


def event_data(event: str, send: Any, n: int, **fields: Any) -> dict[str, Any]:
    """Shaped like Mailgun's documented webhook payloads."""
    data: dict[str, Any] = {
        "event": event, "id": f"G9Bn5sl1TC6nu79C8C0bwg{n}", "timestamp": 1709287200.529892 + n,
        "log-level": "info", "recipient": send.email, "recipient-domain": send.email.split("@")[1],
        "tags": ["newsletter"], "user-variables": {"mailtally_id": send.mailtally_id},
        "message": {"headers": {"to": send.email, "message-id": "20240301100000.1.ABC@mg.example.com",
                                "from": "Shop <news@mg.example.com>", "subject": "Sale"}, "size": 1234},
        "envelope": {"transport": "smtp", "sender": "bounce@mg.example.com", "targets": send.email},
    }
    data.update(fields)
    return data


def post(http: httpx.Client, path: str, data: dict[str, Any], **kw: Any) -> httpx.Response:
    return http.post(path, content=mailgun_body(KEY, data, **kw), headers=JSON)


def test_every_event_type(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@mg.example", "bob@mg.example", "cy@mg.example"])
    path = endpoint(http, account, "mailgun", KEY)
    a, b, c = s
    events = [
        event_data("accepted", a, 1, method="HTTP"),
        event_data("delivered", a, 2, **{"delivery-status": {"code": 250, "message": "OK", "description": ""}}),
        event_data("opened", a, 3, **{"client-info": {"client-type": "browser", "user-agent": "Mozilla/5.0"}}),
        event_data("clicked", a, 4, url="https://shop.example/sale"),
        event_data("unsubscribed", a, 5),
        event_data("failed", b, 6, severity="temporary", reason="generic",
                   **{"delivery-status": {"code": 452, "message": "4.2.2 mailbox temporarily over quota",
                                          "attempt-no": 1}}),
        event_data("failed", b, 7, severity="permanent", reason="bounce",
                   **{"delivery-status": {"code": 550, "enhanced-code": "5.1.1", "attempt-no": 1,
                                          "message": "5.1.1 The email account that you tried to reach does not "
                                                     "exist. Please try double-checking the recipient's email "
                                                     "address for typos", "description": ""}}),
        event_data("complained", c, 8),
        event_data("failed", c, 9, severity="permanent", reason="suppress-bounce",
                   **{"delivery-status": {"code": 605, "message": "", "description": "Not delivering to "
                                          "previously bounced address"}}),
        event_data("rejected", c, 10, reject={"reason": "", "description": ""}),
    ]
    results = [post(http, path, e) for e in events]
    assert [r.status_code for r in results] == [200] * len(events), [r.text for r in results]
    cnt = counts(http, account, a.activity_id)
    assert (cnt["opens"], cnt["clicks"], cnt["optouts"], cnt["abuse"]) == (1, 1, 1, 1)
    assert (cnt["bounces"], cnt["bounces_b"]) == (2, 1)
    log = logged(engine, account, a.activity_id)
    assert ("deferral", None, None) in log and ("delivery", None, None) in log
    assert ("bounce", "userunknown", "B") in log
    # Suppressed by Mailgun: no server diagnostic, so Mailgun's own reason decides.
    assert ("bounce", "suppressed", "S") in log


def test_replayed_and_forged_signatures_are_refused(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@mr.example"])[0]
    path = endpoint(http, account, "mailgun", KEY)
    body = mailgun_body(KEY, event_data("opened", s, 1))
    assert http.post(path, content=body, headers=JSON).status_code == 200
    # The same signed request again (the signature does not cover the body, so a second showing
    # could carry anything): refused, and 406 tells Mailgun not to retry.
    again = http.post(path, content=body, headers=JSON)
    assert again.status_code == 406 and again.json()["error"]["code"] == "replayed"
    swapped = orjson.loads(body)
    swapped["event-data"] = event_data("complained", s, 2)
    assert http.post(path, content=orjson.dumps(swapped), headers=JSON).status_code == 406
    forged = mailgun_body("key-wrong", event_data("complained", s, 3))
    assert http.post(path, content=forged, headers=JSON).status_code == 403
    expired = mailgun_body(KEY, event_data("complained", s, 4), timestamp=now() - 10 * 3600)
    assert http.post(path, content=expired, headers=JSON).status_code == 401
    # A retry an hour later, signed then, is still taken (Mailgun retries for 8 hours).
    late = mailgun_body(KEY, event_data("opened", s, 6), timestamp=now() - 3600)
    assert http.post(path, content=late, headers=JSON).status_code == 200
    unsigned = orjson.dumps({"event-data": event_data("complained", s, 5)})
    assert http.post(path, content=unsigned, headers=JSON).status_code == 401
    cnt = counts(http, account, s.activity_id)
    assert (cnt["opens"], cnt["opens_all"], cnt["abuse"]) == (1, 2, 0)


def test_malformed_event_data_is_a_400(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@mm.example"])[0]
    path = endpoint(http, account, "mailgun", KEY)
    for data in [{"event": "opened"}, {**event_data("opened", s, 1), "timestamp": "noon"}]:
        r = post(http, path, data)
        assert r.status_code == 400, r.text
    r = http.post(path, content=mailgun_body(KEY, event_data("opened", s, 2))[:-5], headers=JSON)
    assert r.status_code == 400
    assert counts(http, account, s.activity_id)["opens"] == 0
