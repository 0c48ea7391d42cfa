"""Yahoo and AOL."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("lhost-yahoo-", "rhost-yahooinc-", "rhost-aol-"))
def test_yahoo_corpus(name: str) -> None:
    check(name)
