"""Japanese carriers and ISPs: au/EZweb, KDDI, NTT docomo, Biglobe."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize(
    "name", cases("lhost-ezweb-", "lhost-kddi-", "rhost-kddi-", "rhost-nttdocomo-", "lhost-biglobe-")
)
def test_japan_corpus(name: str) -> None:
    check(name)
