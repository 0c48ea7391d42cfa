"""A real browser for tests: Playwright (PyPI) driving Debian's Chromium, never a downloaded build.

Shared by every browser test: ``chromium`` (session) is the browser, ``page`` a fresh tab in a
fresh context (its own cookies); ``screenshot(page, name)`` saves a PNG under ``test-output/``
(git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REPO, require_part

CHROMIUM = os.environ.get("MAILTALLY_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
OUTPUT = REPO / "test-output" / "screenshots"


def _have_playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    require_part("chromium", Path(CHROMIUM).exists() and _have_playwright(),
                 "apt-get install chromium; pip install playwright (never `playwright install`)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.errors = []  # uncaught JavaScript errors on the page: a test can assert there were none
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    yield tab
    context.close()


def screenshot(page: Any, name: str) -> Path:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
    page.screenshot(path=str(path), full_page=True)
    return path
