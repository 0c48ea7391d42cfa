"""Item 13: /docs works offline — Swagger UI's assets come from the installed package."""

from __future__ import annotations

from typing import Any

import httpx

from ..conftest import LiveServer
from ..support.browser import screenshot  # the chromium and page fixtures come from tests/conftest.py


def test_docs_page_loads_nothing_from_outside(http: httpx.Client) -> None:
    html = http.get("/docs").text
    assert "cdn" not in html.lower() and "https://" not in html
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        r = http.get(asset)
        assert r.status_code == 200 and len(r.content) > 10_000


def test_docs_render_in_chromium_with_no_network(server: LiveServer, page: Any) -> None:
    outside: list[str] = []

    def only_local(route: Any) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(server.url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)  # the operations are listed
    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("/v1/events").first.is_visible()
    screenshot(page, "docs-offline")
    assert outside == [] and page.errors == []
