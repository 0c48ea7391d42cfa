"""Filtering gateways, appliances and sending services."""

from __future__ import annotations

import pytest

from tests.bounces._corpus import cases, check


@pytest.mark.parametrize(
    "name",
    cases(
        "lhost-activehunter-",
        "lhost-amavis-",
        "lhost-barracuda-",
        "lhost-mailfoundry-",
        "lhost-mailmarshal-",
        "lhost-mcafee-",
        "lhost-mfilter-",
        "lhost-mimecast-",
        "lhost-mxlogic-",
        "lhost-surfcontrol-",
        "lhost-trendmicro-",
        "lhost-powermta-",
        "lhost-sendgrid-",
        "lhost-x1-",
        "lhost-x2-",
        "lhost-x3-",
        "lhost-x4-",
        "lhost-x5-",
        "lhost-x6-",
    ),
)
def test_gateways_corpus(name: str) -> None:
    check(name)
