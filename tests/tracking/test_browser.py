"""A rendered message opened from a file in Debian's Chromium: its pixel loads, a link is
clicked, the browser lands on the registered URL, and both are counted."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Account, LiveServer, free_port
from tests.support.browser import screenshot  # the chromium fixture is registered by tests/conftest.py
from tests.support.scenario import campaign_with_activity, post_events

from .support import DESKTOP, HOUR_AGO, render, stats


class _Landing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>Sale</title><h1 id=landed>Welcome to the spring sale</h1>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def landing() -> Iterator[str]:
    """The shop the campaign links to: a real HTTP server of its own."""
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Landing)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_message_in_chromium_opens_and_clicks(chromium: Any, server: LiveServer, http: httpx.Client,
                                              account: Account, landing: str, tmp_path: Path) -> None:
    _, activity = campaign_with_activity(http, account.headers)
    post_events(http, account.headers, [{"type": "send", "activity_id": activity, "email": "reader@example.com",
                                         "occurred_at": HOUR_AGO}])
    html = (f'<!doctype html><html><head><meta charset="utf-8"><title>Spring</title></head><body>'
            f'<h1>Spring sale</h1><p><a id="sale" href="{landing}/sale?from=mail">See the sale</a></p>'
            f'<p><a href="{{{{unsubscribe_url}}}}">Unsubscribe</a></p></body></html>')
    [message] = render(http, account.headers, activity, ["reader@example.com"], html=html, text=None)
    path = tmp_path / "message.html"
    path.write_text(message["html"], encoding="utf-8")

    context = chromium.new_context(user_agent=DESKTOP, viewport={"width": 900, "height": 700})
    try:
        tab = context.new_page()
        with tab.expect_response(lambda r: "/t/o/" in r.url) as pixel:
            tab.goto(path.as_uri())
        assert pixel.value.status == 200 and pixel.value.headers["content-type"] == "image/gif"
        assert tab.evaluate("[...document.images].every(i => i.complete && i.naturalWidth === 1)")
        screenshot(tab, "tracking-message")
        tab.click("#sale")
        tab.wait_for_selector("#landed")
        assert tab.url == f"{landing}/sale?from=mail"
    finally:
        context.close()
    s = stats(http, account.headers, activity)
    assert (s["counts"]["opens"], s["counts"]["opens_computer"], s["counts"]["clicks"]) == (1, 1, 1)
    assert s["verdicts"] == {"opens": {"human": 1, "machine": 0}, "clicks": {"human": 1, "machine": 0}}
