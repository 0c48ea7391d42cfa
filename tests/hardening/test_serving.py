"""`mailtally serve --workers 2` as a process tree: slow clients are cut off (item 8), workers
exit when their parent is killed (item 9), and oversized, unauthenticated bodies and tokens
leave the server's memory within a bound (items 2 and 3).

The memory bound: the workers' resident memory, summed, may grow by at most 150 MB over what
it was once the server had answered its first requests, after ~1.2 GB of refused input.
(Today's main grew by gigabytes on the same input.)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mailtally.api.tracking import PIXEL
from mailtally.serving import HARD_HEADER_BYTES
from mailtally.store import migrate
from mailtally.store.accounts import create_account, create_token
from mailtally.store.db import open_engine

from ..support.serve import Serve, alive, rss_bytes

MEMORY_BOUND = 150 * 1024 * 1024


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('serve') / 'mailtally.db'}"
    migrate.upgrade(open_engine(url))
    return url


@pytest.fixture(scope="module")
def token(sqlite_url: str) -> str:
    with open_engine(sqlite_url).begin() as conn:
        return create_token(conn, create_account(conn, "serve-" + uuid.uuid4().hex[:8]),
                            frozenset({"ingest", "campaign_data", "contact_data"}))


@pytest.fixture(scope="module")
def served(sqlite_url: str) -> Iterator[Serve]:
    with Serve(sqlite_url, workers=2, MAILTALLY_HEADERS_SECONDS="1", MAILTALLY_BODY_IDLE_SECONDS="1") as s:
        yield s


def _closed_by_server(sock: socket.socket) -> bytes:
    """What the server sends before closing (it must close: the socket's timeout is the failure)."""
    sock.settimeout(30)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def test_stalled_clients_are_cut_off(served: Serve, token: str) -> None:
    mid_headers, mid_body = [], []
    for i in range(150):
        s = socket.create_connection(("127.0.0.1", served.port))
        s.sendall(f"GET /v1/campaigns HTTP/1.1\r\nHost: x\r\nX-Slow: {i}".encode())
        mid_headers.append(s)
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", served.port))
        s.sendall(f"POST /v1/campaigns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":".encode())
        mid_body.append(s)
    for s in mid_headers:
        assert _closed_by_server(s).startswith(b"HTTP/1.1 408")
        s.close()
    for s in mid_body:
        answer = _closed_by_server(s)
        assert answer.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in answer, answer
        s.close()
    assert httpx.get(served.url + "/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def _answer(port: int, pieces: list[bytes]) -> bytes:
    """What the server answers to a request sent in these pieces (one send each) before it
    closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        for piece in pieces:
            s.sendall(piece)
        return _closed_by_server(s)


def _head(path: bytes, counted: int, pad: int) -> bytes:
    """A GET whose URL and header names and values (what the hard limit counts) come to
    ``counted`` bytes, in headers of ``pad`` bytes, the last one making up the rest."""
    lines = [b"Host: x", b"Connection: close"]
    size = len(path) + len(b"hostx") + len(b"connectionclose")
    while counted - size - len(b"x-last") > 2 * pad:
        lines.append(b"X-Pad-%04d: %s" % (len(lines), b"z" * (pad - 10)))
        size += pad
    lines.append(b"X-Last: " + b"z" * (counted - size - len(b"x-last")))
    return b"GET " + path + b" HTTP/1.1\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def _dribbled(request: bytes) -> list[bytes]:
    """In pieces of 700 bytes, the last 100 (the last header's end and the blank line) as one."""
    last = len(request) - 100
    return [request[i:min(i + 700, last)] for i in range(0, last, 700)] + [request[last:]]


def test_oversized_heads_are_cut_however_they_arrive(served: Serve, token: str) -> None:
    """Past HARD_HEADER_BYTES of URL and header names and values the connection is cut with a
    431, whether the head comes in one piece or in many, in one header or in many; a tracking
    hit (answered ahead of the app's own, smaller header limit) up to the limit is answered. A
    body read along with its head is not counted."""
    pixel = b"/t/o/AAAAAAAAAAAAAAAAAAAAAAAA"
    for pad in (1000, HARD_HEADER_BYTES):
        for path in (pixel, b"/healthz"):
            over = _head(path, HARD_HEADER_BYTES + 1, pad)
            for pieces in ([over], _dribbled(over)):
                answer = _answer(served.port, pieces)
                assert answer.startswith(b"HTTP/1.1 431") and answer.endswith(b"over 65536 bytes"), (path, pad)
        at = _head(pixel, HARD_HEADER_BYTES, pad)
        for pieces in ([at], _dribbled(at)):
            assert _answer(served.port, pieces).startswith(b"HTTP/1.1 200"), pad
    body = b"x" * (4 * HARD_HEADER_BYTES)
    post = (b"POST /v1/campaigns HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
            + token.encode() + b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    answer = _answer(served.port, [post + body])
    assert answer.startswith(b"HTTP/1.1 4") and not answer.startswith(b"HTTP/1.1 431"), answer[:200]


def test_answers_arrive_whole_in_every_shape(served: Serve, token: str) -> None:
    """A response's head goes out with its body in one write (serving._HeadWithBody): answers
    with a body, without one (HEAD), streamed, after a 100 Continue and pipelined all arrive
    whole and in order on one kept-alive connection."""
    pixel, auth = "/t/o/AAAAAAAAAAAAAAAAAAAAAAAA", {"Authorization": f"Bearer {token}"}
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    try:
        for method, path, status, body in (("GET", pixel, 200, 42), ("HEAD", pixel, 200, 0),
                                           ("GET", "/healthz", 200, None), ("HEAD", "/t/c/AAAA", 404, 0),
                                           ("GET", "/v1/suppressions/export", 200, None)):
            conn.request(method, path, headers=auth)
            r = conn.getresponse()
            data = r.read()
            assert r.status == status, (method, path)
            assert len(data) == body if body is not None else data, (method, path)
        conn.request("POST", "/v1/campaigns", body=b'{"name": "continued"}',
                     headers={**auth, "Content-Type": "application/json", "Expect": "100-continue"})
        r = conn.getresponse()
        assert r.status == 201 and b"continued" in r.read()
    finally:
        conn.close()
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as s:
        s.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET {pixel} HTTP/1.1\r\nHost: x\r\n"
                  f"Connection: close\r\n\r\n".encode())
        both = _closed_by_server(s)
    first, _, rest = both.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b'{"status":"ok"')
    assert rest.count(b"HTTP/1.1 200") == 1 and rest.endswith(PIXEL)


def test_connections_per_worker_are_bounded(sqlite_url: str) -> None:
    with Serve(sqlite_url, workers=1, MAILTALLY_MAX_CONNECTIONS="10", MAILTALLY_HEADERS_SECONDS="60") as s:
        held = []
        for _ in range(12):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            held.append(c)
        time.sleep(0.5)  # let the server accept them all before the next one
        r = httpx.get(s.url + "/healthz", timeout=30)
        assert r.status_code == 503
        for c in held:
            c.close()


def test_workers_exit_when_the_parent_is_killed(sqlite_url: str) -> None:
    first = Serve(sqlite_url, workers=2).start()
    workers = first.worker_pids()
    assert len(workers) == 2
    os.kill(first.pid, signal.SIGKILL)
    first.proc.wait(10)  # type: ignore[union-attr]
    deadline = time.monotonic() + 40
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in workers), "workers kept running after their parent was killed"
    with Serve(sqlite_url, workers=2, port=first.port) as again:  # the port is free again
        assert httpx.get(again.url + "/healthz").status_code == 200


def _established(pid: int, port: int, peers: set[int]) -> int:
    """How many of the TCP connections accepted on ``port`` from client ports ``peers`` process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                local_port, peer, state, inode = (int(fields[1].rsplit(":", 1)[1], 16),
                                                  int(fields[2].rsplit(":", 1)[1], 16), fields[3], fields[9])
                if local_port == port and peer in peers and state == "01" and inode in inodes:  # 01: ESTABLISHED
                    count += 1
    return count


def test_connections_opened_at_once_are_spread_over_the_workers(served: Serve) -> None:
    """Each worker accepts on a socket of its own (SO_REUSEPORT): 16 keep-alive connections
    opened together are not all taken by whichever worker woke first."""
    conns = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(16)]
    try:
        for c in conns:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(4096).startswith(b"HTTP/1.1 200")
        peers = {c.getsockname()[1] for c in conns}
        per_worker = [_established(pid, served.port, peers) for pid in served.worker_pids()]
    finally:
        for c in conns:
            c.close()
    assert sum(per_worker) == 16
    assert min(per_worker) >= 1, per_worker  # all 16 on one of two workers: a chance of 1 in 32,768


def test_a_worker_that_dies_is_replaced(served: Serve) -> None:
    before = served.worker_pids()
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = served.worker_pids()
        if len(now) == 2 and before[0] not in now:
            break
        time.sleep(0.2)
    assert len(now) == 2 and before[0] not in now and before[1] in now


def _send(port: int, data: bytes, body: Iterator[bytes] | None = None) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(data)
            for piece in body or ():
                s.sendall(piece)
        except OSError:
            pass  # the server refused and closed: what we want
        with contextlib.suppress(OSError):
            s.recv(4096)


def test_memory_stays_bounded_under_oversized_input(served: Serve, token: str) -> None:
    port = served.port
    for _ in range(3):
        httpx.get(served.url + "/v1/campaigns", headers={"Authorization": f"Bearer {token}"})
    start = sum(rss_bytes(p) for p in served.serving_pids())
    mb = b"x" * (1024 * 1024)
    for path in ("/v1/campaigns", "/v1/contacts", "/v1/events", "/v1/bounces"):  # no token, 300 MB announced
        for _ in range(5):
            _send(port, f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 300000000\r\n\r\n".encode(),
                  iter([mb] * 20))
    for path in ("/v1/events", "/v1/bounces"):  # a token, chunked, past the limit
        for _ in range(3):
            _send(port, f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                        f"Transfer-Encoding: chunked\r\n\r\n".encode(),
                  iter([b"100000\r\n" + mb + b"\r\n"] * 25))
    for i in range(300):  # distinct 4 MB tokens
        _send(port, f"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {i}".encode(),
              iter([mb] * 4 + [b"\r\n\r\n"]))
    for i in range(500):  # distinct tokens just under the credential limit: looked up, refused
        _send(port, f"GET /v1/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {i}{'t' * 2000}\r\n\r\n".encode())
    grown = sum(rss_bytes(p) for p in served.serving_pids()) - start
    assert grown < MEMORY_BOUND, f"resident memory grew by {grown / 2**20:.0f} MB"
    assert httpx.get(served.url + "/v1/campaigns", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_serve_creates_the_database_private(tmp_path: Path) -> None:
    """Item 10: the database and its -wal and -shm files are created 0600."""
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with Serve(url, workers=1) as s:
        assert httpx.get(s.url + "/healthz").status_code == 200
        for name in ("fresh.db", "fresh.db-wal", "fresh.db-shm"):
            path = tmp_path / name
            assert path.exists(), name
            assert path.stat().st_mode & 0o777 == 0o600, (name, oct(path.stat().st_mode))


def test_opening_the_database_again_keeps_other_processes_from_deleting_its_wal(tmp_path: Path) -> None:
    """A second engine on the same file in one process (the test server beside the tests, a
    command inside the service) must leave SQLite's locks alone: when they were lost, a short-lived
    process closing its connection took itself for the last user, checkpointed and deleted the
    WAL under the open connection, and the next query here read a corrupt database."""
    import subprocess
    import sys

    from sqlalchemy import text

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = open_engine(url)
    migrate.upgrade(first)
    with first.connect() as held:
        held.execute(text("SELECT count(*) FROM accounts")).scalar_one()
        open_engine(url).dispose()  # opened again in this process while `held` is open
        other = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('select 1 from accounts'); c.close()"
        subprocess.run([sys.executable, "-c", other, str(tmp_path / "shared.db")], check=True)
        assert (tmp_path / "shared.db-wal").exists(), "another process deleted the WAL of an open database"
        with first.begin() as conn:
            create_account(conn, f"a-{uuid.uuid4().hex[:8]}")
        assert held.execute(text("SELECT count(*) FROM accounts")).scalar_one() >= 0
    first.dispose()
