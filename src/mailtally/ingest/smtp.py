"""Mail received over SMTP: which recipients we accept, and what an accepted message becomes.

The receiver is never a relay. It accepts a recipient only when it is one of our VERP
addresses (a valid signed token, ``bounces+mt…@`` a configured bounce domain) or a
configured feedback-loop address; the account comes from the token or from the config. An
accepted message goes through `ingest_messages`, like ``POST /v1/bounces``, once per account
(a group of messages arriving together in one set-based call).
The protocol server (`mailtally.servers.smtp`) only speaks SMTP around these two calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection

from ..store.raw_messages import MAX_STORED_BYTES
from ..verp import read_token
from .bounce_messages import Ingested, ingest_messages


@dataclass(frozen=True, slots=True)
class Target:
    """An accepted recipient: the account its bounces belong to, and how we knew."""

    address: str
    account: int
    kind: str  # "verp" or "feedback"


@dataclass(frozen=True, slots=True)
class Refusal:
    reply: str


@dataclass(slots=True)
class Recipients:
    """Which RCPT TO addresses are ours. ``feedback`` maps an address to its account id."""

    secret: bytes
    bounce_domains: frozenset[str]
    feedback: dict[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, secret: bytes, domains: Iterable[str], feedback: dict[str, int] | None = None) -> Recipients:
        return cls(secret, frozenset(d.strip().lower().rstrip(".") for d in domains if d.strip()),
                   {a.strip().lower(): acc for a, acc in (feedback or {}).items()})

    def judge(self, address: str) -> Target | Refusal:
        addr = address.strip().strip("<>").lower()
        if addr in self.feedback:
            return Target(addr, self.feedback[addr], "feedback")
        local, at, domain = addr.rpartition("@")
        if not at or domain.rstrip(".") not in self.bounce_domains:
            return Refusal("550 5.7.1 Relay access denied: not a bounce address of this server")
        ref = read_token(self.secret, local)
        if ref is None:
            return Refusal("550 5.1.1 No such bounce address")
        return Target(addr, ref.account_id, "verp")


def receive_many(conn: Connection, secret: bytes, messages: Sequence[tuple[list[Target], bytes]],
                 keep_bytes: int = MAX_STORED_BYTES) -> list[list[Ingested]]:
    """Record received messages inside the caller's transaction, each once per account it names;
    the messages of one account go through one `ingest_messages` call (set-based).

    Each target's address is the envelope recipient, so a VERP token finds its send even when
    the bounce quotes nothing of the original.
    """
    by_account: dict[int, list[tuple[int, bytes, str]]] = {}
    for n, (targets, raw) in enumerate(messages):
        for account in dict.fromkeys(t.account for t in targets):
            same = [x for x in targets if x.account == account]
            # With several of one account's addresses, the VERP one names the send.
            envelope = next((x.address for x in same if x.kind == "verp"), same[0].address)
            by_account.setdefault(account, []).append((n, raw, envelope))
    placed: dict[tuple[int, int], Ingested] = {}
    for account, items in by_account.items():
        results = ingest_messages(conn, account, secret, [(raw, envelope) for _, raw, envelope in items],
                                  source="smtp", keep_bytes=keep_bytes)
        placed.update(((n, account), result) for (n, _, _), result in zip(items, results, strict=True))
    return [[placed[(n, account)] for account in dict.fromkeys(t.account for t in targets)]
            for n, (targets, _) in enumerate(messages)]
