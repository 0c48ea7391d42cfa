"""Times no clock can hold (infinite, not a number, past a float's range, before 1970) in every
provider that sends epoch times: a 400, never a 500 (providers retry those), nothing written."""

from __future__ import annotations

from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine

from ..conftest import Account
from .support import SendGridKeys, counts, endpoint, logged, sends
from .test_other_accounts import SAMPLES, signer

BAD_TIMES: list[Any] = ["inf", "-Infinity", "nan", 1e308, 1e30, "1e400", "9" * 400, -5]


def with_time(provider: str, doc: Any, value: Any) -> Any:
    """The provider's sample with its event time set to ``value``."""
    if provider == "mailgun":
        doc["timestamp"] = value
    elif provider == "sparkpost":
        doc[0]["msys"]["message_event"]["timestamp"] = value
    elif provider == "brevo":
        doc["ts_epoch"] = value
    return doc


@pytest.mark.parametrize("provider", ["sendgrid", "mailgun", "sparkpost", "brevo"])
def test_impossible_times_are_a_400_and_write_nothing(http: httpx.Client, engine: Engine, account: Account,
                                                      provider: str) -> None:
    s = sends(http, engine, account, [f"t@{provider}-t.example"])[0]
    if provider == "sendgrid":
        keys = SendGridKeys()
        path = endpoint(http, account, provider, keys.public_b64)

        def request(value: Any) -> tuple[bytes, dict[str, str]]:
            body = orjson.dumps([{"event": "bounce", "email": s.email, "sg_event_id": "t1", "timestamp": value,
                                  "mailtally_id": s.mailtally_id, "reason": "550 5.1.1 user unknown"}])
            return body, keys.sign(body)
    else:
        new_secret, sign = signer(provider)
        secret = new_secret()
        path = endpoint(http, account, provider, secret)

        def request(value: Any) -> tuple[bytes, dict[str, str]]:
            return sign(secret, with_time(provider, SAMPLES[provider](s, 1), value))

    for value in BAD_TIMES:
        body, headers = request(value)
        r = http.post(path, content=body, headers=headers)
        assert r.status_code == 400, (value, r.text)
        assert r.json()["error"]["code"] == "malformed"
    assert counts(http, account, s.activity_id)["bounces"] == 0
    assert [row[0] for row in logged(engine, account, s.activity_id)] == ["send"]
