"""Postmark, SparkPost and Brevo: not signed, so basic auth (or a bearer token) on the endpoint;
every event type from their documented examples, batches, redeliveries, refusals."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from ..conftest import Account
from .support import basic, counts, endpoint, logged, sends

PASSWORD = "correct horse battery staple"


def postmark_records(s: list[Any]) -> list[dict[str, Any]]:
    a, b, c = s
    meta = {"mailtally_id": a.mailtally_id}
    return [
        {"RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound", "MessageID": "883953f4-1",
         "Recipient": a.email, "Tag": "welcome", "DeliveredAt": "2024-03-01T10:01:00.0000000-05:00",
         "Details": "Test delivery webhook details", "Metadata": meta},
        {"RecordType": "Open", "MessageStream": "outbound", "FirstOpen": True, "Client": {"Name": "Chrome"},
         "OS": {"Name": "OS X"}, "Platform": "Mobile", "UserAgent": "Mozilla/5.0", "ReadSeconds": 5,
         "Geo": {}, "MessageID": "883953f4-1", "Metadata": meta, "ReceivedAt": "2024-03-01T10:02:00Z",
         "Tag": "welcome", "Recipient": a.email},
        {"RecordType": "Click", "MessageStream": "outbound", "ClickLocation": "HTML", "Platform": "Desktop",
         "UserAgent": "Mozilla/5.0", "OriginalLink": "https://shop.example/sale", "MessageID": "883953f4-1",
         "ReceivedAt": "2024-03-01T10:03:00Z", "Tag": "welcome", "Recipient": a.email, "Metadata": meta},
        {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": "HardBounce", "TypeCode": 1,
         "Name": "Hard bounce", "Tag": "Test", "MessageID": "883953f4-2",
         "Metadata": {"mailtally_id": b.mailtally_id}, "ServerID": 23, "MessageStream": "outbound",
         "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
         "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
         "Email": b.email, "From": "sender@example.com", "BouncedAt": "2024-03-01T10:04:00Z",
         "DumpAvailable": True, "Inactive": True, "CanActivate": True, "Subject": "Test subject"},
        {"RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 100001,
         "Name": "Spam complaint", "Tag": "Test", "MessageID": "883953f4-3",
         "Metadata": {"mailtally_id": c.mailtally_id}, "ServerID": 1234, "MessageStream": "outbound",
         "Description": "", "Details": "Test spam complaint details", "Email": c.email,
         "From": "sender@example.com", "BouncedAt": "2024-03-01T10:05:00Z", "DumpAvailable": True,
         "Inactive": True, "CanActivate": False, "Subject": "Test subject"},
        {"RecordType": "SubscriptionChange", "MessageID": "883953f4-3", "ServerID": 23,
         "MessageStream": "outbound", "ChangedAt": "2024-03-01T10:06:00Z", "Recipient": c.email,
         "Origin": "Recipient", "SuppressSending": True, "SuppressionReason": "ManualSuppression",
         "Tag": "", "Metadata": {"mailtally_id": c.mailtally_id}},
        {"RecordType": "Bounce", "ID": 43, "Type": "AutoResponder", "TypeCode": 64, "Name": "Auto responder",
         "MessageID": "883953f4-4", "Metadata": meta, "Description": "", "Details": "",
         "Email": a.email, "BouncedAt": "2024-03-01T10:07:00Z"},
    ]


def test_postmark_every_record_type(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@pm.example", "bob@pm.example", "cy@pm.example"])
    path = endpoint(http, account, "postmark", PASSWORD)
    for record in postmark_records(s):
        r = http.post(path, content=orjson.dumps(record), headers=basic("mailtally", PASSWORD))
        assert r.status_code == 200, r.text
        assert r.json()["recorded"] == 1, (record["RecordType"], r.json())
    c = counts(http, account, s[0].activity_id)
    assert (c["opens"], c["opens_mobile"], c["clicks"], c["clicks_computer"], c["abuse"], c["optouts"]) == \
        (1, 1, 1, 1, 1, 1)
    # bob's hard bounce: user unknown from the diagnostic; ann's auto-reply: Postmark's class (no diagnostic).
    assert (c["bounces"], c["bounces_b"], c["bounces_v"]) == (2, 1, 1)
    assert ("delivery", None, None) in logged(engine, account, s[0].activity_id)
    # Postmark retries the same record: nothing counts twice.
    again = http.post(path, content=orjson.dumps(postmark_records(s)[3]), headers=basic("mailtally", PASSWORD))
    assert again.json()["duplicates"] == 1
    assert counts(http, account, s[0].activity_id) == c


def sparkpost_batch(s: list[Any]) -> list[dict[str, Any]]:
    a, b, c = s

    def msg(cls: str, kind: str, send: Any, n: int, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "event_id": f"92356927693813{n}", "timestamp": str(1709287200 + n),
                 "message_id": "0e0d94b7-9085-4e3c-ab30-e3f2cd9c273e", "transmission_id": "65832150921904138",
                 "rcpt_to": send.email, "raw_rcpt_to": send.email, "rcpt_meta": {"mailtally_id": send.mailtally_id},
                 "campaign_id": "Example Campaign Name", "customer_id": "1", "subaccount_id": "101"}
        event.update(fields)
        return {"msys": {cls: event}}

    return [
        msg("message_event", "injection", a, 1),
        msg("message_event", "delivery", a, 2, queue_time="12", num_retries="2"),
        msg("track_event", "initial_open", a, 3, user_agent="Mozilla/5.0"),
        msg("track_event", "click", a, 4, target_link_url="https://shop.example/sale"),
        msg("unsubscribe_event", "link_unsubscribe", a, 5),
        msg("message_event", "delay", b, 6, bounce_class="70", error_code="454",
            raw_reason="454 4.7.1 <recipient@example.com>: Relay access denied", reason="454 4.7.1 Relay"),
        msg("message_event", "bounce", b, 7, bounce_class="10", error_code="550",
            raw_reason="550 5.1.1 <bob@sp.example>... User unknown", reason="550 5.1.1 ...User unknown"),
        msg("message_event", "spam_complaint", c, 8, fbtype="abuse", report_by="server.email.com"),
        msg("message_event", "policy_rejection", c, 9, error_code="554",
            raw_reason="554 5.7.1 recipient address suppressed due to customer policy",
            reason="554 5.7.1 recipient address suppressed due to customer policy", bounce_class="25"),
        {"msys": {}},  # a ping
    ]


def test_sparkpost_batch_every_event_type(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@sp.example", "bob@sp.example", "cy@sp.example"])
    path = endpoint(http, account, "sparkpost", PASSWORD)
    body = orjson.dumps(sparkpost_batch(s))
    r = http.post(path, content=body, headers={"Authorization": f"Bearer {PASSWORD}",
                                               "Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 8  # the injection names a send already recorded
    c = counts(http, account, s[0].activity_id)
    assert (c["opens"], c["clicks"], c["optouts"], c["abuse"], c["bounces"], c["bounces_b"]) == (1, 1, 1, 1, 2, 1)
    log = logged(engine, account, s[0].activity_id)
    assert ("deferral", None, None) in log and ("bounce", "userunknown", "B") in log
    again = http.post(path, content=body, headers=basic("mailtally", PASSWORD))
    assert again.json()["duplicates"] == 9


def brevo_events(s: list[Any]) -> list[dict[str, Any]]:
    a, b, c = s

    def ev(event: str, send: Any, n: int, **fields: Any) -> dict[str, Any]:
        e = {"event": event, "email": send.email, "id": 26224, "date": "2024-03-01 11:00:00",
             "ts": 1709287200 + n, "message-id": "<201798300811.5787683@relay.domain.com>",
             "ts_event": 1709287200 + n, "subject": "Sale", "tag": "", "sending_ip": "185.41.28.109",
             "ts_epoch": (1709287200 + n) * 1000, "tags": [],
             "X-Mailin-custom": orjson.dumps({"mailtally_id": send.mailtally_id}).decode()}
        e.update(fields)
        return e

    return [
        ev("request", a, 1), ev("delivered", a, 2), ev("unique_opened", a, 3), ev("opened", a, 4),
        ev("unique_proxy_open", a, 5), ev("click", a, 6, link="https://shop.example/sale"), ev("unsubscribed", a, 7),
        ev("deferred", b, 8, reason="451 4.4.1 Temporary failure"),
        ev("hard_bounce", b, 9, reason="550 5.1.1 <bob@br.example>: Recipient address rejected: User unknown"),
        ev("spam", c, 10), ev("blocked", c, 11, reason="blocked : due to a previous hard bounce"),
    ]


def test_brevo_batched_every_event_type(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@br.example", "bob@br.example", "cy@br.example"])
    path = endpoint(http, account, "brevo", PASSWORD, username="brevo")
    body = orjson.dumps(brevo_events(s))
    r = http.post(path, content=body, headers=basic("brevo", PASSWORD))
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 10  # the request names a send already recorded
    c = counts(http, account, s[0].activity_id)
    assert (c["opens"], c["opens_all"], c["clicks"], c["optouts"], c["abuse"], c["bounces_b"]) == (1, 3, 1, 1, 1, 1)
    assert (c["opens_human"], c["opens_machine"]) == (2, 1)  # Brevo's unique_proxy_open: an image proxy's
    # One event alone (the unbatched shape) is read too, and a redelivery counts nothing.
    one = http.post(path, content=orjson.dumps(brevo_events(s)[8]), headers=basic("brevo", PASSWORD))
    assert one.json()["duplicates"] == 1


@pytest.mark.parametrize("provider", ["postmark", "sparkpost", "brevo"])
def test_wrong_or_missing_credentials_are_refused(http: httpx.Client, engine: Engine, account: Account,
                                                  other_account: Account, provider: str) -> None:
    s = sends(http, engine, account, ["ann@auth.example", "bob@auth.example", "cy@auth.example"])
    path = endpoint(http, account, provider, PASSWORD)
    theirs = endpoint(http, other_account, provider, "their password")
    body = orjson.dumps({"postmark": postmark_records, "sparkpost": sparkpost_batch,
                         "brevo": brevo_events}[provider](s)[1:2] if provider != "postmark"
                        else postmark_records(s)[1])
    for headers in [{}, basic("mailtally", "wrong"), basic("someone", PASSWORD), {"Authorization": "Bearer wrong"},
                    {"Authorization": "Basic !!!"}, basic("mailtally", "their password")]:
        r = http.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 401, (headers, r.text)
        assert r.headers["www-authenticate"].startswith("Basic")
    # Our credentials on the other account's endpoint: refused too.
    assert http.post(theirs, content=body, headers=basic("mailtally", PASSWORD)).status_code == 401
    assert counts(http, account, s[0].activity_id)["opens"] == 0
    # Malformed, with the right credentials: 400, nothing written.
    for bad in [b"{", b"[1, 2]", b'"text"']:
        r = http.post(path, content=bad, headers=basic("mailtally", PASSWORD))
        assert r.status_code == 400, (bad, r.text)
