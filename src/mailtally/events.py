"""The one normalised Event every source produces and the store consumes."""

from __future__ import annotations

import struct
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
            # The members' values spelled out: formatting an enum member costs more than the hash.
            d, b, r = self.device_type, self.bounce_code, self.reason
            raw = (
                f"{self.type._value_}|{self.activity_id}|{self.contact_id or '@' + (self.email or '').lower()}|"
                f"{self.occurred_at}|{d._value_ if d else ''}|{self.url_id or ''}|{b._value_ if b else ''}|"
                f"{r._value_ if r else ''}"
            )
        h = _HASH.copy()  # cheaper than building a hasher with its digest size each time
        h.update(raw.encode())
        return _SIGNED_64(h.digest())[0]


_HASH = blake2b(digest_size=8)
_SIGNED_64 = struct.Struct(">q").unpack
