"""Bounce parsing: raw messages in, one `BounceRecord` per failed recipient out. Pure: no I/O.

`classify(status, reply_code, diagnostic)` is the same judgement for a single remote answer.
"""

from __future__ import annotations

from mailtally.bounces.engine import parse
from mailtally.bounces.reason import classify
from mailtally.bounces.record import UNDISCLOSED_RECIPIENT, BounceRecord

__all__ = ["UNDISCLOSED_RECIPIENT", "BounceRecord", "classify", "parse"]
