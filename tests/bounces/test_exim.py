"""Exim bounces, and Mail.ru's Exim-based ones."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("lhost-exim-", "lhost-mailru-"))
def test_exim_corpus(name: str) -> None:
    check(name)
