"""RFC 5965 ARF feedback reports: complaints, not bounces."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("arf-"))
def test_arf_corpus(name: str) -> None:
    check(name)
