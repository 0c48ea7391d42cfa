"""blocked: the receiving server refuses the sending host (IP, hostname, block list)."""

from __future__ import annotations

import re

from mailtally.bounces.reason._phrases import matcher
from mailtally.vocab import Reason

REASON = Reason.BLOCKED
# DSN status codes that say this by themselves.
STATUSES: frozenset[str] = frozenset({"4.7.1", "4.7.2", "4.7.25", "5.7.25"})
# Matched against the lower-cased, single-line diagnostic text.
PATTERN: re.Pattern[str] | None = re.compile(
    "|".join(
        (
            r"block ?list",
            r"black ?list",
            r"\bblocked\b",
            r"\b(?:rbl|dnsbl|rbls)\b",
            r"spamhaus",
            r"spamcop",
            r"sorbs",
            r"barracuda",
            r"listed (?:on|in|at|by)\b",
            r"client host (?:\[.{1,60}\] )?(?:blocked|rejected)",
            r"your (?:ip|host|server|network)",
            r"\bbanned\b",
            r"connection (?:refused|rejected|dropped|denied) (?:by|from|for)",
            r"not allowed to (?:connect|send)",
            r"refused to accept",
            r"mail server is not allowed",
            r"ip address (?:blocked|banned|rejected|blacklisted|not allowed)",
            r"(?:connection|host|ip|sender ip) (?:is )?(?:on|in) (?:our|the|a) (?:block|black|deny) ?list",
            r"service unavailable",
            r"service not available, closing transmission channel",
            r"please use the smtp server of your isp",
            r"dynamic (?:ip|address|pool)",
            r"dial-?up",
            r"residential",
            r"not accept(?:ing)? (?:mail|messages|connections) from",
            r"rejected (?:your )?connection",
            r"temporarily (?:rejected|blocked|deferred)",
            r"sender ip",
            r"client ip",
            r"messages from .{1,60} temporarily deferred",
            r"poor reputation",
            r"e?helo(?! handshake)",
            r"no access from mail server",
            r"smtp error from remote mail server after initial connection",
            r"hostname (?:rejected|blocked)",
            r"refused to talk",
            r"(?:\[ts0[1-4]\]|\[tss0\d\])",
            r"dnsbl",
            r"spam (?:source|sender)",
            r"abuse",
            r"your message was rejected due to",
            r"not accepting connections",
            r"invalid ip for sending",
            r"service refuse",
            r"\(bl\)",
            r"messages from \S{1,60} weren't sent",
            r"daily relay quota",
        )
    )
)

# Speed: every alternative above contains one of these, and a few `in` tests cost far less than
# the regex's scan, which tries each position because not every alternative starts with a literal.
# tests/bounces/test_properties.py checks that they stay complete.
NEEDLES: tuple[str, ...] = (
    "(bl)", "[ts", "abuse", "banned", "barracuda", "black", "block", "client host ", "client ip", "connection",
    "daily relay quota", "dial", "dnsbl", "dynamic ", "helo", "hostname ", "invalid ip for sending", "ip address ",
    "list", "mail server is not allowed", "messages from ", "no access from mail server", "not accept",
    "not allowed to ", "poor reputation", "rbl", "refused to accept", "refused to talk", "residential", "sender ip",
    "service not available, closing transmission channel", "service refuse", "service unavailable", "sorbs", "spam s",
    "spamcop", "spamhaus", "temporarily ", "your ",
)


match = matcher(PATTERN, NEEDLES)
