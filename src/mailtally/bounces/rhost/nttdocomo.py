"""NTT docomo (mfsmax.docomo.ne.jp): answers "550 Unknown user" both for a missing mailbox (at
RCPT) and for its receiving filter (after DATA), so the command and status decide."""

from __future__ import annotations

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = ("mfsmax.docomo.ne.jp",)
DOMAINS: frozenset[str] = frozenset({"docomo.ne.jp"})

_PHRASES: tuple[tuple[str, Reason], ...] = (
    ("552 too much mail data", Reason.MAILBOXFULL),
    ("552 too many recipients", Reason.TOOMANYCONN),
    ("503 bad sequence of commands", Reason.SYNTAXERROR),
    ("504 command parameter not implemented", Reason.SYNTAXERROR),
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    if status in ("5.1.1", "5.0.911"):
        return Reason.USERUNKNOWN
    if status == "5.2.0":
        return Reason.FILTERED
    for phrase, reason in _PHRASES:
        if phrase in text:
            return reason
    if status == "5.0.0":
        if command == "RCPT":
            return Reason.USERUNKNOWN
        if command == "DATA":
            return Reason.REJECTED
    return None
