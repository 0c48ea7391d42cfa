"""The SMTP receiver against real clients: Postfix relaying its own bounce, smtplib, raw sockets."""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.ingest.smtp import Recipients
from mailtally.servers.smtp import SmtpOptions, SmtpReceiver
from mailtally.store import migrate
from mailtally.store.db import open_engine
from mailtally.verp import return_path

from ..conftest import TEST_SECRET, Account, free_port, fresh_postgres_database, make_account, require_part
from ..support.mail import ORDINARY, dsn
from ..support.mailservers import POSTFIX, POSTFIX_HINT, postfix
from ..support.scenario import campaign_with_activity
from ..test_bounce_ingest import ref_for, send_to

SECRET = TEST_SECRET.encode()
DOMAIN = "bounces.test"


def receiver(engine: Engine, **options: Any) -> SmtpReceiver:
    return SmtpReceiver(engine, SECRET, Recipients.of(SECRET, [DOMAIN], options.pop("feedback", None)),
                        SmtpOptions(port=free_port(), **options))


def stats(http: httpx.Client, account: Account, activity: str) -> dict[str, int]:
    return http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]  # type: ignore[no-any-return]


def verp_send(http: httpx.Client, engine: Engine, account: Account, email: str) -> tuple[str, str]:
    _, activity = campaign_with_activity(http, account.headers)
    send_to(http, account, activity, email)
    return activity, return_path(SECRET, ref_for(engine, account, activity, email), DOMAIN)


@pytest.fixture
def postfix_base() -> Iterator[Path]:
    require_part("postfix", POSTFIX is not None, POSTFIX_HINT)
    with tempfile.TemporaryDirectory(prefix="mailtally-postfix-") as d:
        yield Path(d)


def test_postfix_bounce_of_an_unknown_user_becomes_a_b_bounce(
    http: httpx.Client, engine: Engine, account: Account, postfix_base: Path, db_url: str
) -> None:
    activity, verp = verp_send(http, engine, account, "nosuchuser@local.test")
    with receiver(engine) as rx, postfix(postfix_base, DOMAIN, rx.options.port) as pf:
        with smtplib.SMTP("127.0.0.1", pf.port, timeout=30) as client:
            client.sendmail(verp, ["nosuchuser@local.test"],
                            b"From: news@sender.test\r\nTo: nosuchuser@local.test\r\nSubject: Spring news\r\n"
                            b"Message-ID: <spring-1@sender.test>\r\n\r\nHello\r\n")
        # Postfix bounced it locally, then relayed its own DSN to us and logged our 250.
        pf.wait_log("status=sent (250 2.0.0 Ok: stored)")
    assert stats(http, account, activity)["bounces_b"] == 1
    listed = http.get("/v1/bounces", headers=account.headers).json()["bounces"]
    assert [(b["source"], b["envelope_to"], b["records"]) for b in listed] == [("smtp", verp, 1)]
    shown = http.get(f"/v1/bounces/{listed[0]['id']}", headers=account.headers).json()
    assert [(e["activity_id"], e["email"], e["reason"], e["bounce_code"]) for e in shown["events"]] == [
        (activity, "nosuchuser@local.test", "userunknown", "B")]
    # The raw bytes as Postfix sent them.
    raw = http.get(listed[0]["raw"], headers=account.headers).content
    assert b"nosuchuser" in raw and b"message/delivery-status" in raw

    # Postfix's own log of the same delivery, fed to `logs ingest`, gives the same verdict on the same send.
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_SECRET": TEST_SECRET}
    p = subprocess.run([sys.executable, "-m", "mailtally", "logs", "ingest", str(pf.maillog), "--account",
                        account.name], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "1 bounces" in p.stdout and "1 events recorded" in p.stdout
    from sqlalchemy import select

    from mailtally.store.schema import events

    with engine.connect() as conn:
        rows = conn.execute(select(events.c.reason, events.c.bounce_code, events.c.diagnostic)
                            .where(events.c.account_id == account.id, events.c.type == "bounce")).all()
    assert len(rows) == 2 and {(r.reason, r.bounce_code) for r in rows} == {("userunknown", "B")}
    assert stats(http, account, activity)["bounces"] == 1  # a recipient's bounce counts once


def test_refuses_to_relay_and_unknown_tokens(engine: Engine) -> None:
    with receiver(engine) as rx, smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) as client:
        client.ehlo("relay-test.example")
        client.mail("spammer@example.net")
        assert client.rcpt("victim@gmail.example")[0] == 550
        assert client.rcpt(f"bounces+nothing@{DOMAIN}")[0] == 550
        forged = "bounces+mt" + "a" * 30 + "@" + DOMAIN
        assert client.rcpt(forged)[0] == 550
        code, _ = client.docmd("DATA")
        assert code == 503  # no valid recipient, no message


def test_same_message_twice_counts_once_and_feedback_address(
    http: httpx.Client, engine: Engine, account: Account
) -> None:
    activity, verp = verp_send(http, engine, account, "gone@remote.example")
    message = dsn("gone@remote.example", to=verp)
    with receiver(engine, feedback={f"fbl@{DOMAIN}": account.id}) as rx:
        for _ in range(2):
            with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) as client:
                assert client.sendmail("", [verp], message) == {}
        with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) as client:
            assert client.sendmail("fbl@isp.example", [f"FBL@{DOMAIN}"], ORDINARY) == {}
    assert stats(http, account, activity)["bounces_b"] == 1
    sources = {b["envelope_to"] for b in http.get("/v1/bounces", headers=account.headers).json()["bounces"]}
    assert sources == {verp, f"fbl@{DOMAIN}"}  # the ordinary mail to the feedback address is kept too


