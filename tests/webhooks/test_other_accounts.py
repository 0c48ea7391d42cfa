"""Another account, for every provider: a request signed or authenticated with the other
account's secret is refused at ours (and ours at theirs), and our endpoint's genuine request
naming the other account's sends (their signed ``mailtally_id``) touches none of their data.
(SES: another account's topic, tests/webhooks/test_ses.py; SendGrid: test_sendgrid.py.)"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from ..conftest import Account
from .support import Send, basic, counts, endpoint, mailgun_body, sends, svix_secret, svix_sign, unmatched


def mailgun(send: Send, n: int) -> dict[str, Any]:
    return {"event": "failed", "severity": "permanent", "id": f"mg-other-{n}-{secrets.token_hex(4)}",
            "timestamp": 1709287200 + n, "recipient": send.email, "user-variables": {"mailtally_id": send.mailtally_id},
            "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"}}


def resend(send: Send, n: int) -> dict[str, Any]:
    return {"type": "email.bounced", "created_at": f"2024-03-01T10:{n:02d}:00.000Z",
            "data": {"email_id": f"re-other-{n}", "to": [send.email], "tags": {"mailtally_id": send.mailtally_id},
                     "bounce": {"type": "Permanent", "subType": "General", "message": "550 5.1.1 user unknown"}}}


def postmark(send: Send, n: int) -> dict[str, Any]:
    return {"RecordType": "Bounce", "ID": 7000 + n, "Type": "HardBounce", "TypeCode": 1, "Email": send.email,
            "BouncedAt": "2024-03-01T10:04:00Z", "Details": "smtp;550 5.1.1 user unknown",
            "Metadata": {"mailtally_id": send.mailtally_id}}


def sparkpost(send: Send, n: int) -> list[dict[str, Any]]:
    return [{"msys": {"message_event": {"type": "bounce", "event_id": f"9235692769381385{n}",
                                        "timestamp": str(1709287200 + n), "rcpt_to": send.email, "bounce_class": "10",
                                        "raw_reason": "550 5.1.1 user unknown",
                                        "rcpt_meta": {"mailtally_id": send.mailtally_id}}}}]


def brevo(send: Send, n: int) -> dict[str, Any]:
    return {"event": "hard_bounce", "email": send.email, "message-id": f"<other{n}@smtp-relay.mailin.fr>",
            "ts_epoch": (1709287200 + n) * 1000, "reason": "550 5.1.1 user unknown",
            "X-Mailin-custom": f"mailtally_id:{send.mailtally_id}"}


Signer = Callable[[str, Any], tuple[bytes, dict[str, str]]]


def signer(provider: str) -> tuple[Callable[[], str], Signer]:
    """A fresh secret for the provider, and how a request is signed or authenticated with one."""
    if provider == "mailgun":
        return (lambda: "key-" + secrets.token_hex(16),
                lambda secret, doc: (mailgun_body(secret, doc), {"Content-Type": "application/json"}))
    if provider == "resend":
        def sign(secret: str, doc: Any) -> tuple[bytes, dict[str, str]]:
            body = orjson.dumps(doc)
            return body, svix_sign(secret, body, "msg_" + secrets.token_hex(8))
        return svix_secret, sign
    return (lambda: secrets.token_urlsafe(16),
            lambda secret, doc: (orjson.dumps(doc), basic("mailtally", secret)))


SAMPLES = {"mailgun": mailgun, "resend": resend, "postmark": postmark, "sparkpost": sparkpost, "brevo": brevo}


@pytest.mark.parametrize("provider", sorted(SAMPLES))
def test_another_accounts_secret_and_sends_are_refused_and_untouched(
        http: httpx.Client, engine: Engine, account: Account, other_account: Account, provider: str) -> None:
    new_secret, sign = signer(provider)
    sample = SAMPLES[provider]
    ours, theirs = new_secret(), new_secret()
    mine = sends(http, engine, account, [f"mine@{provider}-o.example"])[0]
    private = sends(http, engine, other_account, [f"private@{provider}-o.example"])[0]
    path = endpoint(http, account, provider, ours)
    their_path = endpoint(http, other_account, provider, theirs)

    # Their secret at our endpoint, ours at theirs: refused, nothing written.
    for at, secret, doc in [(path, theirs, sample(mine, 1)), (their_path, ours, sample(private, 2))]:
        body, headers = sign(secret, doc)
        r = http.post(at, content=body, headers=headers)
        assert r.status_code in (401, 403), r.text
    assert counts(http, account, mine.activity_id)["bounces"] == 0
    assert counts(http, other_account, private.activity_id)["bounces"] == 0

    # Our genuine request naming their send: it finds no send of ours (their address was never
    # sent anything here), so it is kept as ours, unmatched; their data stays as it was.
    body, headers = sign(ours, sample(private, 3))
    r = http.post(path, content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["recorded"] == 0 and r.json()["unmatched"] == 1
    assert counts(http, other_account, private.activity_id)["bounces"] == 0
    assert not unmatched(http, other_account)
    assert [u["recipient"] for u in unmatched(http, account)] == [private.email]

    # And our own, genuinely: recorded for us.
    body, headers = sign(ours, sample(mine, 4))
    assert http.post(path, content=body, headers=headers).json()["recorded"] == 1
    assert counts(http, account, mine.activity_id)["bounces"] == 1
