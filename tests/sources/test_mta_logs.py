# ruff: noqa: E501  (real log lines are long)
"""`mailtally logs ingest`: Postfix and Exim lines, matching through the queue id, follow and rotation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from mailtally.ingest.mta_logs import LogReader
from mailtally.store.schema import events
from mailtally.verp import headers, return_path

from ..conftest import TEST_SECRET, Account
from ..support.scenario import campaign_with_activity
from ..test_bounce_ingest import ref_for, send_to

SECRET = TEST_SECRET.encode()


def cli(db_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_SECRET": TEST_SECRET}
    return subprocess.run([sys.executable, "-m", "mailtally", *args], env=env, input=stdin, capture_output=True,
                          text=True, timeout=120)


def counts(http: httpx.Client, account: Account, activity: str) -> dict[str, int]:
    return http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]  # type: ignore[no-any-return]


def logged(engine: Engine, account: Account, kind: str) -> list[tuple[str | None, str | None, str | None]]:
    with engine.connect() as conn:
        return [(r.reason, r.dsn_status, r.diagnostic) for r in conn.execute(
            select(events.c.reason, events.c.dsn_status, events.c.diagnostic)
            .where(events.c.account_id == account.id, events.c.type == kind))]


def postfix_lines(mid: str, verp: str, rcpt: str, qid: str = "4Nq1FG0Rz8zJrP3") -> str:
    return f"""Mar  1 10:00:00 mx postfix/smtpd[100]: {qid}: client=app.example[192.0.2.9]
