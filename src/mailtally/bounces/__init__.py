"""Bounce parsing: raw messages in, one `BounceRecord` per failed recipient out. Pure: no I/O."""

from __future__ import annotations

from mailtally.bounces.engine import parse
from mailtally.bounces.record import UNDISCLOSED_RECIPIENT, BounceRecord

__all__ = ["UNDISCLOSED_RECIPIENT", "BounceRecord", "parse"]
