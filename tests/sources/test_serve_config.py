"""`mailtally serve --config FILE`: the API, the SMTP receiver (with STARTTLS), a mailbox and a log, in one process."""

from __future__ import annotations

import datetime as dt
import ipaddress
import mailbox
import os
import signal
import smtplib
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from mailtally.store.sources import list_sources
from mailtally.verp import return_path

from ..conftest import TEST_SECRET, Account, free_port
from ..support.mail import dsn
from ..support.mailservers import wait_for_port
from ..support.scenario import campaign_with_activity
from ..test_bounce_ingest import ref_for, send_to

SECRET = TEST_SECRET.encode()
DOMAIN = "bounces.test"


def self_signed(base: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (base / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (base / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                     serialization.NoEncryption()))
    return base / "cert.pem", base / "key.pem"


def _wait(what: str, done: Callable[[], bool], proc: subprocess.Popen[bytes], bound: float = 120) -> None:
    deadline = time.monotonic() + bound
    while not done():
        assert proc.poll() is None, f"serve exited while waiting: {what}"
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def test_one_process_runs_every_source(
    http: httpx.Client, engine: Engine, account: Account, db_url: str, tmp_path: Path
) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    people = ["smtp@remote.example", "box@remote.example", "log@remote.example"]
    for email in people:
        send_to(http, account, activity, email)
    verp = {e: return_path(SECRET, ref_for(engine, account, activity, e), DOMAIN) for e in people}
    cert, key = self_signed(tmp_path)
    md = mailbox.Maildir(tmp_path / "Maildir", create=True)
    md.add(dsn("box@remote.example", to=verp["box@remote.example"]))
    log = tmp_path / "mail.log"
    log.write_text(
        "Mar  1 10:00:00 mx postfix/smtp[1]: ABCDE12345: to=<log@remote.example>, relay=mx.remote.example"
        "[203.0.113.25]:25, delay=1, delays=0/0/0/1, dsn=5.2.2, status=bounced (host mx.remote.example"
        "[203.0.113.25] said: 552 5.2.2 Mailbox full (in reply to RCPT TO command))\n")
    api, smtp_port, closed = free_port(), free_port(), free_port()
    suffix = account.name
    config = tmp_path / "mailtally.toml"
    config.write_text(f"""
bounce_domains = ["{DOMAIN}"]

[api]
listen = "127.0.0.1:{api}"

[smtp]
listen = "127.0.0.1:{smtp_port}"
tls_cert = "{cert}"
tls_key = "{key}"
name = "smtp-{suffix}"

[[mailbox]]
name = "box-{suffix}"
url = "maildir://{tmp_path / 'Maildir'}"
account = "{account.name}"
poll_seconds = 1

[[mailbox]]
name = "down-{suffix}"
url = "imap://nobody@127.0.0.1:{closed}/INBOX"
password = "x"
account = "{account.name}"

[[log]]
name = "log-{suffix}"
path = "{log}"
account = "{account.name}"
""")
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_SECRET": TEST_SECRET}
    proc = subprocess.Popen([sys.executable, "-m", "mailtally", "serve", "--config", str(config)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_port(smtp_port, timeout=90)
        wait_for_port(api, timeout=90)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as s:
            s.ehlo()
            assert s.has_extn("starttls")
            s.starttls(context=ssl.create_default_context(cafile=str(cert)))  # verified: the configured one
            s.ehlo()
            assert not s.has_extn("starttls")  # the session is encrypted now
            s.sendmail("", [verp["smtp@remote.example"]], dsn("smtp@remote.example", to=verp["smtp@remote.example"]))
        with httpx.Client(base_url=f"http://127.0.0.1:{api}", timeout=30) as own:

            def bounced() -> int:
                return int(own.get(f"/v1/activities/{activity}/stats",
                                   headers=account.headers).json()["counts"]["bounces"])

            _wait("the three sources never counted their bounces", lambda: bounced() >= 3, proc)
            assert own.get("/healthz").status_code == 200  # the API beside them

        def state() -> dict[str, object]:
            with engine.connect() as conn:
                return {s.name: s for s in list_sources(conn) if s.name.endswith(suffix)}

        _wait("the unreachable mailbox's error never showed", lambda: getattr(state().get(f"down-{suffix}"),
                                                                              "last_error", None) is not None, proc)
        time.sleep(3.5)  # its retries: 1 s, then 2 s
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    assert counts_by_code(http, account, activity) == (1, 2)  # box and smtp: userunknown (B); log: mailboxfull (F)
    shown = subprocess.run([sys.executable, "-m", "mailtally", "sources"], env=env, capture_output=True, text=True,
                           timeout=60).stdout
    rows = {ln.split()[0]: ln for ln in shown.splitlines() if ln.split() and ln.split()[0].endswith(suffix)}
    assert set(rows) == {f"smtp-{suffix}", f"box-{suffix}", f"down-{suffix}", f"log-{suffix}"}
    assert "ConnectionRefusedError" in rows[f"down-{suffix}"]
    for name in (f"smtp-{suffix}", f"box-{suffix}", f"log-{suffix}"):
        assert rows[name].split()[2][:2] == "20", rows[name]  # a last-success date, not "-"
    logged = err.decode()
    # One line per message or batch a source handled, and the errors.
    assert f"smtp-{suffix}: message" in logged and f"box-{suffix}: message" in logged
    assert f"log-{suffix}: 1 lines: 1 bounces" in logged and f"down-{suffix}: ConnectionRefusedError" in logged
    assert "reconnecting in 1 s" in logged and "reconnecting in 2 s" in logged  # backing off, doubling


def counts_by_code(http: httpx.Client, account: Account, activity: str) -> tuple[int, int]:
    c = http.get(f"/v1/activities/{activity}/stats", headers=account.headers).json()["counts"]
    return int(c["bounces_f"]), int(c["bounces_b"])
