"""RFC 3834 auto-replies: vacation."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("rfc3834-"))
def test_rfc3834_corpus(name: str) -> None:
    check(name)
