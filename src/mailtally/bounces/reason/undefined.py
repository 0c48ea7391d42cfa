"""undefined: nothing in the bounce tells why it failed."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.UNDEFINED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset()
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = None


match = matcher(PATTERN)
