"""Spectrum (Charter): refusals carry "AUP#I-nnnn" (incoming) or "AUP#O-nnnn" (outgoing) codes."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = ("charter.net",)
DOMAINS: frozenset[str] = frozenset({"charter.net"})

_CODE = re.compile(r"aup#[a-z-]{0,4}(\d{4})")
# (first, last, reason): inclusive ranges of Spectrum's published codes.
_RANGES: tuple[tuple[int, int, Reason], ...] = (
    (1000, 1000, Reason.BLOCKED), (1010, 1080, Reason.REJECTED), (1090, 1090, Reason.SYSTEMERROR),
    (1100, 1150, Reason.REQUIREPTR), (1160, 1190, Reason.POLICYVIOLATION), (1200, 1250, Reason.BLOCKED),
    (1260, 1260, Reason.NETWORKERROR), (1300, 1340, Reason.TOOMANYCONN), (1350, 1490, Reason.SPEEDING),
    (1500, 1500, Reason.REJECTED), (1520, 1520, Reason.REJECTED), (1530, 1530, Reason.MESGTOOBIG),
    (1540, 1550, Reason.SPEEDING),
    (1560, 1560, Reason.POLICYVIOLATION), (1580, 1580, Reason.SPEEDING),
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    m = _CODE.search(text)
    if m is None:
        return None
    n = int(m.group(1))
    for lo, hi, reason in _RANGES:
        if lo <= n <= hi:
            return reason
    return None
