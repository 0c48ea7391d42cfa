"""Group commit: single writes from many requests, committed together.

A transaction per tracking hit would cap a SQLite server at a few hundred hits a second.
Here each request hands its item to one writer thread per process and waits; the thread
takes every item queued (waiting up to ``window`` seconds after the first for more), writes
them in one transaction, and only after the commit wakes the requests. A request is
answered only once its item is durable, so ``kill -9`` loses nothing that was answered.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("mailtally.group_commit")


class GroupCommitter(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None], window: float = 0.002, max_items: int = 2000):
        self._write = write
        self.window = window
        self.max_items = max_items
        self._queue: queue.SimpleQueue[tuple[T, asyncio.Future[None]] | None] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.groups = 0  # transactions committed, for the curious

    async def submit(self, item: T) -> None:
        """Return once ``item`` is committed; raise what the write raised if it failed."""
        loop = asyncio.get_running_loop()
        if self._thread is None:
            self._start(loop)
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put((item, future))
        await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if self._thread is None:
                self._loop = loop
                self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        get, closing = self._queue.get, False
        while not closing:
            first = get()
            if first is None:
                return
            group = [first]
            deadline = time.monotonic() + self.window
            while len(group) < self.max_items:
                try:
                    left = deadline - time.monotonic()
                    item = get(timeout=left) if left > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    closing = True
                    break
                group.append(item)
            error: BaseException | None = None
            try:
                self._write([item for item, _ in group])
                self.groups += 1
            except Exception as e:  # the requests answer with an error; the thread carries on
                log.exception("group commit of %d items failed", len(group))
                error = e
            assert self._loop is not None
            futures = [f for _, f in group]
            try:
                self._loop.call_soon_threadsafe(_settle, futures, error)
            except RuntimeError:  # the loop is gone (shutting down): nobody is waiting
                return


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for f in futures:
        if f.done():
            continue
        if error is None:
            f.set_result(None)
        else:
            f.set_exception(error)
