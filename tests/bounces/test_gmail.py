"""Google: Gmail, Google Groups, Google Workspace and Google's remote hosts."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize(
    "name", cases("lhost-gmail-", "lhost-googlegroups-", "lhost-googleworkspace-", "rhost-google-", "rhost-gsuite-")
)
def test_gmail_corpus(name: str) -> None:
    check(name)
