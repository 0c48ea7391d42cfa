"""Provider-specific reason rules, keyed by the remote MTA's host name or the recipient's domain.

Big mailbox providers answer with their own, well documented phrases and codes (Google's
"5.7.1 ... [TSS04]", Microsoft's "S3150", Orange's "OFR_506" ...); their meaning is surer than a
generic phrase list can be, so `reason.decide` asks here first. Each provider is one module with
`HOSTS` (host-name suffixes), `DOMAINS` (recipient domains) and
`find(text, status, reply, command) -> Reason | None`.

A provider is chosen as Sisimai 5 does: by the recipient's domain, else by the remote MTA, else by
the reporting MTA; when the reader found no remote MTA, a host named in the diagnostic ("host
smtp.example.net [192.0.2.1]") stands in for it.
"""

from __future__ import annotations

import re
from types import ModuleType

from mailtally.bounces.rhost import (
    aol,
    apple,
    cox,
    franceptt,
    godaddy,
    google,
    googlegroups,
    iua,
    kddi,
    messagelabs,
    microsoft,
    mimecast,
    nttdocomo,
    spectrum,
    tencent,
    yahoo,
    zoho,
)
from mailtally.vocab import Reason

PROVIDERS: tuple[ModuleType, ...] = (
    google, googlegroups, microsoft, yahoo, aol, apple, franceptt, godaddy, kddi, mimecast, nttdocomo, cox, spectrum,
    tencent, iua, zoho, messagelabs,
)
_BY_DOMAIN: dict[str, ModuleType] = {d: mod for mod in PROVIDERS for d in mod.DOMAINS}
_HOST_IN_TEXT = re.compile(r"\bhost:? \[?([a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){1,8})")


def _by_host(host: str) -> ModuleType | None:
    host = host.lower().strip().rstrip(".")
    if not host:
        return None
    for mod in PROVIDERS:
        if host.endswith(mod.HOSTS):
            return mod
    return None


def _provider(remote_mta: str, domain: str, reporting_mta: str, text: str) -> ModuleType | None:
    if google.RELAY_MARK in text:
        return google  # Gmail's own report of another server's answer
    mod = _BY_DOMAIN.get(domain) if domain else None
    if mod is None:
        mod = _by_host(remote_mta)
    if mod is None and not remote_mta and "host" in text:
        m = _HOST_IN_TEXT.search(text)
        if m is not None:
            mod = _by_host(m.group(1))
    if mod is None:
        mod = _by_host(reporting_mta)
    return mod


def decide(
    remote_mta: str, domain: str, reporting_mta: str, text: str, status: str, reply: str, command: str = ""
) -> Reason | None:
    """The provider's own reading of its answer, or None when no provider rule applies."""
    if not text:
        return None
    mod = _provider(remote_mta, domain, reporting_mta, text)
    if mod is None:
        return None
    r: Reason | None = mod.find(text, status, reply, command)
    return r
