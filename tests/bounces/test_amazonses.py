"""Amazon SES (mail and JSON notifications), WorkMail, receiving SES."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize("name", cases("lhost-amazonses-", "lhost-amazonworkmail-", "lhost-receivingses-"))
def test_amazonses_corpus(name: str) -> None:
    check(name)
