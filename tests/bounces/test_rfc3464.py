"""Generic RFC 3464 delivery status notifications from assorted MTAs."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("rfc3464-"))
def test_rfc3464_corpus(name: str) -> None:
    check(name)
