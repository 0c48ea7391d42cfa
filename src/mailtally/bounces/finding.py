"""Raw per-recipient findings, as the format readers see them, before the reason is decided."""

from __future__ import annotations

from dataclasses import dataclass

from mailtally.vocab import Reason


@dataclass(slots=True)
class Finding:
    """Mutable scratch record: readers fill what their format tells, the engine completes the rest."""

    recipient: str = ""
    status: str = ""
    reply_code: str = ""
    diagnostic: str = ""
    diagnostic_type: str = ""
    command: str = ""
    remote_mta: str = ""
    reporting_mta: str = ""
    action: str = ""
    date: str = ""
    # A reader that knows the reason for certain (an auto-reply, a complaint, a queue timeout) says so.
    reason: Reason | None = None
    feedback_type: str = ""
    original_recipient: str = ""
