"""The one normalised Event every source produces and the store consumes."""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b

from .vocab import BounceCode, DeviceType, EventType, Reason, Verdict, VerdictWhy


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
    # Opens and clicks the tracking endpoints saw (None from other sources).
    user_agent: str | None = None
    ip: str | None = None
    since_send_s: int | None = None
    verdict: Verdict | None = None
    verdict_why: VerdictWhy | None = None
    counted: bool = True  # False: a machine hit the account's policy keeps out of the vendor counters
    hit_id: int | None = None  # each tracked hit is its own event, even two alike in one millisecond

    def idem(self) -> int:
        """The idempotency key as a signed 64-bit hash: of the caller's key, or of the event itself.

        Deriving it from the content means replaying the same file twice never counts anything
        twice. The store keeps it in the log's primary key, next to the time and type.
        """
        if self.hit_id is not None:
            return self.hit_id
        if self.idempotency_key:
            raw = "key|" + self.idempotency_key
        else:
            who = self.contact_id or f"@{(self.email or '').lower()}"
            # StrEnum members format as their values.
            raw = (
                f"{self.type}|{self.activity_id}|{who}|{self.occurred_at}|{self.device_type or ''}|"
                f"{self.url_id or ''}|{self.bounce_code or ''}|{self.reason or ''}"
            )
        return int.from_bytes(blake2b(raw.encode(), digest_size=8).digest(), "big", signed=True)
