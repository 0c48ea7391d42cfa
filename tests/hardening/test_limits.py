"""Items 2 and 3: the caller is known before any body is read; one size limit per route,
applied while the body is read, on every route and in every dialect's shape; bounded
headers and credentials."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from typing import Any

import httpx
import orjson
import pytest

from ..conftest import Account, LiveServer

NO_TOKEN_BODY_ROUTES = [("POST", "/v1/campaigns"), ("POST", "/v1/contacts"), ("PATCH", "/v1/contacts/x"),
                        ("POST", "/v1/campaigns/x/activities"), ("PUT", "/v1/activities/x/links"),
                        ("POST", "/v1/events"), ("POST", "/v1/bounces")]


def raw_request(server: LiveServer, head: str, body: bytes = b"", timeout: float = 15) -> tuple[int, bytes, bytes]:
    """Send a request head (and maybe part of a body) and read the answer without sending more."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")

        def send_body() -> None:
            # Beside the reading: a server that answers before the body ends closes the connection,
            # and a send still under way then fails; the answer must be read all the same.
            with contextlib.suppress(OSError):
                s.sendall(body)

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_part, _, rest = data.partition(b"\r\n\r\n")
        length = next((int(h.split(b":")[1]) for h in head_part.split(b"\r\n")
                       if h.lower().startswith(b"content-length")), 0)
        while len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
        sender.join(timeout)
    return int(head_part.split()[1]), head_part, rest


@pytest.mark.parametrize(("method", "path"), NO_TOKEN_BODY_ROUTES)
def test_no_body_is_read_before_the_caller_is_known(server: LiveServer, method: str, path: str) -> None:
    """A body announced but never sent: the refusal comes at once, so nothing waited for it."""
    status, _, body = raw_request(server, f"{method} {path} HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                          f"Content-Length: 900000\n")
    assert status == 401
    assert orjson.loads(body)["error"]["code"] == "unauthorized"


def test_every_route_with_a_body_knows_the_caller_first(server: LiveServer) -> None:
    """Every /v1 route that takes a body, as the OpenAPI document lists them (a route added later
    included): a body announced but never sent is refused at once. Provider webhooks (/hooks/)
    are left out: their signature covers the body, so it must be read to check the caller."""
    late = []
    for path, ops in server.app.openapi()["paths"].items():
        for method in ops:
            if method not in ("post", "put", "patch") or not path.startswith("/v1/"):
                continue
            concrete = re.sub(r"\{[^}]+\}", "x", path)
            try:
                status, _, _ = raw_request(server, f"{method.upper()} {concrete} HTTP/1.1\nHost: x\n"
                                                   f"Content-Type: application/json\nContent-Length: 900000\n",
                                           timeout=5)
            except TimeoutError:
                status = 0
            if status != 401:
                late.append(f"{method.upper()} {path} ({status or 'waited for the body'})")
    assert not late, late


SHAPES: list[tuple[str, Any]] = [
    ("/v1/campaigns", lambda b: b["error"]["code"] == "too_large"),
    ("/v1/events", lambda b: b["error"]["code"] == "batch_too_large"),
    ("/v1/bounces", lambda b: b["error"]["code"] == "message_too_large"),
    ("/v3/reports/summary_reports/email_campaign_summaries", lambda b: b[0]["error_key"] == "too_large"),
    ("/v2/contacts/1/tracking", lambda b: isinstance(b, list) and "error_key" in b[0]),
    ("/emailapi/v2/reports/event/bounce", lambda b: b["errors"][0]["code"] == 413),
    ("/rest/bounces", lambda b: b["statusCode"] == 413 and b["status"] == "Request Entity Too Large"),
    ("/a/route/added/later", lambda b: b["error"]["code"] == "too_large"),
]


@pytest.mark.parametrize(("path", "shape"), SHAPES)
def test_a_declared_body_over_the_limit_is_413_in_the_dialects_shape(
        server: LiveServer, account: Account, path: str, shape: Any) -> None:
    status, _, body = raw_request(server, f"POST {path} HTTP/1.1\nHost: x\nAuthorization: Bearer {account.token}\n"
                                          f"Content-Length: 300000000\n")
    assert status == 413
    assert shape(orjson.loads(body)), body


@pytest.mark.parametrize(("path", "limit_mb"), [("/v1/events", 20), ("/v1/bounces", 10), ("/v1/campaigns", 1)])
def test_a_chunked_body_is_refused_at_the_limit_not_buffered_whole(
        server: LiveServer, account: Account, path: str, limit_mb: int) -> None:
    """Chunks past the limit, and no last chunk: the 413 must come while the body is still open."""
    piece = b"x" * (1024 * 1024)
    chunks = b"".join(b"%x\r\n" % len(piece) + piece + b"\r\n" for _ in range(limit_mb + 2))
    status, head, body = raw_request(server, f"POST {path} HTTP/1.1\nHost: x\nAuthorization: Bearer {account.token}\n"
                                             f"Content-Type: application/json\nTransfer-Encoding: chunked\n", chunks)
    assert status == 413, body
    assert b"connection: close" in head.lower()


def test_within_the_limit_is_fine(http: httpx.Client, account: Account) -> None:
    r = http.post("/v1/campaigns", json={"name": "x" * 300}, headers=account.headers)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("path", "headers"), [
    ("/v1/me", lambda t: {"Authorization": f"Bearer {t}"}),
    ("/v3/reports/summary_reports/email_campaign_summaries", lambda t: {"Authorization": f"Bearer {t}"}),
    ("/rest/bounces", lambda t: {"Authorization": f"Basic {t}"}),
])
def test_an_oversized_credential_is_431_before_any_lookup(http: httpx.Client, path: str, headers: Any) -> None:
    r = http.get(path, headers=headers("x" * 10_000))
    assert r.status_code == 431
    assert "Authorization" in r.text


def test_oversized_headers_are_431(http: httpx.Client) -> None:
    r = http.get("/v1/me", headers={f"X-Pad-{i}": "y" * 4000 for i in range(12)})
    assert r.status_code == 431


def test_invalid_tokens_are_not_cached_as_tokens(server: LiveServer, http: httpx.Client, account: Account) -> None:
    cache = server.app.state.tokens
    before = len(cache._hits)
    for i in range(50):
        assert http.get("/v1/me", headers={"Authorization": f"Bearer bad-{i}-" + "z" * 200}).status_code == 401
    assert len(cache._hits) == before  # misses are kept only as 16-byte digests
    assert all(len(k) == 16 for k in cache._misses)
    assert http.get("/v1/me", headers=account.headers).status_code == 200
    assert account.token in cache._hits


def test_empty_event_body_is_400(http: httpx.Client, account: Account) -> None:
    for body in (b"", b"  \n"):
        r = http.post("/v1/events", content=body, headers=account.headers)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_body", r.text
