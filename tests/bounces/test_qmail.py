"""qmail bounces."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("lhost-qmail-"))
def test_qmail_corpus(name: str) -> None:
    check(name)
