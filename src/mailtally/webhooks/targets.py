"""Which webhook URLs may be called: no loopback, private, link-local or other internal
addresses unless the configuration allows them (``webhook_allow_private``), so a subscription
cannot make the server probe its own network (SSRF).

The name is resolved once per delivery, and the request goes to the address that was checked
(``post``): a name that answers a public address to the check and a private one to the connect
(DNS rebinding) cannot slip past. The URL's host still names the server in the ``Host``
header and, over TLS, in SNI and the certificate check.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

# socket.getaddrinfo's shape: a resolver a caller may give (a test's rebinding name server).
Lookup = Callable[..., list[tuple[Any, ...]]]


class TargetRefused(ValueError):
    pass


class TargetUnresolved(OSError):
    """The name does not resolve now: a delivery tries again later; a subscription may still be made."""


def check_url(url: str) -> tuple[str, int]:
    """The host and port of an acceptable URL's shape (http or https, a host, no credentials)."""
    if len(url) > 2000:
        raise TargetRefused("the URL is longer than 2000 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise TargetRefused(f"not a valid URL: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the URL must start with http:// or https://")
    if not parts.hostname:
        raise TargetRefused("the URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("the URL must not carry a user name or password")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


def _internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
            or ip.is_unspecified or not ip.is_global)


def resolve(url: str, allow_private: bool, lookup: Lookup = socket.getaddrinfo) -> list[str]:
    """The addresses to connect to; refuses a URL any of whose addresses is internal.

    Every address the name resolves to is checked (not just the first), so a name that
    answers both a public and a private address is refused.
    """
    host, port = check_url(url)
    try:
        infos = lookup(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise TargetUnresolved(f"the host {host!r} does not resolve: {e}") from None
    addresses = sorted({str(info[4][0]) for info in infos})
    if not allow_private:
        for a in addresses:
            if _internal(ipaddress.ip_address(a.split("%")[0])):
                raise TargetRefused(f"{host} resolves to {a}, a loopback or private address "
                                    "(set MAILTALLY_WEBHOOK_ALLOW_PRIVATE=1 to allow)")
    return addresses


def refusal(url: str, allow_private: bool) -> str | None:
    """Why a subscription to ``url`` is refused now, or None when it may be made (a name that
    does not resolve yet may: deliveries check it again). Shared by the API and the dashboard."""
    try:
        resolve(url, allow_private)
    except TargetRefused as e:
        return str(e)
    except TargetUnresolved:
        return None
    return None


def post(client: httpx.Client, url: str, body: bytes, headers: Mapping[str, str], allow_private: bool,
         lookup: Lookup = socket.getaddrinfo) -> httpx.Response:
    """POST ``body`` to ``url`` at an address ``resolve`` checked, never at a fresh lookup's.

    The checked addresses are tried in order until one connects. The request's URL names the
    address; ``Host`` and TLS's server name (SNI and the certificate's check) stay the URL's host.
    """
    addresses = resolve(url, allow_private, lookup)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port
    if not addresses:
        raise TargetUnresolved(f"the host {host!r} has no address")
    host_header = (f"[{host}]" if ":" in host else host) + (f":{port}" if port is not None else "")
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    error: httpx.ConnectError | None = None
    for address in addresses:
        literal = f"[{address}]" if ":" in address else address
        pinned = urlunsplit((parts.scheme, literal + (f":{port}" if port is not None else ""), parts.path or "/",
                             parts.query, ""))
        try:
            return client.post(pinned, content=body, headers={**headers, "host": host_header},
                               extensions=extensions)
        except httpx.ConnectError as e:
            error = e
    assert error is not None
    raise error
