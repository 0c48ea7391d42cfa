"""Microsoft: Office 365, Outlook.com, Exchange 2003/2007 and Microsoft's remote hosts."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize(
    "name",
    cases(
        "lhost-office365-",
        "lhost-outlook-",
        "lhost-exchange2003-",
        "lhost-exchange2007-",
        "rhost-microsoft-",
        "rhost-outlook-",
    ),
)
def test_office365_corpus(name: str) -> None:
    check(name)
