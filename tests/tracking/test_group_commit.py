"""The group committer: what one turn of the loop received is one group; what arrives during a
write is the next one; nothing waits for a timer while the writer is idle."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

from mailtally.store.group_commit import GroupCommitter
from mailtally.store.write_gate import StoreBusy, WriteGate

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


def test_with_turns_each_group_is_written_on_the_loop_holding_its_turn(tmp_path: Path) -> None:
    """``turns`` (the hits on a SQLite file): written on the loop's own thread, with the turn
    held; while another writer holds it, the loop gathers on, and the group is then everything
    gathered until the turn came."""
    gate = WriteGate(str(tmp_path / "db"))
    groups: list[list[int]] = []
    threads: list[threading.Thread] = []

    def write(items: list[int]) -> None:
        assert gate.try_take() is None  # we hold it
        groups.append(items)
        threads.append(threading.current_thread())

    async def main() -> threading.Thread:
        committer: GroupCommitter[int] = GroupCommitter(write, turns=gate)
        await asyncio.gather(*(committer.submit(i) for i in range(3)))  # the turn is free: at once
        other = gate.try_take()  # another process writing
        assert other is not None
        waiting = [asyncio.ensure_future(committer.submit(i)) for i in range(3, 5)]
        await asyncio.sleep(0.05)
        waiting += [asyncio.ensure_future(committer.submit(i)) for i in range(5, 7)]
        await asyncio.sleep(0.05)
        assert len(groups) == 1 and not any(f.done() for f in waiting)  # nothing answered before its commit
        other.release()
        await asyncio.gather(*waiting)
        committer.close()
        return threading.current_thread()

    (loop_thread,) = run_in_own_loop(main)
    assert groups == [[0, 1, 2], [3, 4, 5, 6]]
    assert threads == [loop_thread, loop_thread]
    assert gate.try_take() is not None  # let go after each write


def test_with_turns_a_turn_that_never_comes_fails_the_group_and_a_failed_write_the_next(tmp_path: Path) -> None:
    gate = WriteGate(str(tmp_path / "db"), wait_seconds=0.2)
    written: list[list[int]] = []

    def write(items: list[int]) -> None:
        if 99 in items:
            raise RuntimeError("disk full")
        written.append(items)

    async def main() -> list[str]:
        committer: GroupCommitter[int] = GroupCommitter(write, turns=gate)
        other = gate.try_take()
        assert other is not None
        outcomes = []
        try:
            await committer.submit(1)
        except StoreBusy:
            outcomes.append("busy")
        other.release()  # the turn the thread was waiting for comes late: let go at once
        await asyncio.sleep(0.1)
        try:
            await committer.submit(99)
        except RuntimeError:
            outcomes.append("failed")
        await committer.submit(2)
        committer.close()
        return outcomes

    (outcomes,) = run_in_own_loop(main)
    assert outcomes == ["busy", "failed"]
    assert written == [[2]]
    assert gate.try_take() is not None
