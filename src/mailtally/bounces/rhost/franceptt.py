"""Orange and La Poste (France Telecom): every refusal ends with a numbered code such as
"OFR_506", "OFR006_102" or "LPN007_416"; its last three digits say what happened."""

from __future__ import annotations

import re

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".laposte.net", ".orange.fr", ".wanadoo.fr")
DOMAINS: frozenset[str] = frozenset({"laposte.net", "orange.fr", "wanadoo.fr"})

_CODE = re.compile(r"\b(?:lpnaaa|lpn|ofr|ouk)(?:_|\d{3}[-_])(\d{3})\b")
# The three-digit code -> reason, from the providers' published error lists. A code that is
# listed with no clear meaning ("service refused, please try later") stays undefined.
_CODES: dict[str, Reason] = {
    "101": Reason.BLOCKED, "102": Reason.BLOCKED, "103": Reason.BLOCKED, "104": Reason.TOOMANYCONN,
    "305": Reason.SECURITYERROR, "401": Reason.BLOCKED, "402": Reason.SECURITYERROR,
    "403": Reason.REJECTED, "405": Reason.REJECTED, "415": Reason.REJECTED,
    "416": Reason.USERUNKNOWN, "417": Reason.MAILBOXFULL, "418": Reason.USERUNKNOWN,
    "420": Reason.SUSPEND, "421": Reason.REJECTED, "426": Reason.SUSPEND,
    "505": Reason.SYSTEMERROR, "506": Reason.SPAMDETECTED, "510": Reason.BLOCKED,
    "514": Reason.MESGTOOBIG, "517": Reason.POLICYVIOLATION, "630": Reason.POLICYVIOLATION,
    "999": Reason.BLOCKED,
}


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    m = _CODE.search(text)
    if m is None:
        return None
    return _CODES.get(m.group(1), Reason.UNDEFINED)
