"""SendGrid's Event Webhook: every event type in a signed batch, redeliveries, forgeries, and
SendGrid's own verifier (PyPI ``sendgrid``) agreeing with ours."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from ..conftest import Account
from .support import SendGridKeys, counts, endpoint, logged, now, sends, unmatched


def sg(event: str, send: Any, n: int, **fields: Any) -> dict[str, Any]:
    """One event shaped like SendGrid's documented examples, custom arg ``mailtally_id`` flattened in."""
    base = {"email": send.email, "timestamp": 1709287200 + n, "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
            "event": event, "category": ["newsletter"], "sg_event_id": f"sg-event-{event}-{n}-{send.email}",
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            "mailtally_id": send.mailtally_id}
    base.update(fields)
    return base


def every_type(s: list[Any]) -> list[dict[str, Any]]:
    a, b, c = s
    return [
        sg("processed", a, 1),
        sg("delivered", a, 2, response="250 OK", ip="168.1.1.1"),
        sg("open", a, 3, useragent="Mozilla/5.0", ip="255.255.255.255", sg_machine_open=False),
        sg("open", a, 4, useragent="Mozilla/5.0 (Macintosh)", sg_machine_open=True),
        sg("click", a, 5, useragent="Mozilla/5.0", url="https://shop.example/sale", url_offset={"index": 0}),
        sg("unsubscribe", a, 6),
        sg("deferred", b, 7, response="400 try again later", attempt="5"),
        sg("bounce", b, 8, reason="550 5.1.1 The email account that you tried to reach does not exist.",
           status="5.1.1", type="bounce", bounce_classification="Invalid Address"),
        sg("spamreport", c, 9),
        sg("group_unsubscribe", c, 10, asm_group_id=10),
        sg("group_resubscribe", c, 11, asm_group_id=10),
        sg("dropped", c, 12, reason="Bounced Address", status="5.0.0"),
        sg("some_future_event", c, 13),
    ]


@pytest.fixture
def keys() -> SendGridKeys:
    return SendGridKeys()


def post(http: httpx.Client, path: str, keys: SendGridKeys, events: Any, ts: int | None = None) -> httpx.Response:
    body = orjson.dumps(events)
    return http.post(path, content=body, headers=keys.sign(body, ts))


def test_every_event_type_in_one_batch(http: httpx.Client, engine: Engine, account: Account,
                                       keys: SendGridKeys) -> None:
    s = sends(http, engine, account, ["ann@x.example", "bob@x.example", "cy@x.example"])
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    r = post(http, path, keys, every_type(s))
    assert r.status_code == 200, r.text
    # "processed" names a send already recorded: it adds nothing.
    assert r.json() == {"received": 13, "recorded": 10, "duplicates": 1, "unmatched": 0, "ignored": 2}
    c = counts(http, account, s[0].activity_id)
    assert (c["sends"], c["opens"], c["opens_all"], c["clicks"], c["optouts"], c["abuse"]) == (3, 1, 2, 1, 2, 1)
    # sg_machine_open kept as the machine verdict; an image proxy's open still counts (the default policy).
    assert (c["opens_human"], c["opens_machine"]) == (1, 1)
    assert (c["bounces"], c["bounces_b"], c["bounces_s"]) == (2, 1, 1)  # bob: user unknown; cy: dropped, suppressed
    log = logged(engine, account, s[0].activity_id)
    assert ("delivery", None, None) in log and ("deferral", None, None) in log
    assert ("bounce", "userunknown", "B") in log and ("bounce", "suppressed", "S") in log
    # The click found the campaign's link by its URL.
    r = http.get(f"/v3/reports/email_reports/{s[0].activity_id}/links", headers=account.headers)
    assert r.status_code == 200
    assert [(lnk["link_url"], lnk["unique_clicks"]) for lnk in r.json()["link_click_counts"]] == [
        ("https://shop.example/sale", 1)]


def test_redelivered_batch_counts_nothing(http: httpx.Client, engine: Engine, account: Account,
                                          keys: SendGridKeys) -> None:
    s = sends(http, engine, account, ["ann@y.example", "bob@y.example", "cy@y.example"])
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    events = every_type(s)
    assert post(http, path, keys, events).json()["recorded"] == 10
    before = counts(http, account, s[0].activity_id)
    again = post(http, path, keys, events)  # SendGrid retries a batch it got no 2xx for
    assert again.status_code == 200
    assert (again.json()["recorded"], again.json()["duplicates"]) == (0, 11)
    assert counts(http, account, s[0].activity_id) == before
    assert len(logged(engine, account, s[0].activity_id)) == 3 + 10  # the API's three sends, then the batch once


