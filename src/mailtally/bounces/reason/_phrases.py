"""The phrase test every reason module exposes as ``match(text)``, built in one place.

With ``needles``, a few cheap ``in`` tests come first and the regex runs only when one is
present: the regexes try every position, because not every alternative starts with a literal.
tests/bounces/test_properties.py proves each module's needles cover every alternative.
"""

from __future__ import annotations

import re
from collections.abc import Callable


def matcher(pattern: re.Pattern[str] | None, needles: tuple[str, ...] = ()) -> Callable[[str], bool]:
    """``match(text)``: does the lower-cased, single-line ``text`` hold one of the phrases?"""
    if pattern is None:
        return lambda text: False
    if not needles:
        return lambda text: pattern.search(text) is not None

    def match(text: str) -> bool:
        for needle in needles:
            if needle in text:
                return pattern.search(text) is not None
        return False

    return match
