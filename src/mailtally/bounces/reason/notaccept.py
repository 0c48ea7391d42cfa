"""notaccept: the destination does not accept mail at all (null MX, no mail service)."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.NOTACCEPT
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.1.10", "5.3.2", "4.3.2", "5.7.27"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"null mx",
            r"does not accept (?:any )?mail",
            r"not accepting (?:any )?(?:network )?mail",
            r"host does not accept mail",
            r"mx record (?:is )?(?:null|empty)",
            r"no mx record",
            r"domain does not accept mail",
            r"does not receive mail",
            r"responded with code noerror",
            r"name server: \.: host not found",
            r"an mx or srv record indicated no smtp service",
            r"no mx found for domain",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "an mx or srv record indicated no smtp service", "does not accept ", "does not receive mail", "mx record ",
    "name server: .: host not found", "no mx found for domain", "no mx record", "not accepting ", "null mx",
    "responded with code noerror",
)


match = matcher(PATTERN, NEEDLES)

# The domain publishes no mail exchanger: it takes no mail at all, whatever routing status says.
NO_MX = re.compile(
    r"no mx (?:record|found)|null mx|(?:could ?n[o']t|cannot|unable to) find (?:a|any) mail exchanger"
)
