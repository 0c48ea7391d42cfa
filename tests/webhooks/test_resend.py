"""Resend: Svix-signed notifications, every event type, and PyPI's ``svix`` agreeing with our verifier."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
from sqlalchemy import Engine

from ..conftest import Account
from .support import counts, endpoint, logged, now, sends, svix_secret, svix_sign


def notification(kind: str, send: Any, n: int, to: list[str] | None = None, **data: Any) -> dict[str, Any]:
    """Shaped like Resend's documented webhook examples."""
    body = {"type": kind, "created_at": f"2024-03-01T10:{n:02d}:00.000Z",
            "data": {"broadcast_id": "8b146471-e88e-4322-86af-016cd36fd216", "created_at": "2024-03-01T10:00:00Z",
                     "email_id": "56761188-7520-42d8-8898-ff6fc54ce618", "from": "Acme <onboarding@resend.dev>",
                     "to": to or [send.email], "subject": "Sending this example",
                     "tags": {"mailtally_id": send.mailtally_id}}}
    body["data"].update(data)
    return body


def post(http: httpx.Client, path: str, secret: str, doc: dict[str, Any], msg_id: str,
         ts: int | None = None) -> httpx.Response:
    body = orjson.dumps(doc)
    return http.post(path, content=body, headers=svix_sign(secret, body, msg_id, ts))


def test_every_event_type(http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["ann@rs.example", "bob@rs.example", "cy@rs.example"])
    secret = svix_secret()
    path = endpoint(http, account, "resend", secret)
    a, b, c = s
    docs = [
        notification("email.sent", a, 1), notification("email.delivered", a, 2),
        notification("email.opened", a, 3),
        notification("email.clicked", a, 4, click={"ipAddress": "122.115.53.11", "link": "https://shop.example/sale",
                                                   "timestamp": "2024-03-01T10:04:00Z", "userAgent": "Mozilla/5.0"}),
        notification("email.delivery_delayed", b, 5),
        notification("email.bounced", b, 6, bounce={
            "message": "The recipient's email address is on the suppression list because it has a recent history "
                       "of producing hard bounces.", "subType": "Suppressed", "type": "Permanent"}),
        notification("email.complained", c, 7),
        notification("email.received", c, 8),
    ]
    for i, doc in enumerate(docs):
        r = post(http, path, secret, doc, f"msg_2KWPBgLlAfxdpx2AI54pPJ85f4{i}")
        assert r.status_code == 200, r.text
    cnt = counts(http, account, a.activity_id)
    assert (cnt["opens"], cnt["clicks"], cnt["abuse"], cnt["bounces_s"]) == (1, 1, 1, 1)
    log = logged(engine, account, a.activity_id)
    assert ("delivery", None, None) in log and ("deferral", None, None) in log
    # A retry keeps its svix-id and is signed anew: nothing counts twice.
    again = post(http, path, secret, docs[2], "msg_2KWPBgLlAfxdpx2AI54pPJ85f42", ts=now() - 7)
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    # The very same signed request shown again is a replay: refused.
    body = orjson.dumps(docs[3])
    headers = svix_sign(secret, body, "msg_replayed", now() - 3)
    assert http.post(path, content=body, headers=headers).status_code == 200
    replayed = http.post(path, content=body, headers=headers)
    assert replayed.status_code == 409 and replayed.json()["error"]["code"] == "replayed"
    assert counts(http, account, a.activity_id) == {**cnt, "clicks_all": cnt["clicks_all"] + 1,
                                                    "clicks_other": cnt["clicks_other"] + 1}


def test_one_notification_of_several_recipients_goes_to_the_one_our_id_names(
        http: httpx.Client, engine: Engine, account: Account) -> None:
    s = sends(http, engine, account, ["first@rm.example", "second@rm.example"])
    secret = svix_secret()
    path = endpoint(http, account, "resend", secret)
    doc = notification("email.opened", s[1], 1, to=[s[0].email, s[1].email])
    assert post(http, path, secret, doc, "msg_multi_1").json()["recorded"] == 1
    assert counts(http, account, s[0].activity_id)["opens"] == 1
    r = http.get(f"/v3/reports/email_reports/{s[0].activity_id}/tracking/opens", headers=account.headers)
    assert [t["email_address"] for t in r.json()["tracking_activities"]] == ["second@rm.example"]


def test_svix_agrees_with_our_verifier(http: httpx.Client, engine: Engine, account: Account) -> None:
    from svix.webhooks import Webhook, WebhookVerificationError

    s = sends(http, engine, account, ["ann@sv.example"])[0]
    secret = svix_secret()
    path = endpoint(http, account, "resend", secret)
    theirs = Webhook(secret)
    body = orjson.dumps(notification("email.opened", s, 1))
    good = svix_sign(secret, body, "msg_svix_1")
    cases = [
        (body, good),
        (body.replace(b"opened", b"clicked"), good),  # tampered body
        (body, svix_sign(svix_secret(), body, "msg_svix_1")),  # another secret
        (body, {**good, "svix-id": "msg_svix_2"}),  # another id
        (body, svix_sign(secret, body, "msg_svix_3", now() - 3600)),  # too old
        (body, svix_sign(secret, body, "msg_svix_4", now() + 3600)),  # from the future
        (body, {**good, "svix-signature": "v1,bm90IGl0 " + good["svix-signature"]}),  # rotation: one of two matches
        (body, {k: v for k, v in good.items() if k != "svix-signature"}),  # unsigned
    ]
    for payload, headers in cases:
        try:
            theirs.verify(payload, {k: v for k, v in headers.items() if k != "Content-Type"})
            accepted = True
        except WebhookVerificationError:
            accepted = False
        r = http.post(path, content=payload, headers=headers)
        assert (r.status_code == 200) is accepted, (headers, r.status_code, accepted)
        if not accepted:
            assert r.status_code in (401, 403)
    assert counts(http, account, s.activity_id)["opens"] == 1
