"""Readers for the formats of particular mail systems, one small module each.

Each module has `matches(mail) -> bool`, a cheap look at headers (From, Subject, a
signature header) that says whether its format can apply, and `probe(mail) -> list[Finding]`,
which reads the content and returns [] when it turns out not to be its format.

Dev-only switch: `MAILTALLY_BOUNCES_NO_FORMATS=1` in the environment (or `ENABLED = False`)
turns every module here off, so that the generic layers can be measured alone
(`bench/bounces.py` prints that figure). Never set in production.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import ModuleType

from mailtally.bounces.finding import Finding
from mailtally.bounces.lhost import (
    amazonses,
    apachejames,
    domino,
    exchange,
    exim,
    ezweb,
    fml,
    googlegroups,
    imailserver,
    kddi,
    mcafee,
    opensmtpd,
    postfix,
    powermta,
    qmail,
    receivingses,
    v5sendmail,
    verizon,
    x3,
    x6,
    yahoo,
    zoho,
)
from mailtally.bounces.message import Mail

MODULES: tuple[ModuleType, ...] = (
    amazonses, googlegroups, zoho, kddi, ezweb, apachejames, verizon, x3, x6, fml, v5sendmail, postfix, qmail, powermta,
    mcafee, imailserver, domino, exchange, exim, opensmtpd, yahoo, receivingses,
)

Probe = Callable[[Mail], list[Finding]]

ENABLED = os.environ.get("MAILTALLY_BOUNCES_NO_FORMATS", "") in ("", "0")


def probes_for(mail: Mail) -> list[Probe]:
    """The probes of every module whose cheap check accepts this message, in priority order."""
    if not ENABLED:
        return []
    return [m.probe for m in MODULES if m.matches(mail)]