Mar  1 10:00:00 mx postfix/cleanup[101]: {qid}: message-id=<{mid}>
Mar  1 10:00:00 mx postfix/qmgr[102]: {qid}: from=<{verp}>, size=2048, nrcpt=1 (queue active)
Mar  1 10:00:01 mx postfix/smtp[103]: {qid}: to=<{rcpt}>, relay=mx.remote.example[203.0.113.25]:25, delay=0.9, delays=0.1/0/0.3/0.5, dsn=4.2.2, status=deferred (host mx.remote.example[203.0.113.25] said: 452 4.2.2 Mailbox full, try again later (in reply to RCPT TO command))
2024-03-01T10:30:01.123456+00:00 mx postfix/smtp[103]: {qid}: to=<{rcpt}>, relay=mx.remote.example[203.0.113.25]:25, delay=1800, delays=0.1/0/0.3/0.5, dsn=5.1.1, status=bounced (host mx.remote.example[203.0.113.25] said: 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual mailbox table (in reply to RCPT TO command))
Mar  1 10:30:01 mx postfix/qmgr[102]: {qid}: removed
"""


def test_postfix_bounce_found_through_the_queue_id(
    http: httpx.Client, engine: Engine, account: Account, db_url: str, tmp_path: Path
) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    _, later = campaign_with_activity(http, account.headers, "later")
    send_to(http, account, activity, "ann@remote.example")
    send_to(http, account, later, "ann@remote.example", "2024-03-02T00:00:00Z")  # the most recent send: not it
    ref = ref_for(engine, account, activity, "ann@remote.example")
    mid = headers(SECRET, ref, "sender.example")["Message-ID"].strip("<>")
    log = tmp_path / "mail.log"
    log.write_text(postfix_lines(mid, "news@sender.example", "ann@remote.example")
                   + "Mar  1 11:00:00 mx postfix/smtp[9]: ABCDEF123: to=<nobody@nowhere.example>, relay=none, "
                     "delay=1, delays=1/0/0/0, dsn=5.4.4, status=bounced (Host or domain name not found. "
                     "Name service error for name=nowhere.example type=A: Host not found)\n"
                   + "Mar  1 11:00:00 mx postfix/anvil[9]: statistics: max connection rate 1/60s\n")
    p = cli(db_url, "logs", "ingest", str(log), "--account", account.name)
    assert p.returncode == 0, p.stderr
    assert "2 bounces, 1 deferrals" in p.stdout
    assert counts(http, account, activity)["bounces_b"] == 1
    assert counts(http, account, later)["bounces"] == 0
    assert ("userunknown", "5.1.1") in [(r, s) for r, s, _ in logged(engine, account, "bounce")]
    assert [(r, s) for r, s, _ in logged(engine, account, "deferral")] == [(None, "4.2.2")]
    unmatched = http.get("/v1/bounces/unmatched", headers=account.headers).json()
    assert [(u["recipient"], u["reason"]) for u in unmatched["unmatched"]] == [("nobody@nowhere.example", "hostunknown")]
    # The same file again (a new source name: no checkpoint) records nothing twice.
    again = cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", "again")
    assert again.returncode == 0 and "0 events recorded" in again.stdout
    assert counts(http, account, activity)["bounces"] == 1
    assert len(logged(engine, account, "deferral")) == 1


def test_verp_sender_and_expired_message(http: httpx.Client, engine: Engine, account: Account, db_url: str) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "slow@remote.example")
    verp = return_path(SECRET, ref_for(engine, account, activity, "slow@remote.example"), "bounces.example")
    lines = (f"Jul 10 10:09:21 mx postfix/qmgr[3043]: 718F4DF04E9: from=<{verp}>, size=617, nrcpt=1 (queue active)\n"
             "Jul 10 10:09:22 mx postfix/smtp[20440]: 718F4DF04E9: to=<slow@remote.example>, relay=none, delay=5, "
             "delays=0/0/5/0, dsn=4.4.1, status=deferred (connect to mx.remote.example[203.0.113.25]:25: "
             "Connection timed out)\n"
             "Jul 15 10:09:22 mx postfix/qmgr[3043]: 718F4DF04E9: from=<" + verp + ">, status=expired, returned to "
             "sender\n")
    p = cli(db_url, "logs", "ingest", "-", "--account", account.name, stdin=lines)
    assert p.returncode == 0, p.stderr
    assert counts(http, account, activity)["bounces_d"] == 1
    assert [r for r, _, _ in logged(engine, account, "bounce")] == ["expired"]


def test_exim_lines(http: httpx.Client, engine: Engine, account: Account, db_url: str) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, "dan@mrmoss.example")
    send_to(http, account, activity, "grey@remote.example")
    lines = (
        "2024-03-01 17:08:20 1QRQYT-00033F-G2 <= news@sender.example H=app [192.0.2.9] P=esmtp S=1234 "
        "id=20240301.1@sender.example\n"
        "2024-03-01 17:08:25 1QRQYT-00033F-G2 ** dan@mrmoss.example <dan@mrmoss.example> R=dnslookup "
        "T=remote_smtp H=mrmoss.example [198.51.100.3]: SMTP error from remote mail server after RCPT "
        "TO:<dan@mrmoss.example>: 550 5.1.1 <dan@mrmoss.example>: Recipient address rejected: User unknown\n"
        "2024-03-01 17:08:26 10HmaY-000000005vi-0000 == grey@remote.example R=dnslookup T=remote_smtp defer (-44) "
        "H=mx.remote.example [203.0.113.7]: SMTP error from remote mail server after RCPT "
        "TO:<grey@remote.example>: 451 4.7.1 Greylisted, please try again later\n"
        "2024-03-01 17:08:27 1QRQYT-00033F-G2 Completed\n"
    )
    p = cli(db_url, "logs", "ingest", "-", "--account", account.name, "--format", "exim", stdin=lines)
    assert p.returncode == 0, p.stderr
    assert counts(http, account, activity)["bounces_b"] == 1
    assert [r for r, _, _ in logged(engine, account, "bounce")] == ["userunknown"]
    assert len(logged(engine, account, "deferral")) == 1


def test_bad_arguments(db_url: str, account: Account) -> None:
    assert cli(db_url, "logs", "ingest", "/nonexistent/mail.log", "--account", account.name).returncode == 1
    assert cli(db_url, "logs", "ingest", "-", "--account", "nobody-here").returncode == 1
    bad = cli(db_url, "logs", "ingest", "-", "--account", account.name, "--format", "sendmail")
    assert bad.returncode == 2 and "--format" in bad.stderr


def test_follow_survives_rotation_and_restart(
    http: httpx.Client, engine: Engine, account: Account, db_url: str, tmp_path: Path
) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    emails = [f"r{i}@remote.example" for i in range(4)]
    for e in emails:
        send_to(http, account, activity, e)

    def bounce(i: int) -> str:
        return (f"Mar  1 10:00:0{i} mx postfix/smtp[1]: Q{i}AAAAAA: to=<{emails[i]}>, relay=mx.remote.example[203.0.113.25]:25, "
                f"delay=1, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx.remote.example[203.0.113.25] said: "
                f"550 5.1.1 User unknown (in reply to RCPT TO command))\n")

    log = tmp_path / "mail.log"
    log.write_text(bounce(0) + bounce(1)[:40])  # the second line is still being written
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_SECRET": TEST_SECRET}
    cmd = [sys.executable, "-m", "mailtally", "logs", "ingest", str(log), "--account", account.name, "--follow",
           "--name", f"follow-{account.name}"]

    def wait_bounces(n: int) -> None:
        deadline = time.monotonic() + 60
        while counts(http, account, activity)["bounces"] < n:
            assert time.monotonic() < deadline, f"never reached {n} bounces"
            time.sleep(0.2)

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_bounces(1)
        with log.open("a") as f:
            f.write(bounce(1)[40:])
        wait_bounces(2)
        log.rename(tmp_path / "mail.log.1")  # rotated, as logrotate does
        log.write_text(bounce(2))
        wait_bounces(3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    # Stopped: the file rotates again and grows; a restart reads the rest of the old one and the new one.
    (tmp_path / "mail.log").rename(tmp_path / "mail.log.2")
    with (tmp_path / "mail.log.2").open("a") as f:
        f.write(bounce(3))
    log.write_text("")
    again = subprocess.run([*cmd[:-3], "--name", f"follow-{account.name}"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    wait_bounces(4)
    assert counts(http, account, activity)["bounces"] == 4
    assert len(logged(engine, account, "bounce")) == 4


def test_reader_timestamps() -> None:
    reader = LogReader(now=time.mktime((2024, 1, 2, 12, 0, 0, 0, 0, -1)))
    line = ("Dec 31 23:59:59 mx postfix/smtp[1]: AAAAAAA: to=<a@b.example>, relay=none, delay=1, delays=1/0/0/0, "
            "dsn=5.1.1, status=bounced (unknown user)")
    rec = reader.read(line)
    assert rec is not None and time.localtime(rec.at / 1000)[:3] == (2023, 12, 31)  # last year's December
    iso = reader.read("2024-01-02T10:00:00Z mx postfix/local[1]: BBBBBBB: to=<a@b.example>, relay=local, delay=1, "
                      "delays=1/0/0/0, dsn=5.1.1, status=bounced (unknown user: \"a\")")
    assert iso is not None and iso.at == 1704189600000


@pytest.mark.parametrize("line", ["", "garbage", "Mar  1 10:00:00 mx postfix/smtp[1]: ABCDEF: to=<", "\x00" * 100,
                                  "2024-03-01 17:08:25 1QRQYT-00033F-G2 **"])
def test_reader_ignores_what_it_cannot_read(line: str) -> None:
    assert LogReader().read(line) is None


def test_deliveries_and_bounces_after_a_restart(
    http: httpx.Client, engine: Engine, account: Account, db_url: str, tmp_path: Path
) -> None:
    """Queue ids seen before a restart: their later lines still find their sends, through the store."""
    _, activity = campaign_with_activity(http, account.headers)
    _, later = campaign_with_activity(http, account.headers, "later")
    for email in ("ann@remote.example", "bob@remote.example"):
        send_to(http, account, activity, email)
        send_to(http, account, later, email, "2024-03-02T00:00:00Z")  # their most recent sends: not these
    mids = {e: headers(SECRET, ref_for(engine, account, activity, e), "sender.example")["Message-ID"]
            for e in ("ann@remote.example", "bob@remote.example")}
    log = tmp_path / "mail.log"
    log.write_text(
        f"Mar  1 10:00:00 mx postfix/cleanup[1]: AAAA1111: message-id={mids['ann@remote.example']}\n"
        f"Mar  1 10:00:00 mx postfix/cleanup[1]: BBBB2222: message-id={mids['bob@remote.example']}\n"
        "Mar  1 10:00:00 mx postfix/cleanup[1]: CCCC3333: message-id=<other.1@elsewhere.example>\n"
        "Mar  1 10:00:01 mx postfix/smtp[2]: AAAA1111: to=<ann@remote.example>, relay=mx.remote.example[203.0.113.25]:25,"
        " delay=1, delays=0/0/0/1, dsn=4.4.1, status=deferred (connect to mx.remote.example[203.0.113.25]:25: "
        "Connection timed out)\n")
    name = f"restart-{account.name}"
    first = cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", name)
    assert first.returncode == 0, first.stderr
    assert "1 deferrals, 0 deliveries" in first.stdout
    # A new process: its reader remembers nothing of these queue ids.
    with log.open("a") as f:
        f.write("Mar  1 10:05:00 mx postfix/smtp[3]: AAAA1111: to=<ann@remote.example>, "
                "relay=mx.remote.example[203.0.113.25]:25, delay=300, delays=0/0/0/1, dsn=2.0.0, status=sent "
                "(250 2.0.0 Ok: queued as 4Nq1FG0Rz8zJrP3)\n"
                "Mar  1 10:05:00 mx postfix/smtp[3]: CCCC3333: to=<cy@remote.example>, relay=mx.remote.example"
                "[203.0.113.25]:25, delay=300, delays=0/0/0/1, dsn=2.0.0, status=sent (250 2.0.0 Ok)\n"
                "Mar  1 10:05:01 mx postfix/smtp[3]: BBBB2222: to=<bob@remote.example>, relay=mx.remote.example"
                "[203.0.113.25]:25, delay=301, delays=0/0/0/1, dsn=5.1.1, status=bounced (host mx.remote.example"
                "[203.0.113.25] said: 550 5.1.1 User unknown (in reply to RCPT TO command))\n")
    second = cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", name)
    assert second.returncode == 0, second.stderr
    assert "3 lines: 1 bounces, 0 deferrals, 1 deliveries; 2 events recorded" in second.stdout
    assert counts(http, account, activity)["bounces_b"] == 1
    assert counts(http, account, later)["bounces"] == 0
    with engine.connect() as conn:
        delivered = [(r.activity_num, r.dsn_status) for r in conn.execute(
            select(events.c.activity_num, events.c.dsn_status)
            .where(events.c.account_id == account.id, events.c.type == "delivery"))]
    assert [s for _, s in delivered] == ["2.0.0"]  # ann's, not cy's (whose message carried no token of ours)
    again = cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", f"{name}-again")
    assert again.returncode == 0 and "0 events recorded" in again.stdout  # the whole file anew: nothing twice


def test_message_expired_after_a_restart(http: httpx.Client, engine: Engine, account: Account, db_url: str,
                                         tmp_path: Path) -> None:
    """Deferred before a restart, expired after it: the recipient the token names bounces, once."""
    _, activity = campaign_with_activity(http, account.headers)
    for email in ("slow@remote.example", "late@remote.example"):
        send_to(http, account, activity, email)
    mid = headers(SECRET, ref_for(engine, account, activity, "slow@remote.example"), "sender.example")["Message-ID"]
    verp = return_path(SECRET, ref_for(engine, account, activity, "late@remote.example"), "bounces.example")

    def deferred(qid: str, rcpt: str) -> str:
        return (f"Jul 10 10:09:22 mx postfix/smtp[2]: {qid}: to=<{rcpt}>, relay=none, delay=5, delays=0/0/5/0, "
                "dsn=4.4.1, status=deferred (connect to mx.remote.example[203.0.113.25]:25: Connection timed out)\n")

    log = tmp_path / "mail.log"
    log.write_text(f"Jul 10 10:09:21 mx postfix/cleanup[1]: 718F4DF04E9: message-id={mid}\n"
                   + deferred("718F4DF04E9", "slow@remote.example") + deferred("92AB4DF04F0", "late@remote.example")
                   + "Jul 10 10:09:23 mx postfix/smtp[2]: 33CC4DF04F1: to=<other@remote.example>, relay=none, "
                     "delay=5, delays=0/0/5/0, dsn=4.4.1, status=deferred (Connection timed out)\n")
    name = f"expire-{account.name}"
    assert cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", name).returncode == 0
    with log.open("a") as f:  # five days on, in a new process
        f.write("Jul 15 10:09:22 mx postfix/qmgr[3]: 718F4DF04E9: from=<news@sender.example>, status=expired, "
                "returned to sender\n"
                f"Jul 15 10:09:22 mx postfix/qmgr[3]: 92AB4DF04F0: from=<{verp}>, status=expired, returned to sender\n"
                "Jul 15 10:09:23 mx postfix/qmgr[3]: 33CC4DF04F1: from=<news@sender.example>, status=expired, "
                "returned to sender\n")
    p = cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", name)
    assert p.returncode == 0, p.stderr
    assert "3 lines: 2 bounces" in p.stdout  # the third message carried no token of ours: nothing to name
    assert counts(http, account, activity)["bounces_d"] == 2
    assert [r for r, _, _ in logged(engine, account, "bounce")] == ["expired", "expired"]
    again = cli(db_url, "logs", "ingest", str(log), "--account", account.name, "--name", f"{name}-again")
    assert again.returncode == 0 and "0 events recorded" in again.stdout
    assert counts(http, account, activity)["bounces"] == 2
