"""Serving over HTTP: uvicorn with the bounds a server facing the internet needs.

- A client has ``headers_seconds`` (up to a tenth more) to send its request line and headers,
  and at most ``HARD_HEADER_BYTES`` of them are read: uvicorn's httptools protocol has neither bound,
  so a stalled or endless header kept a connection (and its memory) for as long as the client
  liked. Bodies are bounded in time and size by ``api.limits``.
- At most ``max_connections`` connections and requests per worker; more get a 503.
- Workers exit when the ``serve`` process that started them dies (even by ``kill -9``),
  instead of serving on and holding the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import sys
import threading
import time
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .config import Settings

PARENT_ENV = "MAILTALLY_SERVE_PARENT"
# Past this many bytes of request line and headers the connection is cut; api.limits refuses
# smaller excesses (Settings.max_header_bytes) in each dialect's error shape.
HARD_HEADER_BYTES = 64 * 1024


def _status(code: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {code} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


@functools.cache
def _headers_seconds() -> float:
    return Settings.from_env().headers_seconds  # in each worker: settings reach it through the environment


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with a time and a size limit on the request head.

    Both are kept off the per-request path, where a timer armed and cancelled for every head
    and a Python call for every header line cost a fifth of the CPU of a bare ASGI hello's
    request: the time limit by a sweep per event loop (``_HeadSweep``), the size by counting
    whole reads, with an exact count only when those could add up to more than the limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.headers_seconds = _headers_seconds()
        self._head_since: float | None = None  # loop time the request head now being read began
        self._head_read = 0  # bytes read since it began, in whole reads: never fewer than the head's
        self._read = 0  # bytes of the read being parsed
        self._cut = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._out = _HeadWithBody(transport, self)
        super().connection_made(self._out)  # type: ignore[arg-type]
        self._head_since = self.loop.time()
        if self.headers_seconds > 0:
            _HeadSweep.of(self.loop, self.headers_seconds).add(self, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_since = None
        if self.headers_seconds > 0:
            _HeadSweep.of(self.loop, self.headers_seconds).discard(self)
        super().connection_lost(exc)
        self._out.detach()

    def data_received(self, data: bytes) -> None:
        if self._cut:
            return
        self._read = len(data)
        super().data_received(data)
        if self._head_since is not None:  # a head still incomplete after this read
            self._head_read += len(data)
            if self._head_read > HARD_HEADER_BYTES and self._head_bytes() > HARD_HEADER_BYTES:
                self._too_large()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_since is None:  # the first request's time runs from the connection's start
            self._head_since = self.loop.time()
        self._head_read = 0

    def on_headers_complete(self) -> None:
        self._head_since = None
        if self._head_read + self._read > HARD_HEADER_BYTES and self._head_bytes() > HARD_HEADER_BYTES:
            self._too_large()
        if not self._cut:
            super().on_headers_complete()

    def on_response_complete(self) -> None:
        self._out.flush()  # a response with no body write (HEAD): its head goes now
        super().on_response_complete()

    def _head_bytes(self) -> int:
        """The request line's URL and the header names and values parsed so far."""
        if self.headers is None:  # no request begun yet
            return 0
        return len(self.url) + sum(len(name) + len(value) for name, value in self.headers)

    def _too_large(self) -> None:
        self._refuse(431, "Request Header Fields Too Large", f"request headers over {HARD_HEADER_BYTES} bytes")

    def head_overdue(self, now: float) -> None:
        """Called by the sweep: refuse a head begun ``headers_seconds`` ago or more."""
        if self._head_since is None or now - self._head_since < self.headers_seconds:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind a response still being sent: that is the app's business
            # (api.limits bounds its body); the head's time starts again.
            self._head_since = now
            return
        self._refuse(408, "Request Timeout", f"request headers not received within {self.headers_seconds:g} s")

    def _refuse(self, code: int, reason: str, text: str) -> None:
        self._cut = True
        self._head_since = None
        if not self.transport.is_closing():
            self.transport.write(_status(code, reason, text))
            self.transport.close()


_JOINED_BYTES = 64 * 1024  # a body up to this size is sent in one write with its head


