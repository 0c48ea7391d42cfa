"""Outgoing webhooks: signed deliveries to a real receiver, retries, SSRF refusals, and an
outbox that survives ``kill -9`` of the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
from sqlalchemy import Engine
from standardwebhooks import Webhook

from mailtally.config import Settings
from mailtally.events import Event
from mailtally.store import catalog, outbox
from mailtally.store.accounts import create_account
from mailtally.store.db import now_ms, open_engine, writing
from mailtally.store.writer import write_events
from mailtally.vocab import BounceCode, EventType, Reason, WebhookEvent
from mailtally.webhooks import signing
from mailtally.webhooks.targets import TargetRefused, resolve
from mailtally.webhooks.worker import run_once

from .conftest import Account, free_port
from .support.mail import dsn
from .support.receiver import Receiver
from .support.scenario import campaign_with_activity, post_events

LOCAL = Settings(webhook_allow_private=True, webhook_timeout_seconds=5)


def deliver_until(engine: Engine, receiver: Receiver, n: int, settings: Settings = LOCAL) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client(timeout=5, follow_redirects=False) as client:
        while len(receiver.requests) < n:
            run_once(client, engine, settings)
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(receiver.requests)} of {n} delivered")
            time.sleep(0.05)


def subscribe(engine: Engine, account: int, url: str, wanted: list[WebhookEvent]) -> tuple[str, str]:
    secret = signing.new_secret()
    with writing(engine) as conn:
        row = outbox.create_subscription(conn, account, url, wanted, secret)
    return row.id, secret


def test_signed_deliveries_reach_a_real_receiver(http: httpx.Client, account: Account, engine: Engine) -> None:
    with Receiver() as receiver:
        sid, secret = subscribe(engine, account.id, receiver.url,
                                [WebhookEvent.BOUNCE, WebhookEvent.SUPPRESSION_ADDED, WebhookEvent.SUPPRESSION_REMOVED])
        _, activity = campaign_with_activity(http, account.headers)
        post_events(http, account.headers, [{"type": "send", "activity_id": activity, "email": "gone@remote.example",
                                             "occurred_at": "2024-03-01T10:00:00Z"},
                                            {"type": "open", "activity_id": activity, "email": "gone@remote.example",
                                             "occurred_at": "2024-03-01T10:01:00Z"}])
        r = http.post("/v1/bounces", content=dsn("gone@remote.example"),
                      headers={**account.headers, "Content-Type": "message/rfc822"})
        assert r.status_code == 200 and r.json()["recorded"] == 1
        assert http.delete("/v1/suppressions/gone@remote.example", headers=account.headers).status_code == 204
        deliver_until(engine, receiver, 3)

        verifier = Webhook(secret)
        payloads = [verifier.verify(req.body, req.headers) for req in receiver.requests]
        assert [p["type"] for p in payloads] == ["bounce", "suppression.added", "suppression.removed"]
        bounce = payloads[0]["data"]
        assert (bounce["activity_id"], bounce["email"], bounce["reason"], bounce["bounce_code"]) == (
            activity, "gone@remote.example", "userunknown", "B")
        assert payloads[1]["data"]["reason"] == "hard_bounce"
        # A tampered body fails the same verifier.
        with pytest.raises(Exception, match=r"(?i)signature"):
            verifier.verify(receiver.requests[0].body + b" ", receiver.requests[0].headers)

        log = http.get(f"/v1/webhooks/{sid}/deliveries", headers=account.headers).json()["deliveries"]
        assert [d["state"] for d in log] == ["delivered"] * 3
        assert {d["webhook_id"] for d in log} == {req.headers["webhook-id"] for req in receiver.requests}
        one = http.get(f"/v1/webhooks/{sid}/deliveries/{log[0]['id']}", headers=account.headers).json()
        assert [a["status"] for a in one["attempts"]] == [200] and json.loads(one["payload"])["type"]


def test_failures_are_retried_with_the_same_webhook_id(http: httpx.Client, account: Account, engine: Engine) -> None:
    with Receiver(lambda n: 500 if n == 0 else 204) as receiver:
        sid, _ = subscribe(engine, account.id, receiver.url, [WebhookEvent.OPTOUT])
        _, activity = campaign_with_activity(http, account.headers)
        post_events(http, account.headers, [{"type": "optout", "activity_id": activity, "email": "bye@example.com",
                                             "occurred_at": "2024-03-01T10:00:00Z"}])
        deliver_until(engine, receiver, 1)
        log = http.get(f"/v1/webhooks/{sid}/deliveries", headers=account.headers).json()["deliveries"]
        assert log[0]["state"] == "pending" and log[0]["attempts"] == 1 and log[0]["last_status"] == 500
        # Not due again yet (backoff): a round now sends nothing.
        with httpx.Client() as client:
            run_once(client, engine, LOCAL)
        assert len(receiver.requests) == 1
        r = http.post(f"/v1/webhooks/{sid}/deliveries/{log[0]['id']}/retry", headers=account.headers)
        assert r.status_code == 200
        deliver_until(engine, receiver, 2)
        first, second = receiver.requests
        assert first.headers["webhook-id"] == second.headers["webhook-id"]
        assert http.get(f"/v1/webhooks/{sid}/deliveries", headers=account.headers).json()["deliveries"][0][
            "state"] == "delivered"


def test_backoff_spans_at_least_a_day_then_gives_up(engine: Engine, account: Account) -> None:
    sid, _ = subscribe(engine, account.id, "https://example.com/hook", [WebhookEvent.SUPPRESSION_ADDED])
    with writing(engine) as conn:
        outbox.enqueue_one(conn, account.id, WebhookEvent.SUPPRESSION_ADDED, now_ms(), {"email": "a@example.com"})
    t = now_ms()
    with engine.connect() as conn:
        [row] = outbox.deliveries(conn, account.id, subscription_id=sid)
    first = t
    while row.state == "pending":
        with writing(engine) as conn:
            outbox.record_attempt(conn, account.id, row, ok=False, status=503, error="down", duration_ms=1,
                                  now=row.next_attempt_at)
            row = outbox.get_delivery(conn, account.id, row.id)
        assert row is not None
        last = row.next_attempt_at
    assert row.state == "failed" and row.attempts == len(outbox.RETRY_DELAYS) + 1
    assert last - first >= 24 * 3600 * 1000


def test_ssrf_targets_are_refused(http: httpx.Client, account: Account) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://10.1.2.3/", "http://192.168.0.1/",
                "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
                "http://0.0.0.0/", "ftp://example.com/", "http://user:pw@example.com/", "not a url"):
        r = http.post("/v1/webhooks", json={"url": url, "events": ["bounce"]}, headers=account.headers)
        assert r.status_code == 400, (url, r.text)
        assert r.json()["error"]["code"] in ("target_refused", "bad_request"), url
    with pytest.raises(TargetRefused):
        resolve("http://localhost:8000/", allow_private=False)
    assert resolve("http://127.0.0.1:8000/", allow_private=True) == ["127.0.0.1"]
    r = http.post("/v1/webhooks", json={"url": "https://example.com/", "events": ["nonsense"]},
                  headers=account.headers)
    assert r.status_code == 400


def test_a_refused_target_at_delivery_time_is_not_called(engine: Engine, account: Account) -> None:
    with Receiver() as receiver:
        sid, _ = subscribe(engine, account.id, receiver.url, [WebhookEvent.SUPPRESSION_ADDED])
        with writing(engine) as conn:
            outbox.enqueue_one(conn, account.id, WebhookEvent.SUPPRESSION_ADDED, now_ms(), {"email": "a@example.com"})
        with httpx.Client() as client:
            run_once(client, engine, Settings(webhook_allow_private=False))
        assert receiver.requests == []
        with engine.connect() as conn:
            [row] = outbox.deliveries(conn, account.id, subscription_id=sid)
        assert row.last_error.startswith("refused:")


def test_outbox_survives_kill_9(own_database: str) -> None:
    """The server is killed while a delivery is in flight: after a restart every delivery arrives,
    and the interrupted one again with the same webhook-id (on each database)."""
    db = own_database
    engine = open_engine(db)
    from mailtally.store import migrate

    migrate.upgrade(engine)
    release = threading.Event()

    def answer(n: int) -> int:
        if n == 0:
            release.wait(30)  # hold the first delivery open until the server is dead
        return 200

    with Receiver(answer) as receiver:
        with writing(engine) as conn:
            account = create_account(conn, "killed")
            campaign = catalog.create_campaign(conn, account, "c")
            activity = catalog.create_activity(conn, account, campaign.id).id
        _, _secret = subscribe(engine, account, receiver.url, [WebhookEvent.BOUNCE])
        with writing(engine) as conn:
            emails = [f"r{i}@example.com" for i in range(5)]
            ids = catalog.contacts_for_emails(conn, account, emails)
            write_events(conn, account, [Event(EventType.BOUNCE, activity, 1_717_200_000_000 + i, ids[e],
                                               reason=Reason.MAILBOXFULL, bounce_code=BounceCode.MAILBOX_FULL)
                                         for i, e in enumerate(emails)])
        with engine.connect() as conn:
            expected = {r.msg_id for r in outbox.deliveries(conn, account)}
        assert len(expected) == 5

        env = {**os.environ, "MAILTALLY_DATABASE_URL": db, "MAILTALLY_WEBHOOK_ALLOW_PRIVATE": "1",
               "MAILTALLY_WEBHOOK_TIMEOUT_SECONDS": "1", "MAILTALLY_WEBHOOK_POLL_SECONDS": "0.1"}

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--port", str(free_port())],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        proc = start()
        try:
            receiver.wait_for(1)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            release.set()
            if proc.poll() is None:
                proc.kill()
        interrupted = receiver.requests[0].headers["webhook-id"]
        proc = start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    states = [r.state for r in outbox.deliveries(conn, account)]
                if states == ["delivered"] * 5:
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        assert states == ["delivered"] * 5
        got = [r.headers["webhook-id"] for r in receiver.requests]
        assert set(got) == expected  # nothing lost
        assert got.count(interrupted) == 2  # the one in flight came again, with the same id
    engine.dispose()


def test_subscriptions_api(http: httpx.Client, account: Account, other_account: Account) -> None:
    h = account.headers
    r = http.post("/v1/webhooks", json={"url": "https://example.com/hook", "events": ["bounce", "alert.fired"],
                                        "description": "ops"}, headers=h)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["secret"].startswith("whsec_") and created["events"] == ["alert.fired", "bounce"]
    sid = created["id"]
    listed = http.get("/v1/webhooks", headers=h).json()["webhooks"]
    assert [w["id"] for w in listed] == [sid] and "secret" not in listed[0]
    assert http.get(f"/v1/webhooks/{sid}", headers=other_account.headers).status_code == 404
    assert http.get("/v1/webhooks", headers=other_account.headers).json()["webhooks"] == []
    patched = http.patch(f"/v1/webhooks/{sid}", json={"enabled": False, "events": ["complaint"]}, headers=h).json()
    assert patched["enabled"] is False and patched["events"] == ["complaint"]
    assert http.get(f"/v1/webhooks/{sid}/deliveries", headers=h).json()["deliveries"] == []
    assert http.delete(f"/v1/webhooks/{sid}", headers=other_account.headers).status_code == 404
    assert http.delete(f"/v1/webhooks/{sid}", headers=h).status_code == 204
    assert http.get(f"/v1/webhooks/{sid}", headers=h).status_code == 404
    assert http.get("/v1/webhooks/not-a-uuid", headers=h).status_code == 400
