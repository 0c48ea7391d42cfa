"""KDDI au (au.com, ezweb.ne.jp): "550 : User unknown" (no address) is how its filter refuses a
sender; "550 <addr>: User unknown" is a real unknown mailbox."""

from __future__ import annotations

from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".ezweb.ne.jp", "msmx.au.com")
DOMAINS: frozenset[str] = frozenset({"ezweb.ne.jp", "au.com"})


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    if "550 : user unknown" in text:
        return Reason.FILTERED
    if ">: user unknown" in text:
        return Reason.USERUNKNOWN
    return None
