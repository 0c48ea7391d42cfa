"""Mailbox providers: GMX, 1&1, Bigfoot, Verizon, Zoho, Yandex and other remote hosts."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize(
    "name",
    cases(
        "lhost-gmx-",
        "lhost-einsundeins-",
        "lhost-bigfoot-",
        "lhost-verizon-",
        "lhost-zoho-",
        "lhost-yandex-",
        "rhost-zoho-",
        "rhost-franceptt-",
        "rhost-apple-",
        "rhost-tencent-",
        "rhost-messagelabs-",
        "rhost-mimecast-",
        "rhost-godaddy-",
        "rhost-facebook-",
        "rhost-spectrum-",
        "rhost-iua-",
        "rhost-cox-",
        "rhost-cloudflare-",
    ),
)
def test_providers_corpus(name: str) -> None:
    check(name)
