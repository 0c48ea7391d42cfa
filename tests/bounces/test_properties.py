"""Property tests: `parse` never raises and never hangs, whatever bytes it is given; the reason
prefilters never hide a match."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mailtally.bounces.reason as reasons
from mailtally.bounces import parse

EXAMPLES = sorted((Path(__file__).resolve().parent / "examples").glob("*.eml"))
SEEDS = [p.read_bytes() for p in EXAMPLES]
FAST = settings(deadline=None, max_examples=200, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=4096))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert isinstance(parse(raw), list)


@FAST
@given(st.sampled_from(SEEDS), st.integers(min_value=0, max_value=4000))
def test_truncated_messages(raw: bytes, cut: int) -> None:
    assert isinstance(parse(raw[:cut]), list)


@FAST
@given(st.sampled_from(SEEDS), st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=3000))
def test_corrupted_messages(raw: bytes, junk: bytes, at: int) -> None:
    assert isinstance(parse(raw[:at] + junk + raw[at:]), list)


@FAST
@given(st.text(alphabet="<>@:;=\"'-.\n \tFromTo5.1.1", max_size=3000))
def test_punctuation_soup(text: str) -> None:
    assert isinstance(parse(text.encode()), list)


def _nested(depth: int) -> bytes:
    head = b""
    tail = b""
    for i in range(depth):
        head += b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i)
        tail = b"\n--b%d--\n" % i + tail
    return (
        b"From: MAILER-DAEMON@x.example\nSubject: Undelivered\n"
        + head
        + b"Content-Type: text/plain\n\nx@y.example\n550 5.1.1 unknown"
        + tail
    )


@settings(deadline=None, max_examples=20)
@given(st.integers(min_value=1, max_value=5000))
def test_deeply_nested_mime(depth: int) -> None:
    assert isinstance(parse(_nested(depth)), list)


@settings(deadline=None, max_examples=5)
@given(st.sampled_from(SEEDS), st.integers(min_value=1, max_value=20))
def test_huge_inputs(raw: bytes, megabytes: int) -> None:
    filler = (b"x" * 1023 + b"\n") * (1024 * megabytes)
    assert isinstance(parse(raw + filler), list)
    assert isinstance(parse(raw.replace(b"\n\n", b"\n\n" + filler, 1)), list)


@settings(deadline=None, max_examples=5)
@given(st.integers(min_value=10_000, max_value=200_000))
def test_pathological_lines(n: int) -> None:
    raw = b"From: MAILER-DAEMON@x.example\nSubject: failure\n\n" + b"<" * n + b"@" * n + b"a@" * n + b"\n" + b" " * n
    assert isinstance(parse(raw), list)


# The reasons' `NEEDLES` prefilters must never hide a match: every alternative of `PATTERN`
# has to contain one of them, whatever text it matches.
try:  # Python 3.11+
    from re import _constants as c
    from re import _parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

WITH_NEEDLES = [m for m in vars(reasons).values() if isinstance(m, ModuleType) and hasattr(m, "NEEDLES")]


def _covered(items: object, needles: tuple[str, ...]) -> bool:
    """Whether every text that `items` (a parsed regex sequence) matches contains a needle."""
    run = ""
    for op, av in [*items, (None, None)]:  # type: ignore[misc]
        if op is c.LITERAL:
            run += chr(av)
            continue
        if any(n in run for n in needles):
            return True
        run = ""
        if op is c.SUBPATTERN and _covered(av[-1], needles):
            return True
        if op is c.BRANCH and all(_covered(b, needles) for b in av[1]):
            return True
        if op in (c.MAX_REPEAT, c.MIN_REPEAT) and av[0] >= 1 and _covered(av[2], needles):
            return True
    return False


def test_some_reasons_have_prefilters() -> None:
    assert len(WITH_NEEDLES) >= 10


@pytest.mark.parametrize("mod", WITH_NEEDLES, ids=lambda m: m.__name__.rpartition(".")[2])
def test_needles_cover_every_alternative(mod: ModuleType) -> None:
    assert mod.PATTERN.flags & re.IGNORECASE == 0  # the needles are matched as they are written
    assert all(n == n.lower() for n in mod.NEEDLES)  # the text is lower-cased before matching
    tree = list(sre_parse.parse(mod.PATTERN.pattern))
    branches = tree[0][1][1] if len(tree) == 1 and tree[0][0] is c.BRANCH else [tree]
    for branch in branches:
        assert _covered(branch, mod.NEEDLES), f"{mod.__name__}: no needle in every match of {branch}"


def test_needles_cover_every_original_marker() -> None:
    from mailtally.bounces.textscan import ORIGINAL_MARKERS, ORIGINAL_NEEDLES

    # Needles are found in lower-cased ASCII text, which is what re.I matches there.
    assert ORIGINAL_MARKERS.pattern == ORIGINAL_MARKERS.pattern.lower()
    assert all(n == n.lower() for n in ORIGINAL_NEEDLES)
    assert _covered(list(sre_parse.parse(ORIGINAL_MARKERS.pattern)), ORIGINAL_NEEDLES)


_MARKER_LINES = ["Received: from x", "  ---- Original Message Headers", "copy of", "Header", "the original Message"]
_MARKER_TEXT = st.lists(
    st.one_of(
        st.sampled_from(_MARKER_LINES),
        st.text(alphabet="abcdefghi -:\t>", max_size=40),
    ),
    max_size=12,
)


@FAST
@given(_MARKER_TEXT)
def test_cut_original_finds_the_first_marker(lines: list[str]) -> None:
    from mailtally.bounces.textscan import ORIGINAL_MARKERS, cut_original

    text = "\n".join(lines)
    m = ORIGINAL_MARKERS.search(text)
    assert cut_original(text) == ((text, "") if m is None else (text[: m.start()], text[m.end() :]))


def test_every_known_miss_says_why() -> None:
    """known_misses.txt lists disagreements with the labels, not open work: each line says what they are."""
    from tests.bounces._corpus import HERE

    lines = [ln for ln in (HERE / "known_misses.txt").read_text().splitlines() if ln.strip() and ln[0] != "#"]
    for line in lines:
        name, _, why = line.partition("#")
        assert name.strip().endswith(".eml") and len(why.strip()) > 20, f"no reason given: {line!r}"
