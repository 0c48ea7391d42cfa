"""The group committer: what one turn of the loop received is one group; what arrives during a
write is the next one; nothing waits for a timer while the writer is idle."""

from __future__ import annotations

import asyncio
import threading
import time

from mailtally.store.group_commit import GroupCommitter

from ..support.loops import run_in_own_loop


def test_one_turn_of_the_loop_is_one_group_and_a_write_gathers_the_next() -> None:
    groups: list[list[int]] = []
    release = threading.Event()

    def write(items: list[int]) -> None:
        groups.append(items)
        if len(groups) == 1:
            release.wait(5)  # the first write is slow: the next items gather meanwhile

    async def main() -> float:
        committer: GroupCommitter[int] = GroupCommitter(write)
        first = [asyncio.ensure_future(committer.submit(i)) for i in range(5)]  # one turn of the loop
        while not groups:  # the first write has begun (and waits)
            await asyncio.sleep(0.005)
        later = [asyncio.ensure_future(committer.submit(i)) for i in range(5, 8)]
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(*first, *later)
        t = time.perf_counter()
        await committer.submit(8)  # alone, with the writer idle: written at once
        committer.close()
        return time.perf_counter() - t

    got = run_in_own_loop(main)
    (alone,) = got
    assert groups == [[0, 1, 2, 3, 4], [5, 6, 7], [8]]
    assert alone < 2  # no timer to wait for (a loaded machine may still be slow)
