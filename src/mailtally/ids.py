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
