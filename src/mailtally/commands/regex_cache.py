"""The bounce engine's regexes, saved compiled, for the start-up of `bounces parse`.

CPython compiles a regex with a parser and a code generator written in Python: the ~170
patterns the engine and its imports compile cost ~35 ms in every process, a third of its
start-up, while `bounces parse` (two processes per run, each importing the engine) is mostly
start-up. This file's `load()` puts the saved compiled code of those patterns in `re`'s own
cache before the engine is imported, so its `re.compile` calls find them there (~2 ms).

The codes are only valid for the interpreter that made them (`re`'s internal format), so
the file records the Python version and the regex engine's version; under any other
interpreter `load()` does nothing and patterns are compiled as usual. A pattern that is not
in the file (one added or changed since) is compiled as usual too: the file can be out of
date, or absent, without changing any result. It is a build product, like bytecode, made by
`make install` (and not kept in git):

    python -m mailtally.commands.regex_cache
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: this runs before every `bounces parse`
if TYPE_CHECKING:
    from typing import Any

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regex_cache.bin")


def _interpreter() -> tuple[Any, ...]:
    import _sre

    return (sys.implementation.name, tuple(sys.version_info[:3]), _sre.MAGIC, _sre.CODESIZE, sys.maxunicode)


def load(path: str = PATH) -> int:
    """Fill `re`'s cache from the file; the number of patterns loaded, 0 if it does not fit."""
    import _sre
    import re

    try:
        interpreter, saved = _read(path)
        if interpreter != _interpreter():
            return 0
        cache = re._cache  # type: ignore[attr-defined]
        for pattern, flags, final_flags, code, groups, groupindex, indexgroup in saved:
            # The same call as re._compiler.compile's last step, with the code it would generate.
            compiled = _sre.compile(pattern, final_flags, memoryview(code).cast("I").tolist(), groups,
                                    groupindex, indexgroup)
            cache[type(pattern), pattern, flags] = compiled
        return len(saved)
    except Exception:  # a missing, truncated or foreign file: compile as usual
        return 0


def entries() -> list[tuple[Any, ...]]:
    """What the file holds, made in this process: one that has not imported the engine yet."""
    import re
    from re import _compiler, _parser  # type: ignore[attr-defined]

    if "mailtally.bounces" in sys.modules:
        raise RuntimeError("entries() needs a process that has not imported the engine yet")
    seen: dict[tuple[str | bytes, int], None] = {}
    real_compile = _compiler.compile

    def recording(p: Any, flags: int = 0) -> Any:
        if isinstance(p, str | bytes):
            seen.setdefault((p, flags))
        return real_compile(p, flags)

    _compiler.compile = recording
    try:
        re.purge()
        import mailtally.bounces
        import mailtally.mailfiles
        from mailtally.bounces._lazy import CREATED
        from mailtally.bounces.message import decode_header_value

        for lazy in CREATED:
            lazy.pattern  # noqa: B018  (compiles it)
        decode_header_value("=?utf-8?q?=41?=")  # the standard library's encoded-word patterns, compiled on use
        assert mailtally.bounces and mailtally.mailfiles
    finally:
        _compiler.compile = real_compile
    out: list[tuple[Any, ...]] = []
    for pattern, flags in sorted(seen, key=lambda k: (type(k[0]).__name__, k)):
        parsed = _parser.parse(pattern, flags)
        code = _compiler._code(parsed, flags)
        groupindex = parsed.state.groupdict
        indexgroup: list[str | None] = [None] * parsed.state.groups
        for name, i in groupindex.items():
            indexgroup[i] = name
        words = memoryview(bytearray(4 * len(code))).cast("I")
        for i, word in enumerate(code):
            words[i] = word
        out.append((pattern, flags, flags | parsed.state.flags, words.tobytes(), parsed.state.groups - 1,
                    dict(groupindex), tuple(indexgroup)))
    return out


def _read(path: str) -> tuple[Any, list[tuple[Any, ...]]]:
    import marshal
    import zlib

    with open(path, "rb") as fh:
        interpreter, saved = marshal.loads(zlib.decompress(fh.read()))
    return interpreter, saved


def main(argv: list[str]) -> int:
    """Write the file; with --check, only say (exit status 1) whether it is out of date."""
    import marshal
    import zlib

    made = entries()
    if "--check" in argv:
        try:
            current = _read(PATH)
        except (OSError, ValueError, EOFError, TypeError, zlib.error):
            current = ((), [])
        if current != (_interpreter(), made):
            print(f"{PATH} is out of date: run python -m mailtally.commands.regex_cache", file=sys.stderr)
            return 1
        return 0
    with open(PATH, "wb") as fh:
        fh.write(zlib.compress(marshal.dumps((_interpreter(), made), 2), 9))  # version 2: no refcount-dependent refs
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