class _HeadWithBody:
    """The connection's transport as uvicorn's protocol writes to it, holding a response's head
    back until the first write of its body and sending both in one write: one send and one
    wake-up of the client instead of two (a pixel's or a redirect's answer is a head and a few
    bytes). The head also goes when the response completes without a body (HEAD) or the
    connection is closed."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpTools):
        self._transport = transport
        self._protocol: GuardedHttpTools | None = protocol
        self._head: bytes | None = None
        self._headed: object = None  # the request whose response's head was the last held

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if len(data) <= _JOINED_BYTES:
                self._transport.write(head + data)
                return
            self._transport.write(head)
        else:
            # uvicorn marks a response started just before it writes its head; anything else
            # (a 100 Continue, a refusal, the body) goes as it comes.
            cycle = self._protocol.cycle if self._protocol is not None else None
            if cycle is not None and cycle is not self._headed and cycle.response_started:
                self._headed = cycle
                self._head = bytes(data)
                return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            if not self._transport.is_closing():  # else the client is gone
                self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def detach(self) -> None:
        """Once the connection is gone: no references back to the protocol and its last request
        (a cycle the collector would otherwise have to find, holding that request's body)."""
        self._protocol = self._headed = self._head = None

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # the rest of the transport's methods, as they are
        return getattr(self._transport, name)


class _HeadSweep:
    """The guarded connections of one event loop, looked at every tenth of ``headers_seconds``:
    a head is refused between ``headers_seconds`` and 1.1 times that after it began. One timer
    for the loop instead of one armed and cancelled for every request. (It holds no reference
    to its loop, the key it is kept under.)"""

    _loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HeadSweep] = weakref.WeakKeyDictionary()

    def __init__(self, seconds: float):
        self.every = seconds / 10
        self.connections: set[GuardedHttpTools] = set()
        self._running = False

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, seconds: float) -> _HeadSweep:
        sweep = cls._loops.get(loop)
        if sweep is None:
            sweep = cls._loops[loop] = cls(seconds)
        return sweep

    def add(self, connection: GuardedHttpTools, loop: asyncio.AbstractEventLoop) -> None:
        self.connections.add(connection)
        if not self._running:
            self._running = True
            loop.call_later(self.every, self._sweep, loop)

    def discard(self, connection: GuardedHttpTools) -> None:
        self.connections.discard(connection)

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for connection in list(self.connections):
            connection.head_overdue(now)
        if self.connections:
            loop.call_later(self.every, self._sweep, loop)
        else:
            self._running = False


