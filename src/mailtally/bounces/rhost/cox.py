"""Cox Communications: refusals name an "AUP#CODE" from Cox's published error-code page."""

from __future__ import annotations

import re

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = ("cox.net",)
DOMAINS: frozenset[str] = frozenset({"cox.net"})

_CODE = re.compile(r"aup#([0-9a-z]{1,12})")
_CODES: dict[str, Reason] = {
    "cxbl": Reason.BLOCKED, "cxdns": Reason.REQUIREPTR, "cxsndr": Reason.AUTHFAILURE,
    "cxsmtp": Reason.REJECTED, "cxcnct": Reason.TOOMANYCONN, "cxmxrt": Reason.TOOMANYCONN,
    "cdrbl": Reason.BLOCKED, "cxthrt": Reason.SECURITYERROR, "cxmj": Reason.SECURITYERROR,
    "urlbl011": Reason.SPAMDETECTED, "urlbl101": Reason.SPAMDETECTED, "urlbl110": Reason.SPAMDETECTED,
    "urlbl1001": Reason.SPAMDETECTED,
}
_PHRASES = Phrases(
    (
        (Reason.BLOCKED, ("cox too many bad commands from", "too many invalid recipients")),
        (Reason.REQUIREPTR, ("dns check failure - try again later", "rejected - no rdns")),
        (Reason.POLICYVIOLATION, ("esmtp no data before greeting", "attachment extension is forbidden")),
        (Reason.REJECTED, ("sender rejected",)),
        (Reason.SYSTEMERROR, ("esmtp server temporarily not available",)),
        (Reason.TOOMANYCONN, (
            "too many sessions from", "requested action aborted: try again later", "message threshold exceeded",
        )),
        (Reason.USERUNKNOWN, ("recipient rejected",)),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    m = _CODE.search(text)
    if m is not None:
        code = m.group(1)
        if code.startswith("ipbl"):  # the sending IP is on one or more DNS block lists
            return Reason.BLOCKED
        if code in _CODES:
            return _CODES[code]
    return _PHRASES.find(text)
