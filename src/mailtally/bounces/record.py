"""The one thing the bounce engine hands out: a record per failed recipient."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailtally.vocab import BounceCode, Reason

# The recipient of a complaint that names none (the original's To: "Undisclosed Recipients"):
# Sisimai's placeholder, in the reserved .invalid domain (RFC 2606), so no send ever matches it.
UNDISCLOSED_RECIPIENT = "undisclosed-recipient-in-headers@libsisimai.org.invalid"


@dataclass(frozen=True, slots=True)
class BounceRecord:
    """What happened to one recipient of one message, as read from a bounce, auto-reply or complaint."""

    recipient: str
    reason: Reason
    bounce_code: BounceCode | None
    hard_bounce: bool
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    command: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    action: str = ""
    timestamp: datetime | None = None
    feedback_type: str = ""
    original_message_id: str = ""
    original_to: str = ""
    original_from: str = ""
    original_subject: str = ""
    original_headers: dict[str, str] = field(default_factory=dict)
    # The DSN's Original-Recipient (the address as the sender wrote it) when it differs from
    # `recipient` (Final-Recipient, after aliasing or forwarding); "" otherwise.
    original_recipient: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values: enums as their strings, the timestamp as ISO 8601 UTC."""
        return {
            "recipient": self.recipient,
            "original_recipient": self.original_recipient,
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
