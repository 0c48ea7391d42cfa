"""Identifiers. New ids are UUIDv7-shaped (time first), so rows created together sit
together in every index that starts with an id, instead of landing on random pages."""

from __future__ import annotations

import itertools
import os
import time
import uuid

_counter = itertools.count()


def new_uuid() -> str:
    ms = int(time.time() * 1000)
    seq = next(_counter) & 0xFFF
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
    return str(uuid.UUID(int=value))


def new_uuids(n: int) -> list[str]:
    """``n`` ids as ``new_uuid`` makes them, in order: one random read and plain hex formatting
    for all (the writer creates a contact for each new address of a batch, thousands at once)."""
    ms = (int(time.time() * 1000) & ((1 << 48) - 1)) << 80 | 0x7 << 76 | 0b10 << 62
    noise = os.urandom(8 * n)
    out = []
    for i in range(n):
        rand = int.from_bytes(noise[8 * i : 8 * i + 8], "big") & ((1 << 62) - 1)
        h = f"{ms | (next(_counter) & 0xFFF) << 64 | rand:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out
