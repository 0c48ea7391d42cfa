"""A small helper the provider modules share: an ordered list of (reason, phrases) compiled once."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailtally.vocab import Reason


class Phrases:
    """Plain (lower-case) phrases per reason, searched with one compiled alternation.

    The earliest phrase in the text wins; phrases are escaped, so the regex has no backtracking
    beyond a plain alternation. It is compiled on first use: most runs meet few providers."""

    __slots__ = ("_re", "_reasons")

    def __init__(self, table: Iterable[tuple[Reason, tuple[str, ...]]]) -> None:
        parts: list[str] = []
        self._reasons: list[Reason] = []
        for reason, phrases in table:
            for p in phrases:
                parts.append(f"(?P<p{len(self._reasons)}>{re.escape(p.lower())})")
                self._reasons.append(reason)
        self._re = re.compile("|".join(parts))

    def find(self, text: str) -> Reason | None:
        m = self._re.search(text)
        if m is None or m.lastgroup is None:
            return None
        return self._reasons[int(m.lastgroup[1:])]
