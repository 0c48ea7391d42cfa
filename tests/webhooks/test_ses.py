"""Amazon SES through SNS: signatures v1 and v2 made here with a generated certificate, served by a
local HTTP server that mailtally is pointed at by configuration (MAILTALLY_SNS_URL_PREFIXES);
topic allow-lists, subscription confirmation, basic auth, every SES notification type."""

from __future__ import annotations

import base64
import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import Engine

from mailtally.config import Settings
from mailtally.store import migrate
from mailtally.store import webhooks as store
from mailtally.store.db import open_engine

from ..conftest import TEST_SECRET, Account, LiveServer, free_port, make_account
from .support import basic, counts, endpoint, logged, sends

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:someone-elses"


def make_certificate() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.us-east-1.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


class FakeAws:
    """Serves the signing certificate and answers subscription confirmations, counting both."""

    def __init__(self) -> None:
        self.key, self.pem = make_certificate()
        self.cert_fetches = 0
        self.confirmed: list[str] = []
        aws = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith(".pem"):
                    aws.cert_fetches += 1
                    body = aws.pem
                else:
                    aws.confirmed.append(self.path)
                    body = b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.cert_url = self.base + "SimpleNotificationService-test.pem"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def envelope(self, kind: str, topic: str = TOPIC, version: str = "1", key: rsa.RSAPrivateKey | None = None,
                 cert_url: str | None = None, **fields: Any) -> dict[str, Any]:
        """An SNS message as SNS posts it, signed as SNS signs it."""
        env: dict[str, Any] = {"Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                               "Timestamp": "2024-03-01T10:00:00.000Z", "SignatureVersion": version,
                               "SigningCertURL": cert_url or self.cert_url, **fields}
        if kind != "Notification":
            env.setdefault("Token", "2336412f37fb687f5d51e6e2425dacbba")
            env.setdefault("SubscribeURL", self.base + "?Action=ConfirmSubscription&TopicArn=" + topic)
            env.setdefault("Message", f"You have chosen to subscribe to the topic {topic}.")
        names = (("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type") if kind == "Notification"
                 else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"))
        signed = "".join(f"{n}\n{env[n]}\n" for n in names if n in env).encode()
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        env["Signature"] = base64.b64encode((key or self.key).sign(signed, padding.PKCS1v15(), algorithm)).decode()
        return env


@pytest.fixture(scope="module")
def aws() -> Iterator[FakeAws]:
    fake = FakeAws()
    yield fake
    fake.server.shutdown()


@pytest.fixture(scope="module")
def sns_db(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Its own SQLite file (two servers' writers on one file take turns, and this one would wait on
    the session's); the session's PostgreSQL database as it is."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path_factory.mktemp('sns') / 'sns.db'}"
    return db_url


@pytest.fixture(scope="module")
def engine(sns_db: str) -> Iterator[Engine]:
    eng = open_engine(sns_db)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def account(engine: Engine) -> Account:
    return make_account(engine)


@pytest.fixture(scope="module")
def sns_http(sns_db: str, engine: Engine, aws: FakeAws) -> Iterator[httpx.Client]:
    """A server whose SNS trust includes the local certificate server, by configuration."""
    settings = Settings(database_url=sns_db, secret=TEST_SECRET, port=free_port(), sns_url_prefixes=(aws.base,))
    with LiveServer(settings) as live, httpx.Client(base_url=live.url, timeout=30) as client:
        yield client


def post(http: httpx.Client, path: str, env: dict[str, Any], **headers: str) -> httpx.Response:
    return http.post(path, content=orjson.dumps(env), headers={
        "Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": env["Type"],
        "x-amz-sns-message-id": env["MessageId"], "x-amz-sns-topic-arn": env["TopicArn"], **headers})


def mail(s: list[Any], **extra: Any) -> dict[str, Any]:
    return {"timestamp": "2024-03-01T10:00:00.000Z", "source": "news@shop.example", "sourceArn": "arn:aws:ses:x",
            "sendingAccountId": "123456789012", "messageId": "0100018e0e0f-ses-message-id",
            "destination": [x.email for x in s], "headersTruncated": False,
            "headers": [{"name": "X-Mailtally-Id", "value": s[0].mailtally_id}],
            "commonHeaders": {"from": ["news@shop.example"], "to": [x.email for x in s], "messageId": s[0].message_id,
                              "subject": "Sale"},
            "tags": {"ses:configuration-set": ["events"], "mailtally_id": [s[0].mailtally_id]}, **extra}


def notification(aws: FakeAws, body: dict[str, Any], version: str = "2") -> dict[str, Any]:
    return aws.envelope("Notification", version=version, Message=orjson.dumps(body).decode())


def test_subscription_confirmed_only_for_an_allowed_topic(sns_http: httpx.Client, engine: Engine,
                                                          account: Account, aws: FakeAws) -> None:
    path = endpoint(sns_http, account, "ses", topic_arns=[TOPIC])
    before = len(aws.confirmed)
    r = post(sns_http, path, aws.envelope("SubscriptionConfirmation", topic=OTHER_TOPIC))
    assert r.status_code == 403 and r.json()["error"]["code"] == "topic_not_allowed"
    assert len(aws.confirmed) == before  # never confirmed
    r = post(sns_http, path, aws.envelope("SubscriptionConfirmation", version="2"))
    assert r.status_code == 200, r.text
    assert len(aws.confirmed) == before + 1 and TOPIC in aws.confirmed[-1]
    with engine.connect() as conn:
        saved = store.endpoint_by_id(conn, path.rsplit("/", 1)[1])
    assert saved is not None and saved.options["confirmed_topics"] == [TOPIC]
    r = post(sns_http, path, aws.envelope("UnsubscribeConfirmation"))
    assert r.status_code == 200 and "unsubscribed" in r.json()["note"]
    assert len(aws.confirmed) == before + 1  # an unsubscription is not undone behind the owner's back


def test_forged_and_untrusted_signatures_are_refused(sns_http: httpx.Client, engine: Engine,
                                                     account: Account, aws: FakeAws) -> None:
    s = sends(sns_http, engine, account, ["ann@sesf.example"])
    path = endpoint(sns_http, account, "ses", topic_arns=[TOPIC])
    body = {"notificationType": "Complaint", "mail": mail(s),
            "complaint": {"complainedRecipients": [{"emailAddress": s[0].email}],
                          "timestamp": "2024-03-01T10:05:00.000Z", "feedbackId": "0100018e-feedback"}}
    other_key, _ = make_certificate()
    forged = aws.envelope("Notification", key=other_key, Message=orjson.dumps(body).decode())
    assert post(sns_http, path, forged).status_code == 403
    tampered = notification(aws, body)
    tampered["Message"] = tampered["Message"].replace("Complaint", "Bounce")
    assert post(sns_http, path, tampered).status_code == 403
    for url in ["https://sns.us-east-1.amazonaws.com.evil.example/cert.pem", "http://sns.us-east-1.amazonaws.com/c.pem",
                "https://evil.example/SimpleNotificationService-x.pem"]:
        r = post(sns_http, path, aws.envelope("Notification", cert_url=url, Message=orjson.dumps(body).decode()))
        assert r.status_code == 403 and r.json()["error"]["code"] == "bad_certificate"
    assert post(sns_http, path, aws.envelope("Notification", version="3", Message="x")).status_code == 403
    assert post(sns_http, path, notification(aws, body), **{"x-amz-sns-message-type": "Nope"}).status_code == 400
    assert post(sns_http, path, aws.envelope("Notification", topic=OTHER_TOPIC, Message="x")).status_code == 403
    assert counts(sns_http, account, s[0].activity_id)["abuse"] == 0
    ok = post(sns_http, path, notification(aws, body, version="1"))
    assert ok.status_code == 200 and counts(sns_http, account, s[0].activity_id)["abuse"] == 1


def test_every_notification_type_and_every_recipient(sns_http: httpx.Client, engine: Engine,
                                                     account: Account, aws: FakeAws) -> None:
    s = sends(sns_http, engine, account, ["ann@ses.example", "bob@ses.example", "cy@ses.example"])
    path = endpoint(sns_http, account, "ses", topic_arns=[TOPIC])
    fetches = aws.cert_fetches
    at = "2024-03-01T10:05:00.000Z"
    bodies = [
        {"eventType": "Send", "mail": mail(s), "send": {}},
        {"eventType": "Delivery", "mail": mail(s), "delivery": {
            "timestamp": at, "processingTimeMillis": 546, "recipients": [s[0].email, s[1].email],
            "smtpResponse": "250 ok:  Message 64111812 accepted", "reportingMTA": "a8-70.smtp-out.amazonses.com"}},
        {"notificationType": "Bounce", "mail": mail(s), "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "timestamp": at, "feedbackId": "0100-bounce",
            "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com", "bouncedRecipients": [
                {"emailAddress": s[1].email, "action": "failed", "status": "5.1.1",
                 "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
                {"emailAddress": s[2].email, "action": "failed", "status": "5.2.2",
                 "diagnosticCode": "smtp; 552 5.2.2 Mailbox full"}]}},
        {"eventType": "DeliveryDelay", "mail": mail(s), "deliveryDelay": {
            "timestamp": at, "delayType": "TransientCommunicationFailure", "expirationTime": at,
            "delayedRecipients": [{"emailAddress": s[0].email, "status": "4.4.1",
                                   "diagnosticCode": "smtp; 421 4.4.1 Unable to connect"}]}},
        {"eventType": "Open", "mail": mail(s), "open": {"timestamp": at, "userAgent": "Mozilla/5.0",
                                                         "ipAddress": "192.0.2.1"}},
        {"eventType": "Click", "mail": mail(s), "click": {"timestamp": at, "link": "https://shop.example/sale",
                                                           "userAgent": "Mozilla/5.0", "ipAddress": "192.0.2.1"}},
        {"eventType": "Complaint", "mail": mail(s), "complaint": {
            "timestamp": at, "feedbackId": "0100-complaint", "complaintFeedbackType": "abuse",
            "complainedRecipients": [{"emailAddress": s[0].email}]}},
        {"eventType": "Subscription", "mail": mail(s), "subscription": {
            "contactList": "news", "timestamp": at, "source": "UnsubscribeHeader",
            "newTopicPreferences": {"unsubscribeAll": True}, "oldTopicPreferences": {"unsubscribeAll": False}}},
        {"eventType": "Rendering Failure", "mail": mail(s), "failure": {"errorMessage": "Attribute 'x' missing",
                                                                        "templateName": "t"}},
    ]
    for i, body in enumerate(bodies):
        r = post(sns_http, path, notification(aws, body, version="1" if i % 2 else "2"))
        assert r.status_code == 200, (body.get("eventType") or body.get("notificationType"), r.text)
    c = counts(sns_http, account, s[0].activity_id)
    assert (c["opens"], c["clicks"], c["abuse"], c["optouts"]) == (1, 1, 1, 1)
    # Both bounced recipients count, each with the reason its diagnostic gives.
    assert (c["bounces_b"], c["bounces_f"]) == (1, 1)
    log = logged(engine, account, s[0].activity_id)
    assert log.count(("delivery", None, None)) == 2 and ("deferral", None, None) in log
    assert aws.cert_fetches - fetches <= 1  # the certificate is fetched once, then cached


def test_redelivered_notification_counts_nothing(sns_http: httpx.Client, engine: Engine, account: Account,
                                                 aws: FakeAws) -> None:
    s = sends(sns_http, engine, account, ["ann@sesr.example", "bob@sesr.example"])
    path = endpoint(sns_http, account, "ses", topic_arns=[TOPIC])
    body = {"notificationType": "Bounce", "mail": mail(s), "bounce": {
        "bounceType": "Permanent", "bounceSubType": "Suppressed", "timestamp": "2024-03-01T10:05:00.000Z",
        "bouncedRecipients": [{"emailAddress": s[0].email}, {"emailAddress": s[1].email}]}}
    env = notification(aws, body)
    assert post(sns_http, path, env).json()["recorded"] == 2
    assert post(sns_http, path, env).json() == {"received": 2, "recorded": 0, "duplicates": 2, "unmatched": 0,
                                                "ignored": 0}
    # No diagnostic: SES's own subtype decides.
    assert counts(sns_http, account, s[0].activity_id)["bounces_s"] == 2


def test_basic_auth_when_the_endpoint_has_a_secret(sns_http: httpx.Client, engine: Engine, aws: FakeAws) -> None:
    from ..conftest import make_account as _make

    account = _make(engine)
    path = endpoint(sns_http, account, "ses", secret="sns-password", topic_arns=[TOPIC])
    env = aws.envelope("SubscriptionConfirmation")
    r = post(sns_http, path, env)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic")  # SNS then sends them
    assert post(sns_http, path, env, Authorization=basic("mailtally", "wrong")["Authorization"]).status_code == 401
    assert post(sns_http, path, env, Authorization=basic("mailtally", "sns-password")["Authorization"]).status_code \
        == 200


def test_an_endpoint_needs_its_topics(sns_http: httpx.Client, engine: Engine) -> None:
    account = make_account(engine)
    for options in [{}, {"topic_arns": ["not-an-arn"]}]:
        r = sns_http.post("/v1/webhook-endpoints", json={"provider": "ses", **options}, headers=account.headers)
        assert r.status_code == 400 and "topic_arns" in r.json()["error"]["message"]
