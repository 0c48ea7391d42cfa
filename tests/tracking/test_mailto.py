"""List-Unsubscribe's mailto: address (unsubscribe+<token>@domain): a message to it, through
any of the bounce sources (POST /v1/bounces, the SMTP receiver, a mailbox), records the
opt-out once, whichever other way the recipient also unsubscribed."""

from __future__ import annotations

import mailbox
import re
import smtplib
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from mailtally.ingest.smtp import Recipients
from mailtally.servers.smtp import SmtpOptions, SmtpReceiver
from mailtally.store.schema import events
from tests.conftest import TEST_SECRET, Account, free_port
from tests.sources.test_mailbox import cli

from .support import paths, sent_long_ago, stats

RFC822 = {"Content-Type": "message/rfc822"}


def mailto(message: dict[str, Any]) -> str:
    found = re.search(r"<mailto:([^>]+)>", message["headers"]["List-Unsubscribe"])
    assert found, message["headers"]
    return found.group(1)


def request_to(address: str, sender: str = "reader@example.com") -> bytes:
    """What a mailbox provider (or the reader's mail client) sends to the mailto: address."""
    return (f"From: <{sender}>\r\nTo: <{address}>\r\nSubject: unsubscribe\r\n"
            f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\nMessage-ID: <u-{address.split('@')[0][-8:]}@example.com>\r\n"
            "\r\nunsubscribe\r\n").encode()


def optouts(engine: Engine, account: Account) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(r.optout_source, r.type) for r in conn.execute(select(events.c.optout_source, events.c.type).where(
            events.c.account_id == account.id, events.c.type == "optout"))]


def test_a_message_to_the_mailto_address_opts_out_once(http: httpx.Client, account: Account, engine: Engine,
                                                       other_account: Account) -> None:
    activity, [m] = sent_long_ago(http, account.headers, ["leaving@example.com"])
    address = mailto(m)
    assert address.startswith("unsubscribe+mt")
    r = http.post("/v1/bounces", content=request_to(address), headers={**account.headers, **RFC822})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["is_bounce"], body["recorded"], body["records"]) == (False, 1, [])
    assert body["unsubscribe"] == {"activity_id": activity, "contact_id": m["contact_id"],
                                   "occurred_at": "2024-01-01T10:00:00.000Z", "recorded": True}
    # Sent again, and then the one-click POST as well: still one opt-out.
    again = http.post("/v1/bounces", content=request_to(address, "other@example.com"),
                      headers={**account.headers, **RFC822}).json()
    assert (again["recorded"], again["unsubscribe"]["recorded"]) == (0, False)
    one_click = http.post(paths(m["html"], "u")[0], data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 1
    assert optouts(engine, account) == [("mailto", "optout")]
    # The kept message shows the opt-out it made.
    shown = http.get(f"/v1/bounces/{body['id']}", headers=account.headers).json()
    assert [(e["activity_id"], e["email"]) for e in shown["events"]] == [(activity, "leaving@example.com")]
    # Another account's token, a forged one, the bounce address: no opt-out.
    foreign = http.post("/v1/bounces", content=request_to(address), headers={**other_account.headers, **RFC822})
    assert foreign.status_code == 200 and foreign.json()["unsubscribe"] is None
    forged = address.replace("unsubscribe+mt", "unsubscribe+mtaa", 1)
    assert http.post("/v1/bounces", content=request_to(forged),
                     headers={**account.headers, **RFC822}).json()["unsubscribe"] is None
    bounce_address = m["headers"]["Return-Path"].strip("<>")
    assert http.post("/v1/bounces", content=request_to(bounce_address),
                     headers={**account.headers, **RFC822}).json()["unsubscribe"] is None
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 1


def test_the_smtp_receiver_takes_the_mailto_address(http: httpx.Client, account: Account, engine: Engine) -> None:
    activity, [m] = sent_long_ago(http, account.headers, ["smtp-leaving@example.com"])
    address = mailto(m)
    domain = address.rpartition("@")[2]
    secret = TEST_SECRET.encode()
    with SmtpReceiver(engine, secret, Recipients.of(secret, [domain]), SmtpOptions(port=free_port())) as rx:
        for _ in range(2):
            with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) as client:
                assert client.sendmail("reader@example.com", [address], request_to(address)) == {}
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 1
    assert optouts(engine, account) == [("mailto", "optout")]


def test_a_mailbox_handles_the_mailto_request(http: httpx.Client, account: Account, engine: Engine, db_url: str,
                                              tmp_path: Path) -> None:
    activity, [m] = sent_long_ago(http, account.headers, ["box-leaving@example.com"])
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    md.add(request_to(mailto(m)))
    p = cli(db_url, "mailbox", "watch", f"maildir://{tmp_path / 'Maildir'}", "--account", account.name, "--once",
            "--move-to", "Done")
    assert p.returncode == 0, p.stderr
    assert stats(http, account.headers, activity)["counts"]["optouts"] == 1
    md = mailbox.Maildir(tmp_path / "Maildir")
    assert list(md.iterkeys()) == [] and len(md.get_folder("Done")) == 1  # handled: moved like a bounce
