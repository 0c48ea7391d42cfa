"""GoDaddy (secureserver.net): refusals carry an "IBnnn" code; a few answers are phrases only."""

from __future__ import annotations

import re

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = ("smtp.secureserver.net", "mailstore1.secureserver.net")
DOMAINS: frozenset[str] = frozenset()

_CODE = re.compile(r" (ib\d{3})\b")
_CODES: dict[str, Reason] = {
    "ib401": Reason.SECURITYERROR, "ib501": Reason.NOTCOMPLIANTRFC, "ib502": Reason.NOTCOMPLIANTRFC,
    "ib506": Reason.REJECTED, "ib508": Reason.AUTHFAILURE, "ib108": Reason.REQUIREPTR,
    "ib212": Reason.SPAMDETECTED, "ib705": Reason.VIRUSDETECTED, "ib605": Reason.TOOMANYCONN,
    "ib007": Reason.TOOMANYCONN, "ib101": Reason.SPEEDING, "ib110": Reason.BLOCKED, "ib111": Reason.BLOCKED,
    "ib112": Reason.BLOCKED, "ib113": Reason.BLOCKED, "ib504": Reason.SPEEDING, "ib510": Reason.SPEEDING,
    "ib607": Reason.SPEEDING, "ib103": Reason.BADREPUTATION, "ib104": Reason.BLOCKED,
    "ib105": Reason.BLOCKED, "ib106": Reason.BLOCKED,
}
_PHRASES = Phrases(
    (
        (Reason.BLOCKED, ("rbl reject", "www.spamhaus.org/query/bl?ip=")),
        (Reason.EXPIRED, ("has been in the queue too long", "delivery timeout")),
        (Reason.MAILBOXFULL, ("account storage limit",)),
        (Reason.SPAMDETECTED, ("message rejected for spam or virus content",)),
        (Reason.SUSPEND, ("account disabled",)),
        (Reason.SYSTEMERROR, ("message is looping",)),
        (Reason.USERUNKNOWN, ("recipient not found", "account does not exist")),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    m = _CODE.search(text)
    if m is not None and m.group(1) in _CODES:
        return _CODES[m.group(1)]
    return _PHRASES.find(text)
