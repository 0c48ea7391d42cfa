"""Device types and machine verdicts on real User-Agent strings."""

from __future__ import annotations

import pytest

from mailtally.tracking.device import read_agent
from mailtally.tracking.verdict import HONEYPOT_URL_ID, Hit, Rules, judge, parse_networks
from mailtally.vocab import DeviceType, Verdict, VerdictWhy

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 "
        "Mobile/15E148 Safari/604.1")
PIXEL = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
         "Mobile Safari/537.36")
GALAXY_TAB = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/120.0.0.0 Safari/537.36")
KINDLE = ("Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/120.3.1 like "
          "Chrome/120.0.6099.230 Safari/537.36")
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17029; Pro)"
APPLE_MAIL = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
CHROMEBOOK = ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
THUNDERBIRD = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Thunderbird/115.10.1"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
GMAIL_PREVIEW = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0")
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
APPLE_MPP = "Mozilla/5.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
            "Safari/537.36")


@pytest.mark.parametrize(("ua", "device", "machine"), [
    (IPHONE, DeviceType.MOBILE, None),
    (PIXEL, DeviceType.MOBILE, None),
    (IPAD, DeviceType.TABLET, None),
    (GALAXY_TAB, DeviceType.TABLET, None),
    (KINDLE, DeviceType.TABLET, None),
    (WINDOWS_CHROME, DeviceType.COMPUTER, None),
    (OUTLOOK, DeviceType.COMPUTER, None),
    (APPLE_MAIL, DeviceType.COMPUTER, None),
    (CHROMEBOOK, DeviceType.COMPUTER, None),
    (THUNDERBIRD, DeviceType.COMPUTER, None),
    (GMAIL_PROXY, DeviceType.OTHER, VerdictWhy.GMAIL_PROXY),
    (GMAIL_PREVIEW, DeviceType.OTHER, VerdictWhy.GMAIL_PROXY),
    (YAHOO_PROXY, DeviceType.OTHER, VerdictWhy.YAHOO_PROXY),
    (APPLE_MPP, DeviceType.OTHER, VerdictWhy.APPLE_MPP),
    (GOOGLEBOT, DeviceType.OTHER, VerdictWhy.BOT_USER_AGENT),
    (HEADLESS, DeviceType.OTHER, VerdictWhy.BOT_USER_AGENT),
    ("curl/8.5.0", DeviceType.OTHER, VerdictWhy.BOT_USER_AGENT),
    ("python-requests/2.31.0", DeviceType.OTHER, VerdictWhy.BOT_USER_AGENT),
    ("python-httpx/0.28.1", DeviceType.OTHER, VerdictWhy.BOT_USER_AGENT),
    ("", DeviceType.NONE, VerdictWhy.NO_USER_AGENT),
])
def test_user_agents(ua: str, device: DeviceType, machine: VerdictWhy | None) -> None:
    agent = read_agent(ua)
    assert (agent.device, agent.machine) == (device, machine)


RULES = Rules(too_soon_seconds=10, burst_seconds=1,
              scanner_networks=parse_networks(["40.92.0.0/15", "2a01:111:f400::/48"]))
H, M = Verdict.HUMAN, Verdict.MACHINE


@pytest.mark.parametrize(("hit", "verdict", "why"), [
    # people
    (Hit(False, IPHONE, "203.0.113.9", seconds_since_send=3600), H, VerdictWhy.NO_SIGNAL),
    (Hit(True, WINDOWS_CHROME, "198.51.100.7", seconds_since_send=600, url_id="1"), H, VerdictWhy.NO_SIGNAL),
    (Hit(True, PIXEL, seconds_since_send=900, url_id="2", seconds_since_other_click=40), H, VerdictWhy.NO_SIGNAL),
    (Hit(False, APPLE_MAIL, seconds_since_send=None), H, VerdictWhy.NO_SIGNAL),  # send not recorded: no timing
    (Hit(False, OUTLOOK, seconds_since_send=10.0), H, VerdictWhy.NO_SIGNAL),  # at the window's edge
    # image proxies
    (Hit(False, GMAIL_PROXY, "66.102.8.1", seconds_since_send=120), M, VerdictWhy.GMAIL_PROXY),
    (Hit(False, YAHOO_PROXY, seconds_since_send=120), M, VerdictWhy.YAHOO_PROXY),
    (Hit(False, APPLE_MPP, "172.225.1.1", seconds_since_send=2), M, VerdictWhy.APPLE_MPP),  # proxy, not "too soon"
    # scanners
    (Hit(True, WINDOWS_CHROME, "40.93.1.2", seconds_since_send=300, url_id="1"), M, VerdictWhy.SCANNER_NETWORK),
    (Hit(False, WINDOWS_CHROME, "2a01:111:f400:7e00::1", seconds_since_send=300), M, VerdictWhy.SCANNER_NETWORK),
    (Hit(True, WINDOWS_CHROME, seconds_since_send=30, method="HEAD", url_id="1"), M, VerdictWhy.HEAD_REQUEST),
    (Hit(False, WINDOWS_CHROME, seconds_since_send=3, method="HEAD"), M, VerdictWhy.HEAD_REQUEST),
    (Hit(True, WINDOWS_CHROME, seconds_since_send=45, url_id="3", seconds_since_other_click=0.2), M,
     VerdictWhy.CLICK_BURST),
    (Hit(True, IPHONE, seconds_since_send=900, url_id=HONEYPOT_URL_ID), M, VerdictWhy.HONEYPOT),
    (Hit(False, WINDOWS_CHROME, seconds_since_send=1.5), M, VerdictWhy.TOO_SOON),
    (Hit(True, WINDOWS_CHROME, seconds_since_send=4, url_id="1"), M, VerdictWhy.TOO_SOON),
    (Hit(True, "curl/8.5.0", seconds_since_send=4000, url_id="1"), M, VerdictWhy.BOT_USER_AGENT),
    (Hit(False, "", seconds_since_send=4000), M, VerdictWhy.NO_USER_AGENT),
])
def test_verdicts(hit: Hit, verdict: Verdict, why: VerdictWhy) -> None:
    assert judge(hit, RULES) == (verdict, why)


def test_bad_network_is_named() -> None:
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        parse_networks(["10.0.0.0/33"])
