"""Human or machine: the verdict on one open or click, and why. Pure: facts in, verdict out.

The signals, strongest first: the hidden honeypot link, a HEAD request, a scanner network,
a User-Agent that names an image proxy or a tool, another link of the same message clicked
within a second, a hit within seconds of the send. A verdict never changes the response.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ..vocab import Verdict, VerdictWhy
from .device import read_agent

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Mail-security gateways that fetch every link and image (warmbly's catalogue, "certain"
# entries: Microsoft 365 EOP/Defender and Barracuda; Exchange Online ranges are left out
# because they also proxy real Outlook-on-the-web opens).
DEFAULT_SCANNER_NETWORKS = (
    "40.92.0.0/15", "40.107.0.0/16", "52.100.0.0/14", "52.238.78.88/32", "104.47.0.0/17",
    "2a01:111:f400::/48", "2a01:111:f403::/48",
    "3.24.133.128/25", "15.222.16.128/25", "35.157.190.224/27", "18.185.115.192/26", "18.184.203.224/27",
    "13.200.136.128/25", "35.176.92.96/27", "18.133.136.128/26", "18.133.136.96/27", "209.222.82.0/24",
)
HONEYPOT_URL_ID = "mt-honeypot"


def parse_networks(items: Iterable[str]) -> tuple[IpNetwork, ...]:
    """CIDRs; a bad one is an error naming it (settings are checked at start-up)."""
    out = []
    for item in items:
        item = item.strip()
        if item:
            try:
                out.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"not a network in CIDR form: {item!r}") from None
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Rules:
    too_soon_seconds: float = 10.0
    burst_seconds: float = 1.0
    scanner_networks: tuple[IpNetwork, ...] = field(
        default_factory=lambda: parse_networks(DEFAULT_SCANNER_NETWORKS))


class Hit(NamedTuple):
    """What is known about one hit when it is judged (a tuple: the roll-up makes one a hit)."""

    is_click: bool
    user_agent: str
    ip: str | None = None
    method: str = "GET"
    seconds_since_send: float | None = None
    url_id: str | None = None
    # Seconds since this recipient last clicked a *different* link of the same message.
    seconds_since_other_click: float | None = None
    # Whether ``ip`` is in the rules' scanner networks, when the caller knows already (it
    # remembers it per address); None: judge looks.
    in_scanner_network: bool | None = None


def in_networks(ip: str | None, networks: tuple[IpNetwork, ...]) -> bool:
    if not ip or not networks:
        return False
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks if net.version == addr.version)


def judge(hit: Hit, rules: Rules) -> tuple[Verdict, VerdictWhy]:
    machine = Verdict.MACHINE
    if hit.is_click and hit.url_id == HONEYPOT_URL_ID:
        return machine, VerdictWhy.HONEYPOT
    if hit.method == "HEAD":
        return machine, VerdictWhy.HEAD_REQUEST
    scanner = hit.in_scanner_network
    if scanner is None:
        scanner = in_networks(hit.ip, rules.scanner_networks)
    if scanner:
        return machine, VerdictWhy.SCANNER_NETWORK
    named = read_agent(hit.user_agent).machine
    if named is not None and not (hit.is_click and named is VerdictWhy.APPLE_MPP):
        return machine, named
    if (hit.is_click and hit.seconds_since_other_click is not None
            and hit.seconds_since_other_click <= rules.burst_seconds):
        return machine, VerdictWhy.CLICK_BURST
    if hit.seconds_since_send is not None and 0 <= hit.seconds_since_send < rules.too_soon_seconds:
        return machine, VerdictWhy.TOO_SOON
    return Verdict.HUMAN, VerdictWhy.NO_SIGNAL
