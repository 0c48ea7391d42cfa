"""Shared pieces of the provider webhook tests: a send to find, endpoints, signing as each provider does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine, text

from mailtally.store import catalog
from mailtally.verp import SendRef, headers

from ..conftest import TEST_SECRET, Account
from ..support.scenario import campaign_with_activity, post_events


@dataclass
class Send:
    activity_id: str
    email: str
    contact_id: str
    mailtally_id: str  # the X-Mailtally-Id a sender attaches
    message_id: str


def sends(http: httpx.Client, engine: Engine, account: Account, emails: list[str],
          at: str = "2024-03-01T10:00:00Z", name: str = "Webhook campaign") -> list[Send]:
    """One activity sent to ``emails`` through the API, with each send's id as a sender attaches it."""
    _, activity = campaign_with_activity(http, account.headers, name,
                                         links=[{"url_id": "1", "url": "https://shop.example/sale"}])
    post_events(http, account.headers,
                [{"type": "send", "activity_id": activity, "email": e, "occurred_at": at} for e in emails])
    out = []
    with engine.connect() as conn:
        act = catalog.get_activity(conn, account.id, activity)
        assert act is not None
        for e in emails:
            contact = catalog.contact_by_email(conn, account.id, e)
            assert contact is not None
            h = headers(TEST_SECRET.encode(), SendRef(account.id, act.num_id, contact.num_id), "mail.example.com")
            out.append(Send(activity, e, contact.id, h["X-Mailtally-Id"], h["Message-ID"]))
    return out


def endpoint(http: httpx.Client, account: Account, provider: str, secret: str = "", **options: Any) -> str:
    """Create an endpoint through the API; returns its path (/hooks/provider/id)."""
    r = http.post("/v1/webhook-endpoints", json={"provider": provider, "secret": secret, **options},
                  headers=account.headers)
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    return "/hooks/" + url.split("/hooks/", 1)[1]


def counts(http: httpx.Client, account: Account, activity: str) -> dict[str, int]:
    r = http.get(f"/v1/activities/{activity}/stats", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()["counts"]  # type: ignore[no-any-return]


def logged(engine: Engine, account: Account, activity: str) -> list[tuple[str, str | None, str | None]]:
    """The log's (type, reason, bounce_code) rows for an activity, as the store keeps them."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT e.type, e.reason, e.bounce_code FROM events e JOIN activities a "
            "ON a.account_id = e.account_id AND a.num_id = e.activity_num "
            "WHERE e.account_id = :acc AND a.id = :act ORDER BY e.type, e.reason"),
            {"acc": account.id, "act": activity})
        return [(r[0], r[1], r[2]) for r in rows]


def unmatched(http: httpx.Client, account: Account) -> list[dict[str, Any]]:
    r = http.get("/v1/bounces/unmatched", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()["unmatched"]  # type: ignore[no-any-return]


def now() -> int:
    return int(time.time())


# -- SendGrid: ECDSA P-256 over timestamp + body ------------------------------------------------


class SendGridKeys:
    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_b64 = base64.b64encode(der).decode()  # as SendGrid's Mail Settings shows it

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else now())
        sig = self.private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": ts, "Content-Type": "application/json"}


# -- Mailgun: hex HMAC-SHA256 of timestamp + token ---------------------------------------------


def mailgun_body(key: str, event_data: dict[str, Any], timestamp: int | None = None,
                 token: str | None = None) -> bytes:
    ts = str(timestamp if timestamp is not None else now())
    token = token or secrets.token_hex(25)
    sig = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    return orjson.dumps({"signature": {"timestamp": ts, "token": token, "signature": sig}, "event-data": event_data})


# -- Svix (Resend) -------------------------------------------------------------------------------


def svix_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def svix_sign(secret: str, body: bytes, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else now())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
    return {"svix-id": msg_id, "svix-timestamp": ts, "svix-signature": f"v1,{sig}", "Content-Type": "application/json"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode(),
            "Content-Type": "application/json"}
