"""Running a coroutine on an event loop of its own, in a thread of its own.

Another test of the same xdist worker may have left a loop running in the main thread, and
``asyncio.run`` refuses to start inside one."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_in_own_loop(main: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30) -> list[T]:
    """``main()``'s result in a one-item list, or an empty list if it did not finish within ``timeout``."""
    got: list[T] = []
    runner = threading.Thread(target=lambda: got.append(asyncio.run(main())))
    runner.start()
    runner.join(timeout)
    return got
