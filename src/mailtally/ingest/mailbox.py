"""A message read from a bounce mailbox, and what then happens to it in the mailbox.

The rule listmonk's POP3 scanner broke (it deletes every message it fetched, bounces or
not, and drops bounces when its queue is full): a message is touched only after the
transaction that recorded its events has committed, only when it yielded bounce records,
and only as configured — moved to a folder, or deleted with ``delete_handled``. A message
that is not a bounce stays where it was with its flags as they were, unless a second
folder is configured for those. The protocol side lives in `mailtally.servers.mailbox`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from ..store.raw_messages import MAX_STORED_BYTES
from .bounce_messages import Ingested, ingest_message


@dataclass(frozen=True, slots=True)
class Policy:
    move_to: str = "Bounces"
    other_to: str | None = None
    delete_handled: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    """What to do with a message once its transaction committed: move it, delete it, or nothing."""

    kind: str  # "move", "delete", "leave"
    folder: str | None = None


def handle(conn: Connection, account: int, secret: bytes, raw: bytes, source: str,
           keep_bytes: int = MAX_STORED_BYTES) -> Ingested:
    """Record one message inside the caller's transaction (re-reading one changes nothing)."""
    return ingest_message(conn, account, secret, raw, source=source, keep_bytes=keep_bytes)


def action_for(result: Ingested, policy: Policy) -> Action:
    if result.outcomes or result.unsubscribe:  # handled: a bounce, or an unsubscribe request
        if policy.delete_handled:
            return Action("delete")
        return Action("move", policy.move_to) if policy.move_to else Action("leave")  # POP3: no folders
    return Action("move", policy.other_to) if policy.other_to else Action("leave")