def test_a_providers_send_is_recorded_once_when_our_id_names_it(http: httpx.Client, engine: Engine,
                                                                 account: Account, keys: SendGridKeys) -> None:
    from mailtally.store import catalog
    from mailtally.verp import SendRef, token

    from ..conftest import TEST_SECRET
    from ..support.scenario import campaign_with_activity

    ann = sends(http, engine, account, ["ann@sent.example"])[0]
    _, fresh = campaign_with_activity(http, account.headers, "not sent through the API")
    with engine.connect() as conn:
        act, contact = catalog.get_activity(conn, account.id, fresh), catalog.get_contact(conn, account.id,
                                                                                          ann.contact_id)
    assert act is not None and contact is not None
    mt_id = token(TEST_SECRET.encode(), SendRef(account.id, act.num_id, contact.num_id))
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    processed = {**sg("processed", ann, 1), "mailtally_id": mt_id}
    assert post(http, path, keys, [processed, {**processed, "sg_event_id": "second processed"}]).json()["recorded"] == 1
    assert counts(http, account, fresh)["sends"] == 1
    assert post(http, path, keys, [processed]).json()["duplicates"] == 1
    assert [t for t in logged(engine, account, fresh) if t[0] == "send"] == [("send", None, None)]
    # Without our id, a provider's send is no evidence of which mailing it was: not recorded.
    anonymous = {**processed, "sg_event_id": "anon"}
    del anonymous["mailtally_id"]
    assert post(http, path, keys, [anonymous]).json()["unmatched"] == 1


def test_the_diagnostic_decides_the_reason_and_sendgrids_class_only_without_one(
        http: httpx.Client, engine: Engine, account: Account, keys: SendGridKeys) -> None:
    s = sends(http, engine, account, ["full@z.example", "blocked@z.example"])
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    events = [
        # SendGrid calls it "blocked", but the server said the mailbox is full: our engine decides.
        sg("bounce", s[0], 1, type="blocked", status="5.2.2",
           reason="552 5.2.2 The email account that you tried to reach is over quota."),
        # No words at all: SendGrid's "blocked" is all there is.
        sg("bounce", s[1], 2, type="blocked"),
    ]
    assert post(http, path, keys, events).status_code == 200
    log = logged(engine, account, s[0].activity_id)
    assert ("bounce", "mailboxfull", "F") in log and ("bounce", "blocked", "Z") in log


def test_finding_the_send_by_id_then_message_id_then_recent_send_else_unmatched(
        http: httpx.Client, engine: Engine, account: Account, keys: SendGridKeys) -> None:
    older = sends(http, engine, account, ["who@w.example"], at="2024-03-01T10:00:00Z", name="older")[0]
    newer = sends(http, engine, account, ["who@w.example"], at="2024-03-02T10:00:00Z", name="newer")[0]
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    by_id = sg("open", older, 1)
    by_message_id = sg("click", older, 2, url="https://shop.example/sale")
    del by_message_id["mailtally_id"]
    by_message_id["smtp-id"] = older.message_id
    recent = sg("spamreport", older, 3)
    del recent["mailtally_id"]
    stranger = {**sg("bounce", older, 4, reason="550 5.1.1 user unknown", status="5.1.1"),
                "email": "nobody@elsewhere.example"}
    del stranger["mailtally_id"]
    r = post(http, path, keys, [by_id, by_message_id, recent, stranger])
    assert r.json()["recorded"] == 3 and r.json()["unmatched"] == 1
    assert (counts(http, account, older.activity_id)["opens"], counts(http, account, older.activity_id)["clicks"]) \
        == (1, 1)
    assert counts(http, account, newer.activity_id)["abuse"] == 1  # no id: the most recent send
    kept = [u for u in unmatched(http, account) if u["recipient"] == "nobody@elsewhere.example"]
    assert [(u["reason"], u["bounce_code"], u["status"]) for u in kept] == [("userunknown", "B", "5.1.1")]
    # Redelivered, the unmatched bounce is not kept twice.
    assert post(http, path, keys, [stranger]).json()["duplicates"] == 1
    assert len([u for u in unmatched(http, account) if u["recipient"] == "nobody@elsewhere.example"]) == 1


