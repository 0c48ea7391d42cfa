"""Regexes compiled on first use, not at import.

Compiling every format's and provider's patterns cost ~10 ms per process at import, and a
run meets only a few formats and providers: most patterns are searched only after a cheap
marker matched. `lazy()` returns a stand-in typed as `re.Pattern[str]`; its first attribute
access compiles the pattern and stores the compiled pattern's bound methods in the instance
dict, so every later call goes straight to them (no `__getattr__`, no extra frame).
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the engine does not import `typing` at run time
if TYPE_CHECKING:
    from typing import Any

# Every pattern made by `lazy()`, so that a tool can compile them all (commands/regex_cache.py).
CREATED: list[_LazyPattern] = []
_METHODS = ("search", "match", "fullmatch", "finditer", "findall", "sub", "subn", "split", "scanner")


class _LazyPattern:
    def __init__(self, pattern: str, flags: int) -> None:
        self._args = (pattern, flags)
        CREATED.append(self)

    def __getattr__(self, name: str) -> Any:  # only called while `name` is not yet in __dict__
        if name.startswith("__"):
            raise AttributeError(name)
        compiled = re.compile(*self._args)
        for method in _METHODS:
            setattr(self, method, getattr(compiled, method))
        for attr in ("pattern", "flags", "groups", "groupindex"):
            setattr(self, attr, getattr(compiled, attr))
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy({self._args[0]!r}, {self._args[1]!r})"


def lazy(pattern: str, flags: int | re.RegexFlag = 0) -> re.Pattern[str]:
    """`re.compile(pattern, flags)`, done the first time the pattern is used."""
    return _LazyPattern(pattern, int(flags))  # type: ignore[return-value]  # it acts as one
