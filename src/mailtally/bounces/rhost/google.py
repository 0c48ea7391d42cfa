"""Google (Gmail, Workspace): its SMTP answers are documented and worded the same everywhere.

Read first because some of them would mislead the generic phrase lists: "unusual rate of
unsolicited mail" is about the sending IP (blocked), not spam in this message.
"""

from __future__ import annotations

import re

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = ("aspmx.l.google.com", "gmail-smtp-in.l.google.com", ".googlemail.com", ".google.com")
DOMAINS: frozenset[str] = frozenset({"gmail.com", "googlemail.com"})

# (reason, phrase) in the order they must be tried; phrases are Google's documented wording.
_RULES: tuple[tuple[Reason, str], ...] = (
    (Reason.USERUNKNOWN, r"the email account that you tried to reach does not exist"),
    (Reason.SUSPEND, r"the email account that you tried to reach is (?:disabled|inactive)"),
    (Reason.MAILBOXFULL, r"(?:account that you tried to reach|recipient's inbox) is (?:over quota|out of storage)"),
    (Reason.SPEEDING, r"receiving mail (?:at a rate|too quickly)|try again slower"),
    (Reason.REQUIREPTR, r"does not have a ptr record|ptr record setup|ip address does not match hostname"),
    (Reason.AUTHFAILURE, r"(?:fails to pass|does not have) authentication|unauthenticated email|dmarc policy"),
    (Reason.NOTCOMPLIANTRFC, r"not rfc ?5322 compliant|messages with multiple (?:[0-9. -]{1,12})?addresses in from"),
    (Reason.VIRUSDETECTED, r"contains? a virus"),
    (Reason.POLICYVIOLATION, r"content presents a potential|potential security issue"),
    (Reason.BLOCKED, r"unusual rate of unsolicited mail|not authorized to send email directly to our servers"),
    (Reason.SPAMDETECTED, r"likely unsolicited mail"),
)
_ANY = re.compile("|".join(f"(?P<r{i}>{p})" for i, (_, p) in enumerate(_RULES)))


# Gmail relaying a remote server's refusal: "Google tried to deliver your message, but it was
# rejected by the recipient domain ... (state N)." N is the SMTP stage the remote refused at.
RELAY_MARK = "google tried to deliver your message"
_STATE = re.compile(r"\(state (\d{1,2})\)")
_STATES: dict[str, Reason] = {
    "6": Reason.SYSTEMERROR, "8": Reason.SYSTEMERROR, "9": Reason.SYSTEMERROR, "12": Reason.NORELAYING,
    "13": Reason.BLOCKED, "14": Reason.USERUNKNOWN, "15": Reason.FILTERED, "17": Reason.FILTERED,
    "18": Reason.FILTERED,
}
_PRECISE = re.compile(r"[45]\.[1-7]\.[1-9]$")


def _relayed(text: str, status: str) -> Reason | None:
    """The stage Gmail names, unless the remote's own status code is precise enough to say more."""
    if _PRECISE.match(status):
        return None
    m = _STATE.search(text)
    return _STATES.get(m.group(1)) if m is not None else None


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    """Google's reading of its own answer, or None to let the generic rules decide."""
    if RELAY_MARK in text:
        return _relayed(text, status)
    m = _ANY.search(text)
    if m is None or m.lastgroup is None:
        return None
    return _RULES[int(m.lastgroup[1:])][0]
