"""Creating endpoints: through the API and the CLI, each provider's secret checked, nothing leaked."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from ..conftest import Account
from .support import SendGridKeys, counts, sends, svix_secret


def test_create_list_and_delete(http: httpx.Client, account: Account) -> None:
    keys = SendGridKeys()
    r = http.post("/v1/webhook-endpoints", json={"provider": "sendgrid", "secret": keys.public_b64},
                  headers=account.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["url"] == f"{str(http.base_url).rstrip('/')}/hooks/sendgrid/{created['id']}"
    assert created["has_secret"] is True and "secret" not in created
    listed = http.get("/v1/webhook-endpoints", headers=account.headers).json()["webhook_endpoints"]
    assert created["id"] in [e["id"] for e in listed]
    assert keys.public_b64 not in orjson.dumps(listed).decode()  # the secret is never shown again
    assert http.delete(f"/v1/webhook-endpoints/{created['id']}", headers=account.headers).status_code == 204
    body = b"[]"
    gone = http.post(f"/hooks/sendgrid/{created['id']}", content=body, headers=keys.sign(body))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(("body", "words"), [
    ({"provider": "sendgrid", "secret": "not a key"}, "verification key"),
    ({"provider": "sendgrid"}, "secret"),
    ({"provider": "resend", "secret": "whsec_!!"}, "whsec_"),
    ({"provider": "mailgun"}, "signing key"),
    ({"provider": "postmark"}, "password"),
    ({"provider": "carrier-pigeon", "secret": "x"}, "provider"),
    ({"provider": "brevo", "secret": "x", "username": "has:colon"}, "username"),
    ({"provider": "brevo", "secret": "x", "extra": 1}, "extra"),
])
def test_bad_endpoint_requests_get_400(http: httpx.Client, account: Account, body: dict[str, object],
                                       words: str) -> None:
    r = http.post("/v1/webhook-endpoints", json=body, headers=account.headers)
    assert r.status_code == 400, r.text
    assert words in r.text


def test_endpoints_need_a_token(http: httpx.Client) -> None:
    assert http.post("/v1/webhook-endpoints", json={"provider": "mailgun", "secret": "k"}).status_code == 401
    assert http.get("/v1/webhook-endpoints").status_code == 401


def test_unknown_endpoints_and_oversized_bodies(http: httpx.Client, account: Account) -> None:
    assert http.post("/hooks/sendgrid/whnope", content=b"[]").status_code == 404
    assert http.post("/hooks/nobody/whnope", content=b"[]").status_code == 404
    assert http.post("/hooks/sendgrid/" + "x" * 300, content=b"[]").status_code == 404
    secret = svix_secret()
    r = http.post("/v1/webhook-endpoints", json={"provider": "resend", "secret": secret}, headers=account.headers)
    path = "/hooks/" + r.json()["url"].split("/hooks/", 1)[1]
    huge = http.post(path, content=b" " * (21 * 1024 * 1024))
    assert huge.status_code == 413


def test_cli_adds_and_lists_endpoints(http: httpx.Client, engine: Engine, account: Account, db_url: str) -> None:
    env = {**os.environ, "MAILTALLY_DATABASE_URL": db_url, "MAILTALLY_PUBLIC_URL": str(http.base_url).rstrip("/")}
    cmd = [sys.executable, "-m", "mailtally", "webhooks"]
    keys = SendGridKeys()
    out = subprocess.run([*cmd, "add", "sendgrid", "--account", account.name, "--secret", keys.public_b64],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    url = out.stdout.strip()
    assert url.startswith(f"{str(http.base_url).rstrip('/')}/hooks/sendgrid/wh")
    # The printed URL works: a signed batch posted to it is recorded.
    s = sends(http, engine, account, ["cli@cli.example"])[0]
    body = orjson.dumps([{"email": s.email, "timestamp": 1709287200, "event": "open", "sg_event_id": "cli-1",
                          "mailtally_id": s.mailtally_id}])
    assert httpx.post(url, content=body, headers=keys.sign(body)).json()["recorded"] == 1
    assert counts(http, account, s.activity_id)["opens"] == 1
    listed = subprocess.run([*cmd, "list", "--account", account.name], capture_output=True, text=True, env=env,
                            timeout=120)
    assert url in listed.stdout
    bad = subprocess.run([*cmd, "add", "ses", "--account", account.name], capture_output=True, text=True, env=env,
                         timeout=120)
    assert bad.returncode == 2 and "topic_arns" in bad.stderr
    ses = subprocess.run([*cmd, "add", "ses", "--account", account.name, "--topic-arn",
                          "arn:aws:sns:eu-west-1:123456789012:bounces"], capture_output=True, text=True, env=env,
                         timeout=120)
    assert ses.returncode == 0 and "/hooks/ses/wh" in ses.stdout
    endpoint_id = url.rsplit("/", 1)[1]
    gone = subprocess.run([*cmd, "remove", endpoint_id, "--account", account.name], capture_output=True, text=True,
                          env=env, timeout=120)
    assert gone.returncode == 0
    assert httpx.post(url, content=body, headers=keys.sign(body)).status_code == 404
