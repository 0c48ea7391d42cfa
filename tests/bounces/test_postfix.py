"""Postfix bounces (RFC 3464 with Postfix's own text part)."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("lhost-postfix-"))
def test_postfix_corpus(name: str) -> None:
    check(name)