def test_oversize_message_is_refused_with_552(http: httpx.Client, engine: Engine, account: Account) -> None:
    activity, verp = verp_send(http, engine, account, "big@remote.example")
    big = dsn("big@remote.example", to=verp) + b"x" * 2000 + b"\r\n"
    with receiver(engine, max_message_bytes=1500) as rx, smtplib.SMTP("127.0.0.1", rx.options.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as e:  # announced with SIZE=: refused at MAIL
            client.sendmail("", [verp], big)
        assert e.value.smtp_code == 552
        client.rset()
        client.mail("")  # not announced: refused after DATA
        client.rcpt(verp)
        assert client.data(big)[0] == 552
    assert stats(http, account, activity)["bounces"] == 0


def test_broken_clients_do_not_hurt_the_next_one(http: httpx.Client, engine: Engine, account: Account) -> None:
    activity, verp = verp_send(http, engine, account, "after@remote.example")
    with receiver(engine, idle_seconds=2) as rx:
        port = rx.options.port
        junk = [b"\x00\xff\xfe garbage\r\n" * 50, b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<" + b"a" * 5000 + b">\r\n",
                b"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<" + verp.encode() + b">\r\nDATA\r\npartial body, then gone"]
        for payload in junk:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.recv(1000)
                s.sendall(payload)
                time.sleep(0.1)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
            silent.recv(1000)
            started = time.monotonic()
            while silent.recv(1000):  # says nothing: the server hangs up after idle_seconds
                pass
            assert time.monotonic() - started < 9
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            assert client.sendmail("", [verp], dsn("after@remote.example", to=verp)) == {}
    # The half-sent message was never acknowledged, so it must not count; the whole one does, once.
    assert stats(http, account, activity)["bounces"] == 1


def test_session_time_is_bounded(engine: Engine) -> None:
    """A client that never falls silent still has its session closed after session_seconds."""
    with receiver(engine, session_seconds=1, idle_seconds=60) as rx:
        client = smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10)
        answered = 0
        with pytest.raises((smtplib.SMTPServerDisconnected, ConnectionError)):
            for _ in range(200):  # 200 x 0.1 s: far beyond the one second allowed
                assert client.noop()[0] == 250
                answered += 1
                time.sleep(0.1)
        assert answered >= 1  # it was busy, not idle, when it was cut off
        client.close()
        with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) as again:
            assert again.noop()[0] == 250


def test_connection_limit(engine: Engine) -> None:
    with receiver(engine, max_connections=2) as rx:
        held = [smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) for _ in range(2)]
        with socket.create_connection(("127.0.0.1", rx.options.port), timeout=10) as third:
            assert third.recv(1000).startswith(b"421 ")
        for c in held:
            c.quit()
        time.sleep(0.2)
        with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=10) as again:
            assert again.noop()[0] == 250


def test_database_gone_answers_451() -> None:
    with fresh_postgres_database() as url:
        engine = open_engine(url)
        migrate.upgrade(engine)
        account = make_account(engine)
        rx = receiver(engine).start()
        try:
            verp = return_path(SECRET, _ref(account.id), DOMAIN)
            with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=30) as client:
                assert client.sendmail("", [verp], dsn("a@remote.example", to=verp)) == {}
            import psycopg

            admin = url.rpartition("/")[0] + "/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{url.rpartition("/")[2]}" WITH (FORCE)')
            with smtplib.SMTP("127.0.0.1", rx.options.port, timeout=30) as client:
                with pytest.raises(smtplib.SMTPDataError) as e:
                    client.sendmail("", [verp], dsn("b@remote.example", to=verp))
                assert e.value.smtp_code == 451
        finally:
            rx.stop()
            engine.dispose()


def _ref(account: int) -> Any:
    from mailtally.verp import SendRef

    return SendRef(account, 1, 1)


def test_kill_9_loses_no_acknowledged_message(tmp_path: Path) -> None:
    """Every message answered 250 before the receiver died is stored and counted."""
    db = f"sqlite:///{tmp_path / 'kill.db'}"
    engine = open_engine(db)
    migrate.upgrade(engine)
    account = make_account(engine)
    port = free_port()
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db, "MAILTALLY_SECRET": TEST_SECRET,
           "MAILTALLY_BOUNCE_DOMAINS": DOMAIN}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "smtp", "--listen", f"127.0.0.1:{port}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_port(port)
        acked: list[str] = []
        lock = threading.Lock()

        def deliver(worker: int) -> None:
            for i in range(10_000):
                rcpt = f"w{worker}-{i}@remote.example"
                verp = return_path(SECRET, _ref(account.id), DOMAIN)
                try:
                    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                        client.sendmail("", [verp], dsn(rcpt, to=verp, message_id=f"<{rcpt}>"))
                except (OSError, smtplib.SMTPException):
                    return
                with lock:
                    acked.append(rcpt)

        threads = [threading.Thread(target=deliver, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        for t in threads:
            t.join(30)
    finally:
        proc.kill()
        proc.wait(10)
    assert len(acked) >= 40
    from sqlalchemy import select

    from mailtally.store.schema import unmatched_bounces

    with engine.connect() as conn:
        kept = set(conn.execute(select(unmatched_bounces.c.recipient)
                                .where(unmatched_bounces.c.account_id == account.id)).scalars())
    # No send matches these (the token names no activity), so each is kept as unmatched.
    assert set(acked) <= kept
    engine.dispose()


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the receiver did not start")
