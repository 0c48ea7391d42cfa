"""Raw per-recipient findings, as the format readers see them, before the reason is decided."""

from __future__ import annotations

from mailtally.vocab import Reason


class Finding:
    """Mutable scratch record: readers fill what their format tells, the engine completes the rest.

    A plain class, not a dataclass: importing `dataclasses` (with `inspect`) costs ~10 ms, a
    tenth of the engine's start-up in every `bounces parse` process.
    """

    __slots__ = (
        "action", "command", "date", "diagnostic", "diagnostic_type", "feedback_type", "reason", "recipient",
        "remote_mta", "reply_code", "reporting_mta", "status",
    )

    def __init__(
        self,
        recipient: str = "",
        status: str = "",
        reply_code: str = "",
        diagnostic: str = "",
        diagnostic_type: str = "",
        command: str = "",
        remote_mta: str = "",
        reporting_mta: str = "",
        action: str = "",
        date: str = "",
        # A reader that knows the reason for certain (an auto-reply, a complaint, a queue timeout) says so.
        reason: Reason | None = None,
        feedback_type: str = "",
    ) -> None:
        self.recipient = recipient
        self.status = status
        self.reply_code = reply_code
        self.diagnostic = diagnostic
        self.diagnostic_type = diagnostic_type
        self.command = command
        self.remote_mta = remote_mta
        self.reporting_mta = reporting_mta
        self.action = action
        self.date = date
        self.reason = reason
        self.feedback_type = feedback_type

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Finding({fields})"
