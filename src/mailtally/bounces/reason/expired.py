"""expired: delivery was retried until the queue gave up."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.EXPIRED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.4.1", "4.4.7"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"connection timed out",
            r"could not find a gateway for",
            r"delivery time expired",
            r"failed to deliver to domain .{1,200} after \d+ tries",
            r"giving up on",
            r"it has not been collected after",
            r"message expired after sitting in queue for",
            r"message timed out",
            r"message expired,? ",
            r"retry time not reached for any host after a long failure period",
            r"server did not respond",
            r"(?:this message|message) has been in the queue too long",
            r"was not reachable within the allowed queue period",
            r"your message could not be delivered for more than",
            r"could not be delivered for (?:more than )?\d+ (?:days|hours)",
            r"(?:was|has been|could) not (?:be )?delivered within \d+ (?:days?|hours?)",
            r"unable to deliver (?:message )?after (?:multiple|several) (?:retries|attempts)",
            r"queue lifetime",
            r"retry (?:period|limit|timeout) (?:exceeded|expired)",
            r"giving up\b",
            r"will be retried for \d+ more day",
            r"did not accept our requests to connect",
            r"delivery failed \d+ attempts",
            r"envelope expired",
            r"all hosts have been failing for a long time",
            r"could not deliver for the last \d+ seconds",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    " has been in the queue too long", "all hosts have been failing for a long time", "connection timed out",
    "could not be delivered for ", "could not deliver for the last ", "could not find a gateway for",
    "delivery failed ", "delivery time expired", "did not accept our requests to connect", "envelope expired",
    "failed to deliver to domain ", "giving up", "it has not been collected after", "message expired",
    "message timed out", "queue lifetime", "retry ", "server did not respond", "unable to deliver ",
    "was not reachable within the allowed queue period", "will be retried for ", "delivered within ",
)


match = matcher(PATTERN, NEEDLES)
