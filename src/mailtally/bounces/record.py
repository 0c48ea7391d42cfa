"""The one thing the bounce engine hands out: a record per failed recipient."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mailtally.vocab import BounceCode, Reason

# The recipient of a complaint that names none (the original's To: "Undisclosed Recipients"):
# Sisimai's placeholder, in the reserved .invalid domain (RFC 2606), so no send ever matches it.
UNDISCLOSED_RECIPIENT = "undisclosed-recipient-in-headers@libsisimai.org.invalid"

_FIELDS = (
    "recipient", "reason", "bounce_code", "hard_bounce", "status", "reply_code", "diagnostic", "command",
    "remote_mta", "reporting_mta", "action", "timestamp", "feedback_type", "original_message_id", "original_to",
    "original_from", "original_subject", "original_headers",
)


class BounceRecord:
    """What happened to one recipient of one message, as read from a bounce, auto-reply or complaint.

    Immutable, compared by value. Written out rather than a frozen dataclass: importing
    `dataclasses` (with `inspect`) costs ~10 ms, a tenth of the engine's start-up in every
    `bounces parse` process.
    """

    __slots__ = _FIELDS

    recipient: str
    reason: Reason
    bounce_code: BounceCode | None
    hard_bounce: bool
    status: str
    reply_code: str
    diagnostic: str
    command: str
    remote_mta: str
    reporting_mta: str
    action: str
    timestamp: datetime | None
    feedback_type: str
    original_message_id: str
    original_to: str
    original_from: str
    original_subject: str
    original_headers: dict[str, str]

    def __init__(
        self,
        recipient: str,
        reason: Reason,
        bounce_code: BounceCode | None,
        hard_bounce: bool,
        status: str = "",
        reply_code: str = "",
        diagnostic: str = "",
        command: str = "",
        remote_mta: str = "",
        reporting_mta: str = "",
        action: str = "",
        timestamp: datetime | None = None,
        feedback_type: str = "",
        original_message_id: str = "",
        original_to: str = "",
        original_from: str = "",
        original_subject: str = "",
        original_headers: dict[str, str] | None = None,
    ) -> None:
        values = (
            recipient, reason, bounce_code, hard_bounce, status, reply_code, diagnostic, command, remote_mta,
            reporting_mta, action, timestamp, feedback_type, original_message_id, original_to, original_from,
            original_subject, {} if original_headers is None else original_headers,
        )
        for name, value in zip(_FIELDS, values, strict=True):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _FIELDS)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "BounceRecord(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in _FIELDS) + ")"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: a BounceRecord is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: a BounceRecord is immutable")

    def __reduce__(self) -> tuple[type[BounceRecord], tuple[Any, ...]]:
        return (BounceRecord, self._values())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: enums as their strings, the timestamp as ISO 8601 UTC."""
        return {
            "recipient": self.recipient,
            "reason": self.reason.value,
            "bounce_code": self.bounce_code.value if self.bounce_code is not None else None,
            "hard_bounce": self.hard_bounce,
            "status": self.status,
            "reply_code": self.reply_code,
            "diagnostic": self.diagnostic,
            "command": self.command,
            "remote_mta": self.remote_mta,
            "reporting_mta": self.reporting_mta,
            "action": self.action,
            "timestamp": self.timestamp.isoformat() if self.timestamp is not None else None,
            "feedback_type": self.feedback_type,
            "original_message_id": self.original_message_id,
            "original_to": self.original_to,
            "original_from": self.original_from,
            "original_subject": self.original_subject,
            "original_headers": dict(self.original_headers),
        }