def test_forged_expired_and_unsigned_requests_are_refused_and_write_nothing(
        http: httpx.Client, engine: Engine, account: Account, keys: SendGridKeys) -> None:
    s = sends(http, engine, account, ["ann@f.example", "bob@f.example", "cy@f.example"])
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    body = orjson.dumps(every_type(s))
    good = keys.sign(body)
    forged = SendGridKeys().sign(body)
    tampered = body.replace(b"spamreport", b"open")
    cases = [
        (http.post(path, content=body, headers=forged), 403),
        (http.post(path, content=tampered, headers=good), 403),
        (http.post(path, content=body, headers=keys.sign(body, now() - 3600)), 401),
        (http.post(path, content=body, headers=keys.sign(body, now() + 3600)), 401),
        (http.post(path, content=body, headers={"Content-Type": "application/json"}), 401),
        (http.post(path, content=body, headers={**good, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}),
         403),
    ]
    for response, status in cases:
        assert response.status_code == status, response.text
        assert "error" in response.json()
    assert len(logged(engine, account, s[0].activity_id)) == 3  # the three sends, nothing else
    # The genuine request, then the very same request again: a replay, refused.
    assert http.post(path, content=body, headers=good).status_code == 200
    replayed = http.post(path, content=body, headers=good)
    assert replayed.status_code == 409 and replayed.json()["error"]["code"] == "replayed"
    assert len(logged(engine, account, s[0].activity_id)) == 3 + 10


def test_sendgrids_own_verifier_agrees(http: httpx.Client, engine: Engine, account: Account,
                                       keys: SendGridKeys) -> None:
    from sendgrid.helpers.eventwebhook import EventWebhook

    s = sends(http, engine, account, ["ann@v.example", "bob@v.example", "cy@v.example"])
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    theirs = EventWebhook(keys.public_b64)
    body = orjson.dumps(every_type(s)).decode()
    good = keys.sign(body.encode())
    other = SendGridKeys().sign(body.encode(), int(good["X-Twilio-Email-Event-Webhook-Timestamp"]))
    for payload, h in [(body, good), (body.replace("open", "click"), good), (body, other)]:
        accepted = theirs.verify_signature(payload, h["X-Twilio-Email-Event-Webhook-Signature"],
                                           h["X-Twilio-Email-Event-Webhook-Timestamp"])
        status = http.post(path, content=payload.encode(), headers=h).status_code
        assert (status == 200) is accepted, (status, accepted)


def test_malformed_bodies_get_400_and_write_nothing(http: httpx.Client, engine: Engine, account: Account,
                                                    keys: SendGridKeys) -> None:
    s = sends(http, engine, account, ["ann@m.example"])
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    good = sg("open", s[0], 1)
    for body in [b"not json", b'{"event": "open"}', orjson.dumps([good, "text"]),
                 orjson.dumps([good, {**good, "sg_event_id": None}]),
                 orjson.dumps([good, {**good, "sg_event_id": "x2", "timestamp": "yesterday"}]),
                 orjson.dumps([good, {**good, "sg_event_id": "x3", "email": {"nested": 1}}])]:
        r = http.post(path, content=body, headers=keys.sign(body))
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["code"] == "malformed"
    assert counts(http, account, s[0].activity_id)["opens"] == 0


def test_another_accounts_sends_and_endpoints_stay_apart(http: httpx.Client, engine: Engine, account: Account,
                                                         other_account: Account, keys: SendGridKeys) -> None:
    theirs = sends(http, engine, other_account, ["private@o.example"])[0]
    path = endpoint(http, account, "sendgrid", keys.public_b64)
    # Our endpoint, their signed id: it names a send of another account, so it matches nothing here.
    r = post(http, path, keys, [sg("open", theirs, 1), sg("bounce", theirs, 2, reason="550 5.1.1 unknown")])
    assert r.json()["recorded"] == 0 and r.json()["unmatched"] == 2
    assert counts(http, other_account, theirs.activity_id)["opens"] == 0
    assert counts(http, other_account, theirs.activity_id)["bounces"] == 0
    assert not [u for u in unmatched(http, other_account)]
    # Their endpoint list does not show ours, and ours cannot be deleted by them.
    endpoint_id = path.rsplit("/", 1)[1]
    listed = http.get("/v1/webhook-endpoints", headers=other_account.headers).json()["webhook_endpoints"]
    assert endpoint_id not in [e["id"] for e in listed]
    assert http.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=other_account.headers).status_code == 404
    # A path naming the endpoint under another provider is no endpoint at all.
    assert http.post(path.replace("/sendgrid/", "/mailgun/"), content=b"{}").status_code == 404
