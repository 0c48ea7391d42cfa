"""The saved compiled regexes of `bounces parse` (mailtally/commands/regex_cache.py): identical
to what `re` compiles, and ignored when they do not fit."""

from __future__ import annotations

import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from mailtally.commands import regex_cache


def _fits() -> bool:
    try:
        return bool(regex_cache._read(regex_cache.PATH)[0] == regex_cache._interpreter())
    except (OSError, ValueError, EOFError, zlib.error):
        return False


FITS = _fits()


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not FITS, reason="no regex_cache.bin for this Python (`make install` makes it)")
def test_loaded_patterns_equal_what_re_compiles() -> None:
    # Pattern equality compares the flags, the pattern and the compiled code.
    proc = _python(
        "import re\n"
        "from re import _compiler\n"
        "from mailtally.commands.regex_cache import load\n"
        "n = load()\n"
        "cached = dict(re._cache)\n"
        "import mailtally.bounces\n"
        "bad = [k for k, p in cached.items() if _compiler.compile(k[1], k[2]) != p]\n"
        "used = sum(re._cache.get(k) is p for k, p in cached.items())\n"
        "print(n, len(bad), used)\n"
    )
    loaded, bad, used = map(int, proc.stdout.split())
    assert loaded > 100 and bad == 0 and used == loaded


def test_a_file_for_another_interpreter_is_ignored(tmp_path: Path) -> None:
    import marshal

    other = tmp_path / "other.bin"
    key = ("cpython", (2, 7, 18), 0, 4, 1114111)
    other.write_bytes(zlib.compress(marshal.dumps((key, [("x", 0, 32, b"\x00" * 4, 0, {}, ())]))))
    assert regex_cache.load(str(other)) == 0


def test_a_broken_or_missing_file_is_ignored(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bin"
    broken.write_bytes(zlib.compress(b"not a cache") + b"\x00" * 100)
    assert regex_cache.load(str(broken)) == 0
    assert regex_cache.load(str(tmp_path / "missing.bin")) == 0
