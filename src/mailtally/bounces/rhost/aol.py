"""AOL Mail's own outbound relays (*.mx.aol.com): DNS failures worded by its MTA."""

from __future__ import annotations

from mailtally.bounces.rhost._table import Phrases
from mailtally.vocab import Reason

HOSTS: tuple[str, ...] = (".mail.aol.com", ".mx.aol.com")
DOMAINS: frozenset[str] = frozenset()

_PHRASES = Phrases(
    (
        (Reason.HOSTUNKNOWN, ("host or domain name not found",)),
        (Reason.NOTACCEPT, ("type=mx: malformed or unexpected name server reply",)),
    )
)


def find(text: str, status: str, reply: str, command: str) -> Reason | None:
    return _PHRASES.find(text)
