"""delivered: a delivery report that says the message arrived: not a bounce."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.DELIVERED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"2.0.0", "2.1.5", "2.6.0"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = None


match = matcher(PATTERN)
