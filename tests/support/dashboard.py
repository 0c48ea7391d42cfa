"""Signing in to the dashboard the way a browser does: the form, its CSRF token, the cookie."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser

import httpx
import pytest
from sqlalchemy import Engine

from mailtally.store.db import writing
from mailtally.store.users import create_user

from ..conftest import Account, LiveServer

PASSWORD = "correct horse battery staple"


def make_user(engine: Engine, account_name: str, password: str = PASSWORD) -> str:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    with writing(engine) as conn:
        create_user(conn, account_name, email, password)
    return email


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> httpx.Response:
    page = client.get("/ui/login")
    assert page.status_code == 200
    return client.post("/ui/login", data={"csrf": csrf_of(page.text), "email": email, "password": password,
                                          "next": "/ui/"})


class Figures(HTMLParser):
    """Every ``data-figure`` element's text (the number a user reads) and its link, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.links: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-figure" in a:
            self._open.append((str(a["data-figure"]), a.get("href")))

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            name, href = self._open.pop()
            self.values[name] = data.strip()
            if href:
                self.links[name] = href.replace("&amp;", "&")


def number(text: str) -> float:
    """A figure as the page prints it ("1,234", "40.0%") as a number."""
    return float(text.replace(",", "").rstrip("%"))


def figures(html: str) -> Figures:
    parser = Figures()
    parser.feed(html)
    return parser


def table_rows(html: str, tbody_marker: str = '<th scope="row"><a href="/ui/contacts/') -> int:
    return html.count(tbody_marker)


# Fixtures (a pytest plugin of tests/conftest.py): a signed-in client for each test.


@pytest.fixture
def browser_like(server: LiveServer) -> Iterator[httpx.Client]:
    """A client that keeps cookies and does not follow redirects, like a careful browser."""
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
        yield client


@pytest.fixture
def signed_in(engine: Engine, account: Account, browser_like: httpx.Client) -> httpx.Client:
    email = make_user(engine, account.name)
    r = sign_in(browser_like, email)
    assert r.status_code == 303, r.text
    return browser_like
