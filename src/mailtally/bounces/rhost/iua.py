"""I.UA (Ukraine, *.email.ua): answers link to https://mail.i.ua/err/N/, N a documented code."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".email.ua",)
DOMAINS: frozenset[str] = frozenset({"i.ua"})

_CODE = re.compile(r"\.i\.ua/err/(\d{1,2})\b")
_CODES: dict[str, Reason] = {
    "1": Reason.NORELAYING, "2": Reason.USERUNKNOWN, "3": Reason.SUSPEND, "4": Reason.MAILBOXFULL,
    "5": Reason.TOOMANYCONN, "6": Reason.NORELAYING, "7": Reason.BLOCKED, "8": Reason.REJECTED,
    "9": Reason.BLOCKED, "10": Reason.FILTERED,
}


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    m = _CODE.search(text)
    return _CODES.get(m.group(1)) if m is not None else None
