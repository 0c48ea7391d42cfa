"""What a User-Agent says: the device type, and whether it is a known machine.

ua-parser (the maintained uap-core rules) names the browser, OS and device; the form factor
is ours to decide from those, since uap-core does not classify it. Results are cached: mail
clients send a few thousand distinct strings, not millions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ua_parser import parse

from ..vocab import DeviceType, VerdictWhy

COMPUTER_OS = frozenset({"Windows", "Mac OS X", "Linux", "Ubuntu", "Fedora", "Debian", "Chrome OS", "FreeBSD",
                         "OpenBSD", "NetBSD", "Solaris", "Mint", "Arch Linux", "openSUSE", "Red Hat"})
MOBILE_OS = frozenset({"iOS", "Android", "Windows Phone", "BlackBerry OS", "Symbian OS", "KaiOS", "Firefox OS",
                       "Tizen", "HarmonyOS", "webOS", "Sailfish"})
TABLET_DEVICES = frozenset({"iPad", "Kindle", "Generic Tablet"})
# Clients that no person reads mail in: HTTP libraries and headless browsers.
TOOL_FAMILIES = frozenset({"curl", "Wget", "Python Requests", "Python-urllib", "Go-http-client", "HeadlessChrome",
                           "PhantomJS", "Java", "Apache-HttpClient", "okhttp", "libwww-perl", "aiohttp", "httpx"})
_TOOL_MARKERS = re.compile(r"python-httpx|python-requests|python-urllib|aiohttp|curl/|wget/|go-http-client|okhttp|"
                           r"java/|libwww-perl|headlesschrome|phantomjs|scrapy|node-fetch|axios/", re.IGNORECASE)
# Keila's note: the exact UA of Gmail's preview fetch.
GMAIL_PREVIEW = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0")


@dataclass(frozen=True, slots=True)
class Agent:
    device: DeviceType
    machine: VerdictWhy | None  # the machine this UA names, if it names one
    family: str  # the browser or mail client, as uap-core names it ("Other" when unknown)


def load_rules() -> None:
    """Build ua-parser's rules now: it compiles them on first use, ~0.6 s inside someone's first hit."""
    parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36")


@lru_cache(maxsize=8192)
def read_agent(ua: str) -> Agent:
    ua = ua.strip()
    if not ua:
        return Agent(DeviceType.NONE, VerdictWhy.NO_USER_AGENT, "Other")
    if "GoogleImageProxy" in ua or ua == GMAIL_PREVIEW:
        return Agent(DeviceType.OTHER, VerdictWhy.GMAIL_PROXY, "GmailImageProxy")
    if "YahooMailProxy" in ua:
        return Agent(DeviceType.OTHER, VerdictWhy.YAHOO_PROXY, "YahooMailProxy")
    if ua == "Mozilla/5.0":
        # Apple Mail Privacy Protection fetches with nothing but this (uap-core #509).
        return Agent(DeviceType.OTHER, VerdictWhy.APPLE_MPP, "Apple MPP")
    r = parse(ua)
    family = r.user_agent.family if r.user_agent else "Other"
    os_family = r.os.family if r.os else ""
    device_family = r.device.family if r.device else ""
    brand = (r.device.brand or "") if r.device else ""
    if device_family == "Spider" or family in TOOL_FAMILIES or _TOOL_MARKERS.search(ua):
        return Agent(DeviceType.OTHER, VerdictWhy.BOT_USER_AGENT, family)
    return Agent(_form_factor(ua, os_family, device_family, brand), None, family)


def _form_factor(ua: str, os_family: str, device_family: str, brand: str) -> DeviceType:
    if device_family in TABLET_DEVICES or "Tablet" in brand or "Tablet" in ua:
        return DeviceType.TABLET
    if os_family == "Android" and "Mobile" not in ua:
        return DeviceType.TABLET  # Android tablets leave "Mobile" out of the UA; phones put it in
    if os_family in MOBILE_OS:
        return DeviceType.MOBILE
    if os_family in COMPUTER_OS:
        return DeviceType.COMPUTER
    return DeviceType.OTHER


def device_type(ua: str) -> DeviceType:
    return read_agent(ua).device
