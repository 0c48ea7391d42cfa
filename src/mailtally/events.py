"""The one normalised Event every source produces and the store consumes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .vocab import BounceCode, DeviceType, EventType, Reason


@dataclass(slots=True)
class Event:
    type: EventType
    activity_id: str
    occurred_at: int  # UTC milliseconds
    contact_id: str | None = None
    email: str | None = None  # used to find (or create) the contact when contact_id is absent
    device_type: DeviceType | None = None
    url_id: str | None = None
    reason: Reason | None = None
    bounce_code: BounceCode | None = None
    hard: bool | None = None
    dsn_status: str | None = None
    reply_code: str | None = None
    diagnostic: str | None = None
    remote_mta: str | None = None
    optout_source: str | None = None
    optout_reason: str | None = None
    idempotency_key: str | None = None

    def key(self) -> str:
        """The idempotency key: the caller's, or one derived from what makes the event itself.

        Deriving it means replaying the same file twice never counts anything twice. Derived
        keys start with the time, so the unique index on them grows at its end.
        """
        if self.idempotency_key:
            return self.idempotency_key
        who = self.contact_id or f"@{(self.email or '').lower()}"
        raw = (
            f"{self.type}|{self.activity_id}|{who}|{self.occurred_at}|{self.device_type or ''}|"
            f"{self.url_id or ''}|{self.bounce_code or ''}|{self.reason or ''}"
        )
        return f"{self.occurred_at:012x}" + hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()
