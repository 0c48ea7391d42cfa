"""filtered: the recipient (or its settings) refuses this sender or content after accepting the address."""

from __future__ import annotations

import re
from collections.abc import Callable

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.FILTERED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"5.2.0", "5.2.1", "5.2.4", "5.1.4", "4.2.4"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"filtered",
            r"rejected by (?:the )?(?:recipient|user)(?! domain)",
            r"recipient'?s? (?:filter|setting|preference|policy)",
            r"due to (?:the )?recipient'?s? (?:policy|preference|setting)",
            r"only accepting mail from specific",
            r"refused due to recipient preferences",
            r"is not accepting any mail",
            r"you have been blocked by the recipient",
            r"this account is restricted",
            r"has restricted sms e-mail",
            r"refuse to receive mail",
            r"user refuses",
            r"rejecting mail for this user",
            r"has blocked (?:you|your|the sender)",
            r"blocked by (?:the )?(?:user|recipient)",
            r"sender .{0,40}blocked by recipient",
            r"bounced address",
            r"does not accept (?:mail|messages) from",
            r"recipient rejected the message",
            r"mail (?:is )?not accepted by (?:the )?recipient",
            r"addressee has set up a filter",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "addressee has set up a filter", "blocked by ", "bounced address", "does not accept m", "filtered", "has blocked ",
    "has restricted sms e-mail", "is not accepting any mail", "not accepted by ", "only accepting mail from specific",
    "recipient", "refuse to receive mail", "rejected by ", "rejecting mail for this user", "this account is restricted",
    "user refuses",
)


match = matcher(PATTERN, NEEDLES)


# Commands sent before DATA: a refusal there cannot be about the message's content.
BEFORE_DATA = frozenset({"CONN", "EHLO", "HELO", "STARTTLS", "AUTH", "MAIL", "RCPT"})


def judged_after_data(reason: Reason, tmp: Reason | None, text: str, command: str,
                      match: Callable[[str], bool]) -> bool:
    """For reasons about the message's content: a refusal before DATA is about the sender."""
    return tmp is reason or (command not in BEFORE_DATA and match(text))


def true(tmp: Reason | None, text: str, command: str) -> bool:
    """A filter status (5.2.x) with refusal text, or an "unknown user" said after DATA: the
    recipient's side refused this sender or message (Japanese carriers answer filters this way)."""
    from mailtally.bounces.reason import userunknown

    if tmp is Reason.SUSPEND:
        return False
    if tmp is not REASON and command in BEFORE_DATA:
        return False
    if command == "LOCAL":
        return match(text)  # the MTA's own delivery: "unknown user" is just that
    if match(text):
        return True
    return userunknown.match(text) and userunknown.DIRECTORY.search(text) is None