def _watch_parent(parent: int) -> None:
    """Exit when the process that started this worker is gone (its children are re-parented)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # the kernel's own notice: SIGTERM when the parent dies
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown...
                time.sleep(10)
                os._exit(1)  # ...or out regardless

    threading.Thread(target=watch, name="mailtally-parent-watch", daemon=True).start()


def worker_app() -> Any:
    """The app factory each worker runs: the API, and a watch on the parent when there is one."""
    from .api.app import create_app

    parent = os.environ.get(PARENT_ENV, "")
    started_by_serve = parent.isdigit() and int(parent) != os.getpid()
    if started_by_serve:
        if os.getppid() != int(parent):  # the parent died before we started
            raise SystemExit(1)
        _watch_parent(int(parent))
    # `serve` migrated before starting its workers; N workers migrating at once would race for the
    # schema's lock (SQLite: "database is locked" on an index build in one of them).
    app = create_app(run_migrations=not started_by_serve)
    settle_heap()
    return app


def settle_heap() -> None:
    """Once the app is built: every page's template compiled, and what the process made to start
    (modules, routes, templates: ~150,000 objects) kept out of the cyclic collector's walks
    (``gc.freeze``), as it lives as long as the process.

    Without it every full collection walked all of it: 75 ms of CPU here, every few hundred
    requests, inside whichever request crossed the collector's threshold (the dashboard's
    periodic p99 spikes, docs/dashboard.md). Collections then walk only what requests made."""
    from . import web
    from .tracking.device import load_rules

    web.load_templates()
    load_rules()
    freeze_heap()


def freeze_heap() -> None:
    """What this process has made so far, kept out of the cyclic collector's walks for good
    (``settle_heap``: it lives as long as the process)."""
    gc.collect()
    gc.freeze()


def _config(settings: Settings, workers: int) -> dict[str, Any]:
    return {"app": "mailtally.serving:worker_app", "factory": True, "host": settings.host, "port": settings.port,
            "workers": workers, "log_level": "warning", "access_log": False, "http": GuardedHttpTools,
            "limit_concurrency": settings.max_connections, "timeout_keep_alive": 5, "timeout_graceful_shutdown": 10}


def run(settings: Settings, workers: int = 1) -> None:
    import uvicorn

    os.environ[PARENT_ENV] = str(os.getpid())
    config = _config(settings, workers)
    if workers > 1 and hasattr(socket, "SO_REUSEPORT"):
        Workers(config, workers).run()
        return
    uvicorn.run(**config)


def serve_app(app: str, host: str, port: int, workers: int, factory: bool = False) -> None:
    """Any ASGI app (``module:attribute``, or a factory of one) served as ``serve`` serves
    mailtally: ``workers`` processes, a listening socket each (the benches' reference "hello")."""
    Workers({"app": app, "factory": factory, "host": host, "port": port, "log_level": "warning",
             "access_log": False}, workers).run()


def _listening_socket(host: str, port: int, listen: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        if listen:
            sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


_STARTUP_FAILURE = 3  # a worker's exit status when its app or socket could not start (uvicorn's too)


def _worker_main(config: dict[str, Any]) -> None:
    """One worker: its own listening socket on the shared port (``SO_REUSEPORT``), so the
    kernel spreads new connections over the workers evenly."""
    import uvicorn

    sock = _listening_socket(config["host"], config["port"], listen=True)
    server = uvicorn.Server(uvicorn.Config(**{**config, "workers": None}))
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(_STARTUP_FAILURE)


class Workers:
    """``serve --workers N``: N worker processes, each accepting on a socket of its own.

    uvicorn's own workers share one listening socket, and whichever worker wakes first accepts
    every connection that is waiting: a client opening 16 keep-alive connections at once had
    them all (or 15) served by one worker while the other idled (measured on the tracking bench,
    ``bench/tracking.py``). With a socket per worker bound with ``SO_REUSEPORT``, the kernel
    hashes each new connection to one of them (16 connections: 8/8, 7/9, 6/10 in the same
    bench). A worker that dies is started again; SIGHUP replaces them one by one, each new one
    listening before the old one stops; SIGTERM or SIGINT stops them all (each one also exits
    when this process dies: ``_watch_parent``)."""

    def __init__(self, config: dict[str, Any], n: int):
        self.config = config
        self.n = n
        self.procs: list[multiprocessing.process.BaseProcess] = []
        self._stop = threading.Event()
        self._replace = False
        self.failed = False

    def _start(self) -> multiprocessing.process.BaseProcess:
        proc = multiprocessing.get_context("spawn").Process(target=_worker_main, args=(self.config,))
        proc.start()
        return proc

    def run(self) -> None:
        # The port is held (bound, not listening) for as long as we run: taken by another program,
        # we fail here, as uvicorn does.
        try:
            held = _listening_socket(self.config["host"], self.config["port"], listen=False)
        except OSError as e:
            print(f"ERROR: cannot listen on {self.config['host']}:{self.config['port']}: {e}", file=sys.stderr)
            raise SystemExit(1) from None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: setattr(self, "_replace", True))
        try:
            self.procs = [self._start() for _ in range(self.n)]
            while not self._stop.wait(0.5):
                if self._replace:
                    self._replace = False
                    self._replace_all()
                for i, proc in enumerate(self.procs):
                    if proc.is_alive() or self._stop.is_set():
                        continue
                    if proc.exitcode == _STARTUP_FAILURE:  # it would fail the same way again
                        self._stop.set()
                        self.failed = True
                    else:
                        self.procs[i] = self._start()
        finally:
            for proc in self.procs:
                if proc.is_alive():
                    proc.terminate()
            deadline = time.monotonic() + 15
            for proc in self.procs:
                proc.join(max(deadline - time.monotonic(), 0.1))
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            held.close()
        if self.failed:
            raise SystemExit(_STARTUP_FAILURE)

    def _replace_all(self) -> None:
        for i, old in enumerate(self.procs):
            self.procs[i] = self._start()
            old.terminate()
            old.join(15)
            if old.is_alive():
                old.kill()
                old.join()
