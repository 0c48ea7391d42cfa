"""Smaller MTAs: DragonFly, OpenSMTPD, Courier, James, FML, IMail, Messaging Server, Domino, Notes."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize(
    "name",
    cases(
        "lhost-dragonfly-",
        "lhost-opensmtpd-",
        "lhost-courier-",
        "lhost-apachejames-",
        "lhost-fml-",
        "lhost-imailserver-",
        "lhost-messagingserver-",
        "lhost-domino-",
        "lhost-notes-",
    ),
)
def test_small_mtas_corpus(name: str) -> None:
    check(name)
