"""POST /v1/bounces: each way of finding the send, unmatched bounces, replays, complaints."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.store import catalog
from mailtally.verp import SendRef, headers, return_path

from .conftest import TEST_SECRET, Account
from .support.mail import ORDINARY, complaint, dsn, vacation
from .support.scenario import campaign_with_activity, post_events

SECRET = TEST_SECRET.encode()
RFC822 = {"Content-Type": "message/rfc822"}


def send_to(http: httpx.Client, account: Account, activity: str, email: str, at: str = "2024-03-01T10:00:00Z") -> None:
    post_events(http, account.headers, [{"type": "send", "activity_id": activity, "email": email, "occurred_at": at}])


def ref_for(engine: Engine, account: Account, activity: str, email: str) -> SendRef:
    with engine.connect() as conn:
        contact = catalog.contact_by_email(conn, account.id, email)
        act = catalog.get_activity(conn, account.id, activity)
    assert contact is not None and act is not None
    return SendRef(account.id, act.num_id, contact.num_id)


def ingest(http: httpx.Client, account: Account, raw: bytes, **params: str) -> dict[str, Any]:
    r = http.post("/v1/bounces", content=raw, params=params, headers={**account.headers, **RFC822})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def bounce_counts(http: httpx.Client, account: Account, activity: str) -> dict[str, int]:
    return http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]  # type: ignore[no-any-return]


def test_found_by_verp_return_path(http: httpx.Client, account: Account, engine: Engine) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "gone@remote.example")
    # The recipient also got a later mailing: VERP must still pick the one it names.
    _, later = campaign_with_activity(http, account.headers, "later")
    send_to(http, account, later, "gone@remote.example", "2024-03-02T00:00:00Z")
    address = return_path(SECRET, ref_for(engine, account, activity, "gone@remote.example"), "bounce.example.com")
    body = ingest(http, account, dsn("gone@remote.example", to=address))
    assert body["recorded"] == 1
    rec = body["records"][0]
    assert rec["matched_by"] == "verp" and rec["activity_id"] == activity
    assert (rec["reason"], rec["bounce_code"], rec["status"]) == ("userunknown", "B", "5.1.1")
    assert bounce_counts(http, account, activity)["bounces_b"] == 1
    assert bounce_counts(http, account, later)["bounces"] == 0


def test_envelope_recipient_parameter_counts_as_verp(http: httpx.Client, account: Account, engine: Engine) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "full@remote.example")
    address = return_path(SECRET, ref_for(engine, account, activity, "full@remote.example"), "b.example.com")
    raw = dsn("full@remote.example", status="5.2.2", diagnostic="smtp; 552 5.2.2 Mailbox full")
    body = ingest(http, account, raw, envelope_to=address)
    assert body["records"][0]["matched_by"] == "verp" and body["records"][0]["bounce_code"] == "F"


@pytest.mark.parametrize("where", ["header", "message_id"])
def test_found_by_our_headers_in_the_returned_original(
    http: httpx.Client, account: Account, engine: Engine, where: str
) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    _, later = campaign_with_activity(http, account.headers, "later")
    send_to(http, account, activity, "who@remote.example")
    send_to(http, account, later, "who@remote.example", "2024-03-02T00:00:00Z")
    h = headers(SECRET, ref_for(engine, account, activity, "who@remote.example"), "sender.example.com")
    if where == "header":
        raw = dsn("who@remote.example", original_headers=f"X-Mailtally-Id: {h['X-Mailtally-Id']}")
    else:
        raw = dsn("who@remote.example", message_id=h["Message-ID"])
    rec = ingest(http, account, raw)["records"][0]
    assert rec["matched_by"] == where and rec["activity_id"] == activity


def test_found_by_most_recent_send(http: httpx.Client, account: Account) -> None:
    _, first = campaign_with_activity(http, account.headers, "first")
    _, second = campaign_with_activity(http, account.headers, "second")
    send_to(http, account, first, "old@remote.example", "2024-03-01T00:00:00Z")
    send_to(http, account, second, "old@remote.example", "2024-03-05T00:00:00Z")
    rec = ingest(http, account, dsn("old@remote.example"))["records"][0]
    assert rec["matched_by"] == "recent_send" and rec["activity_id"] == second


def test_unmatched_is_kept_and_listed_once(http: httpx.Client, account: Account, other_account: Account) -> None:
    raw = dsn("stranger@remote.example")
    body = ingest(http, account, raw)
    assert body["unmatched"] == 1 and body["recorded"] == 0 and body["records"][0]["matched_by"] is None
    again = ingest(http, account, raw)
    assert again["unmatched"] == 0 and again["duplicates"] == 1
    listed = http.get("/v1/bounces/unmatched", headers=account.headers).json()["unmatched"]
    assert [u["recipient"] for u in listed] == ["stranger@remote.example"]
    assert listed[0]["reason"] == "userunknown" and listed[0]["original_message_id"] == "<abc123@sender.example.com>"
    assert http.get("/v1/bounces/unmatched", headers=other_account.headers).json()["unmatched"] == []


def test_replaying_a_matched_bounce_changes_nothing(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "twice@remote.example")
    raw = dsn("twice@remote.example")
    assert ingest(http, account, raw)["recorded"] == 1
    before = bounce_counts(http, account, activity)
    body = ingest(http, account, raw)
    assert body["recorded"] == 0 and body["duplicates"] == 1
    assert bounce_counts(http, account, activity) == before


def test_another_accounts_token_is_not_trusted(
    http: httpx.Client, account: Account, other_account: Account, engine: Engine
) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "mine@remote.example")
    address = return_path(SECRET, ref_for(engine, account, activity, "mine@remote.example"), "b.example.com")
    body = ingest(http, other_account, dsn("mine@remote.example", to=address))
    assert body["recorded"] == 0 and body["unmatched"] == 1
    assert bounce_counts(http, account, activity)["bounces"] == 0


def test_vacation_complaint_optout_and_ordinary_mail(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    for who in ("away", "angry", "leaving"):
        send_to(http, account, activity, f"{who}@remote.example")
    assert ingest(http, account, vacation("away@remote.example"))["records"][0]["bounce_code"] == "V"
    assert ingest(http, account, complaint("angry@remote.example"))["records"][0]["event_type"] == "abuse"
    assert ingest(http, account, complaint("leaving@remote.example", "opt-out"))["records"][0]["event_type"] == "optout"
    body = ingest(http, account, ORDINARY)
    assert body == {**body, "is_bounce": False, "recorded": 0, "records": []}
    counts = bounce_counts(http, account, activity)
    assert (counts["bounces_v"], counts["abuse"], counts["optouts"]) == (1, 1, 1)


def test_bad_bodies(http: httpx.Client, account: Account) -> None:
    r = http.post("/v1/bounces", content=b"  ", headers={**account.headers, **RFC822})
    assert r.status_code == 400 and r.json()["error"]["code"] == "empty_message"
    r = http.post("/v1/bounces", content=b"\x00\xff" * 1000, headers={**account.headers, **RFC822})
    assert r.status_code == 200 and r.json()["records"] == []
    r = http.post("/v1/bounces", content=b"x" * (10 * 1024 * 1024 + 1), headers={**account.headers, **RFC822})
    assert r.status_code == 413
    assert http.post("/v1/bounces", content=dsn("a@b.example"), headers=RFC822).status_code == 401


def test_cli_ingests_a_maildir_and_an_mbox(tmp_path: Any) -> None:
    """`mailtally bounces ingest` over a Maildir and an mbox, twice: the second run records nothing."""
    import os
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'b.db'}"
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db, "MAILTALLY_SECRET": TEST_SECRET}
    cli = [sys.executable, "-m", "mailtally"]
    subprocess.run([*cli, "accounts", "create", "shop"], env=env, check=True, capture_output=True)
    from mailtally.store.accounts import account_id
    from mailtally.store.db import open_engine

    with open_engine(db).begin() as conn:
        acc = account_id(conn, "shop")
        campaign = catalog.create_campaign(conn, acc, "c")
        activity = catalog.create_activity(conn, acc, campaign.id)
        contacts = catalog.contacts_for_emails(conn, acc, ["m1@remote.example", "m2@remote.example"])
    from mailtally.events import Event
    from mailtally.store.writer import write_events
    from mailtally.vocab import EventType

    with open_engine(db).begin() as conn:
        write_events(conn, acc, [Event(EventType.SEND, activity.id, 1_709_280_000_000, c) for c in contacts.values()])
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1.eml").write_bytes(dsn("m1@remote.example"))
    mbox = tmp_path / "bounces.mbox"
    sep = b"From MAILER-DAEMON Fri Mar  1 10:05:00 2024\n"
    mbox.write_bytes(sep + dsn("m2@remote.example").replace(b"\r\n", b"\n") + b"\n"
                     + sep + dsn("nobody@remote.example").replace(b"\r\n", b"\n"))
    args = [*cli, "bounces", "ingest", str(maildir), str(mbox), "--account", "shop"]
    first = subprocess.run(args, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "3 messages: 2 events recorded, 1 unmatched kept, 0 already known" in first.stdout
    assert "matched by recent_send: 2" in first.stdout
    second = subprocess.run(args, env=env, capture_output=True, text=True)
    assert "0 events recorded, 0 unmatched kept, 3 already known" in second.stdout
    bad = subprocess.run([*cli, "bounces", "ingest", str(tmp_path / "missing"), "--account", "shop"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "Error" in bad.stderr


def test_binary_junk_in_a_bounce_is_stored_without_nul(http: httpx.Client, account: Account) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "junk@remote.example")
    raw = dsn("junk@remote.example", diagnostic="smtp; 550 5.1.1 <{r}>: User unknown \x00\x00 junk")
    body = ingest(http, account, raw)
    assert body["recorded"] == 1
    rows = http.get(f"/v3/reports/email_reports/{activity}/tracking/bounces", headers=account.headers).json()
    assert rows["tracking_activities"][0]["bounce_code"] == "B"
