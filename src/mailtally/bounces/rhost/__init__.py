"""Provider-specific reason rules, keyed by the remote MTA's host name or the recipient's domain.

Big mailbox providers answer with their own, well documented phrases and codes (Google's
"5.7.1 ... [TSS04]", Microsoft's "S3150", Yahoo's "[TS03]" ...); their meaning is surer than a
generic phrase list can be, so `reason.decide` asks here first. Each provider is one module with
`HOSTS` (host-name suffixes), `DOMAINS` (recipient domains) and `find(text, status, reply) -> Reason | None`.
"""

from __future__ import annotations

from types import ModuleType

from mailtally.bounces.rhost import google
from mailtally.vocab import Reason

PROVIDERS: tuple[ModuleType, ...] = (google,)


def _provider(remote_mta: str, domain: str, reporting_mta: str) -> ModuleType | None:
    rm = remote_mta.lower().rstrip(".")
    for mod in PROVIDERS:
        if rm and rm.endswith(mod.HOSTS):
            return mod
        if domain and domain in mod.DOMAINS:
            return mod
    return None


def decide(remote_mta: str, domain: str, reporting_mta: str, text: str, status: str, reply: str) -> Reason | None:
    """The provider's own reading of its answer, or None when no provider rule applies."""
    if not PROVIDERS:
        return None
    mod = _provider(remote_mta, domain, reporting_mta)
    if mod is None:
        return None
    r: Reason | None = mod.find(text, status, reply)
    return r
