"""Sendmail and V5 Sendmail bounces."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("lhost-sendmail-", "lhost-v5sendmail-"))
def test_sendmail_corpus(name: str) -> None:
    check(name)
